"""Raw strings -> the model's int32 inputs inside an exported graph.

The one place the export turns text into ids: `text.Tokenizer` + `text.Packer` with length
bucketing (each batch padded to its bucket, never above `max_seq_length`). Core TensorFlow
ops plus tf-text's FastWordpieceTokenizeWithOffsets, so the graph serves on TF Serving >=
2.10.
"""

import tensorflow as tf

from keras_bert_impl.text import Packer
from keras_bert_impl.text.model_inputs import model_inputs
from keras_bert_impl.text.packer import serving_bucket_lengths


class TextInputs(tf.Module):
    """Tokenizes and packs `[batch]` strings (or pairs) into the model's input dict.

    Args:
        tokenizer: a `keras_bert_impl.text.Tokenizer`.
        max_seq_length: longest packed sequence ([CLS] and [SEP] included).
        bucket_lengths: "auto" (multiples of 8 up to `max_seq_length`,
            `text.packer.serving_bucket_lengths`), a list of lengths, or None for fixed
            padding to `max_seq_length` (see `text.Packer`).
    """

    def __init__(self, tokenizer, max_seq_length, bucket_lengths="auto", name=None):
        super().__init__(name=name)
        self.tokenizer = tokenizer
        self.max_seq_length = int(max_seq_length)
        if isinstance(bucket_lengths, str) and bucket_lengths == "auto":
            bucket_lengths = serving_bucket_lengths(self.max_seq_length)
        self.packer = Packer.from_tokenizer(
            tokenizer, self.max_seq_length, bucket_lengths=bucket_lengths
        )

    @property
    def bucket_lengths(self):
        return self.packer.bucket_lengths

    def __call__(self, text, text_pair=None):
        """dict of int32 [batch, length] token_ids / segment_ids / padding_mask."""
        segments = self.tokenize(text)
        if text_pair is not None:
            segments = (segments, self.tokenize(text_pair))
        return self.pack(segments)

    def tokenize(self, text):
        """Word-piece ids without special tokens, RaggedTensor [batch, (tokens)].

        Inlined into each signature: a shared tf.function would trace once, but a
        session-based server then instantiates it per call site, far slower to warm up."""
        return self.tokenizer(text)

    def pack(self, segments):
        """Packs already tokenized segments (one RaggedTensor or a pair)."""
        return model_inputs(self.packer(segments))
