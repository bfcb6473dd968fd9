"""`BertPreprocessorBase`: what every task's preprocessor shares (keras-hub's
`Preprocessor`; the task ones, e.g. `BertTextClassifierPreprocessor`, build on it).

A preprocessor is a Keras layer that turns text into a model's inputs
(and labels into its targets) with the package's one tokenization path,
`text.Tokenizer` + `text.Packer`. It runs eagerly, inside `tf.data.map`
(where the task models put it, so preprocessing overlaps training and never
reaches the accelerator) and inside exported serving graphs. Its config
holds the vocabulary, so a `.keras` file that contains it is self-contained.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from keras_bert_impl.preprocessing import checkpoint_vocabulary
from keras_bert_impl.text import Tokenizer

ACCEPTED_TEXT = (
    "a str or bytes, a list or 1-D numpy array of str/bytes, or a tf.string "
    "tensor of shape [batch]"
)


def _encode(item):
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        # Lone surrogates (undecodable bytes read with surrogateescape) become
        # invalid UTF-8, which the tokenizer drops like any U+FFFD.
        return item.encode("utf-8", "surrogatepass")
    raise TypeError(type(item).__name__)


def string_tensor(value, owner, accepted=ACCEPTED_TEXT, max_rank=1):
    """`value` as a tf.string tensor of rank <= `max_rank`.

    Raises:
        TypeError: naming `owner`, what it accepts and what it got.
    """

    def refuse(got):
        return TypeError(f"{owner} takes {accepted}; got {got}.")

    if isinstance(value, (tf.Tensor, tf.RaggedTensor)):
        if value.dtype != tf.string:
            raise refuse(f"a {value.dtype.name} tensor")
        tensor = value
    elif isinstance(value, (str, bytes)):
        tensor = tf.constant(_encode(value))
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in "USO":
            raise refuse(f"a numpy array of dtype {value.dtype}")
        try:
            tensor = tf.constant(
                np.vectorize(_encode, otypes=[object])(value)
                if value.size
                else value.astype(bytes)
            )
        except TypeError as error:
            raise refuse(f"a numpy array holding {error}") from None
    elif isinstance(value, list):
        try:
            tensor = tf.constant([_encode(item) for item in value], tf.string)
        except TypeError as error:
            raise refuse(f"a list holding {error}") from None
    else:
        raise refuse(type(value).__name__)
    if tensor.shape.rank is not None and tensor.shape.rank > max_rank:
        raise refuse(f"a string tensor of shape {tensor.shape}")
    return tensor


def to_backend(outputs):
    """Eager outputs as numpy for backends other than TensorFlow."""
    if keras.backend.backend() == "tensorflow" or not tf.executing_eagerly():
        return outputs
    return tf.nest.map_structure(
        lambda t: t.numpy() if isinstance(t, tf.Tensor) else t, outputs
    )


class BertPreprocessorBase(keras.layers.Layer):
    """Base of the preprocessors: a `Tokenizer` and a sequence length.

    Args:
        tokenizer: a `keras_bert_impl.text.Tokenizer`; or None, then one is
            built from `vocabulary` and the casing arguments.
        sequence_length: packed length, [CLS] and [SEP] included.
        vocabulary: list of tokens (index = id) or a vocabulary file.
        lowercase: lower-case the text (uncased vocabularies).
        strip_accents: None follows `lowercase`.
        max_chars_per_word: longer words become [UNK].
        split_special_tokens: treat "[MASK]" etc. written in text as text.
        **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        tokenizer=None,
        sequence_length=128,
        *,
        vocabulary=None,
        lowercase=True,
        strip_accents=None,
        max_chars_per_word=100,
        split_special_tokens=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # Text stays tf.string: Keras must not convert inputs to backend
        # tensors, and plain Python strings are valid positional inputs.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        if tokenizer is None:
            if vocabulary is None:
                raise ValueError(
                    f"{type(self).__name__} needs a Tokenizer or a vocabulary."
                )
            tokenizer = Tokenizer(
                vocabulary,
                lowercase=lowercase,
                strip_accents=strip_accents,
                max_chars_per_word=max_chars_per_word,
                split_special_tokens=split_special_tokens,
            )
        elif not isinstance(tokenizer, Tokenizer):
            raise TypeError(
                f"tokenizer must be a keras_bert_impl.text.Tokenizer, got "
                f"{type(tokenizer).__name__}."
            )
        if sequence_length is not None and (
            isinstance(sequence_length, bool)
            or not isinstance(sequence_length, int)
            or sequence_length < 3
        ):
            raise ValueError(
                f"sequence_length must be an integer >= 3 or None, got "
                f"{sequence_length!r}."
            )
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.built = True

    @property
    def independent_rows(self):
        """Whether every input becomes exactly one row of `sequence_length`
        that does not depend on the other inputs of its batch. Then a text
        pipeline may preprocess several batches at once and split them again
        (`models.text_datasets`): the same batches for less per-call overhead."""
        return False

    @classmethod
    def from_preset(cls, source, sequence_length=128, **kwargs):
        """Builds the preprocessor from a checkpoint's vocabulary and casing.

        Args:
            source: a Hugging Face or Google BERT checkpoint directory (its
                `vocab.txt`; casing from `tokenizer_config.json`'s
                `do_lower_case`, else read off the vocabulary), or a
                vocabulary file.
            sequence_length: packed length.
            **kwargs: further constructor arguments.
        """
        vocabulary, lowercase = checkpoint_vocabulary.read(os.fspath(source))
        kwargs.setdefault("lowercase", lowercase)
        return cls(sequence_length=sequence_length, vocabulary=vocabulary, **kwargs)

    def text_input(self, value, accepted=ACCEPTED_TEXT):
        return string_tensor(value, type(self).__name__, accepted)

    def get_config(self):
        config = super().get_config()
        tokenizer = self.tokenizer
        config.update(
            {
                "sequence_length": self.sequence_length,
                "vocabulary": tokenizer.vocabulary,
                "lowercase": tokenizer.lowercase,
                "strip_accents": tokenizer.strip_accents,
                "max_chars_per_word": tokenizer.max_chars_per_word,
                "split_special_tokens": tokenizer.split_special_tokens,
            }
        )
        return config

    def compute_output_spec(self, *args, **kwargs):
        raise NotImplementedError(
            f"{type(self).__name__} works on concrete text; call it eagerly, "
            "in tf.data.Dataset.map or in a tf.function, not on Keras "
            "symbolic inputs."
        )
