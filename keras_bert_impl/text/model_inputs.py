"""Text -> the model's int32 inputs: the one tokenize-and-pack path.

Every route from strings to `token_ids` / `segment_ids` / `padding_mask` ends
here: the GLUE-style readers, the classifier and masked-LM preprocessors, and
the exported graphs (`export.text_inputs`, the token classifier's windows).
"""

import tensorflow as tf

from keras_bert_impl.constants import MODEL_INPUTS


def model_inputs(packed):
    """The model's inputs out of a `Packer` result (which may hold more, such
    as `word_index`), cast to the int32 the backbone takes."""
    return {name: tf.cast(packed[name], tf.int32) for name in MODEL_INPUTS}


def encode_texts(tokenizer, packer, texts):
    """One or two columns of text → the model's int32 input dict.

    Args:
        tokenizer: a `keras_bert_impl.text.Tokenizer`.
        packer: a `keras_bert_impl.text.Packer`.
        texts: a tuple of one or two tf.string tensors `[batch]` (or scalars).

    Returns:
        dict of int32 `token_ids`, `segment_ids`, `padding_mask`.
    """
    segments = tuple(tokenizer(column) for column in texts)
    return model_inputs(packer(segments[0] if len(segments) == 1 else segments))
