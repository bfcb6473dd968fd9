"""`BertTextClassifierPreprocessor`: texts or text pairs → classifier inputs."""

import keras
import tensorflow as tf

from keras_bert_impl.text.model_inputs import encode_texts
from keras_bert_impl.preprocessing.base import ACCEPTED_TEXT
from keras_bert_impl.preprocessing.base import BertPreprocessorBase
from keras_bert_impl.preprocessing.base import to_backend
from keras_bert_impl.text import Packer

ACCEPTED_SEGMENTS = f"{ACCEPTED_TEXT}, or a (text, text_pair) tuple of two such"


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertTextClassifierPreprocessor(BertPreprocessorBase):
    """Tokenizes and packs single texts or pairs as `[CLS] A [SEP] (B [SEP])`.

    Call args (keras-hub's convention):
        x: text (see `ACCEPTED_SEGMENTS`): a batch `[batch]` or one string,
            or a tuple `(text, text_pair)` of two equally long batches.
        y: labels, passed through.
        sample_weight: passed through.

    Returns:
        `x`, `(x, y)` or `(x, y, sample_weight)`
        (`keras.utils.pack_x_y_sample_weight`), where `x` is a dict of int32
        `token_ids`, `segment_ids`, `padding_mask` `[batch, sequence_length]`.

    Example:
    ```python
    preprocessor = BertTextClassifierPreprocessor.from_preset(checkpoint_dir)
    dataset = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(32)
    dataset = dataset.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
    ```

    Args:
        truncation: "longest_first" (default) or "random", see `text.Packer`.
        bucket_lengths: None pads every batch to `sequence_length`; "auto"
            or a list of lengths pads each batch only to the smallest bucket
            that holds its longest text (`text.Packer`): the same outputs
            for a fraction of the work when texts are short, at the cost of
            one trace of the train step per bucket.
        Other arguments: see `BertPreprocessorBase`.
    """

    def __init__(
        self,
        tokenizer=None,
        sequence_length=128,
        truncation="longest_first",
        bucket_lengths=None,
        **kwargs,
    ):
        super().__init__(tokenizer, sequence_length, **kwargs)
        self.truncation = truncation
        self.bucket_lengths = (
            list(bucket_lengths)
            if isinstance(bucket_lengths, (list, tuple))
            else bucket_lengths
        )
        self.packer = Packer.from_tokenizer(
            self.tokenizer,
            sequence_length,
            truncation=truncation,
            bucket_lengths=self.bucket_lengths,
        )

    @property
    def independent_rows(self):
        # Length buckets pad each row to its batch's longest text.
        return self.bucket_lengths is None

    def with_bucket_lengths(self, bucket_lengths):
        """A copy with the same vocabulary and length, padding to
        `bucket_lengths` (None, "auto" or a list; see the class)."""
        config = self.get_config()
        config["bucket_lengths"] = bucket_lengths
        return type(self).from_config(config)

    def segments(self, x):
        """`x` as a tuple of one or two tf.string tensors."""
        if isinstance(x, tuple):
            if len(x) not in (1, 2):
                raise ValueError(
                    f"{type(self).__name__} takes one text or a (text, text_pair) "
                    f"tuple; got a tuple of {len(x)}."
                )
            return tuple(self.text_input(s, ACCEPTED_SEGMENTS) for s in x)
        return (self.text_input(x, ACCEPTED_SEGMENTS),)

    def call(self, x, y=None, sample_weight=None):
        with tf.device("cpu"):
            x = encode_texts(self.tokenizer, self.packer, self.segments(x))
        return keras.utils.pack_x_y_sample_weight(to_backend(x), y, sample_weight)

    def get_config(self):
        config = super().get_config()
        config["truncation"] = self.truncation
        config["bucket_lengths"] = self.bucket_lengths
        return config
