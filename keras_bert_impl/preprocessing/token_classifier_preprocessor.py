"""`BertTokenClassifierPreprocessor`: words or raw text → token-classifier inputs."""

import keras
import numpy as np
import tensorflow as tf

from keras_bert_impl.constants import MODEL_INPUTS
from keras_bert_impl.data.word_alignment import pack_word_pieces
from keras_bert_impl.data.word_alignment import pack_word_windows
from keras_bert_impl.data.word_alignment import text_word_pieces
from keras_bert_impl.data.word_alignment import word_piece_ids
from keras_bert_impl.preprocessing.base import ACCEPTED_TEXT
from keras_bert_impl.preprocessing.base import BertPreprocessorBase
from keras_bert_impl.preprocessing.base import string_tensor
from keras_bert_impl.preprocessing.base import to_backend
from keras_bert_impl.text import Packer

ACCEPTED_WORDS = (
    f"raw text ({ACCEPTED_TEXT}) or pre-split words (a list of lists of "
    "str, or a tf.string RaggedTensor [batch, (words)])"
)


def _is_word_lists(x):
    return isinstance(x, (list, tuple)) and any(
        isinstance(item, (list, tuple, np.ndarray)) for item in x
    )


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertTokenClassifierPreprocessor(BertPreprocessorBase):
    """Words → `[CLS] pieces [SEP]`, a tag per word on its first piece.

    Two kinds of input:
    - pre-split words, like CoNLL (a list of word lists, or a tf.string
      RaggedTensor `[batch, (words)]`): each word is split into WordPieces
      on its own, so the words are the caller's;
    - raw text (`[batch]` strings): the words are BERT's basic-tokenizer
      words (whitespace and punctuation split), and `word_offsets` gives
      where each one sits in the text.

    A word's tag goes on its first piece; its other pieces, [CLS], [SEP] and
    padding get `IGNORE_LABEL` (-100), which `BertTokenClassifier`'s loss
    skips. `call` and `encode` give one row per input: words that do not fit
    in `sequence_length - 2` pieces are left out. `encode_windows` packs
    every word, in windows of whole words (`text.word_windows`), as the
    CoNLL reader and `predict_text` do.

    Call args:
        x: words or raw text, as above.
        y: optional tag indices per word, int `[batch, (words)]` (a ragged
            tensor or a list of lists).
        sample_weight: passed through.

    Returns:
        `x`, `(x, labels)` or `(x, labels, sample_weight)`; `x` a dict of
        int32 `token_ids`, `segment_ids`, `padding_mask`, and `labels`
        int32 `[batch, sequence_length]`.
    """

    def __init__(self, tokenizer=None, sequence_length=128, **kwargs):
        super().__init__(tokenizer, sequence_length, **kwargs)
        self.packer = Packer.from_tokenizer(self.tokenizer, sequence_length)

    @property
    def independent_rows(self):
        return True

    def word_input(self, x):
        """(words as RaggedTensor tf.string [batch, (words)], or raw text as
        tf.string [batch]; whether it was raw text)."""
        owner = type(self).__name__
        if isinstance(x, tf.RaggedTensor):
            if x.dtype != tf.string or x.shape.rank != 2:
                raise TypeError(
                    f"{owner} takes {ACCEPTED_WORDS}; got a {x.dtype.name} "
                    f"RaggedTensor of shape {x.shape}."
                )
            return x, False
        if _is_word_lists(x):
            rows = [string_tensor(list(row), owner, ACCEPTED_WORDS) for row in x]
            lengths = [int(row.shape[0]) for row in rows]
            flat = tf.concat(rows, 0) if rows else tf.constant([], tf.string)
            return tf.RaggedTensor.from_row_lengths(flat, lengths), False
        text = string_tensor(x, owner, ACCEPTED_WORDS, max_rank=2)
        if text.shape.rank == 2:
            return tf.RaggedTensor.from_tensor(text), False
        return text, True

    def pieces(self, x):
        """Returns (word pieces [batch, (words), (pieces)], raw-text offsets or
        None, whether a scalar text came in)."""
        words, raw = self.word_input(x)
        scalar = raw and words.shape.rank == 0
        if scalar:
            words = tf.expand_dims(words, 0)
        if raw:
            ids, starts, ends = text_word_pieces(self.tokenizer, words)
            return ids, (starts, ends), scalar
        return word_piece_ids(self.tokenizer, words), None, scalar

    def encode(self, x, y=None):
        """Everything `call` computes plus the word alignment.

        Returns:
            dict of int32 `[batch, sequence_length]` tensors: the model
            inputs, `word_index` (the word a position starts, -1 elsewhere),
            `labels` when `y` is given, int32 `num_words` `[batch]`; for raw
            text also `word_starts` and `word_ends` (int64 byte offsets
            `[batch, (words)]`).
        """
        outputs, scalar = self._encode(x, y, pack_word_pieces)
        if scalar:
            outputs = {key: value[0] for key, value in outputs.items()}
        return outputs

    def encode_windows(self, x):
        """Every word of each input, in windows of whole words (a scalar text
        counts as a batch of one).

        Returns:
            dict: over windows, the int32 `[windows, sequence_length]` model
            inputs, `word_index` (the word of its input a position starts,
            -1 elsewhere) and `example_index` `[windows]` (its input); per
            input, int32 `num_words` `[batch]` and, for raw text,
            `word_starts` and `word_ends` as `encode` gives them.
        """
        outputs, _ = self._encode(x, None, pack_word_windows)
        return outputs

    def _encode(self, x, y, pack):
        """(`pack`'s outputs and `num_words`, with raw text's word offsets;
        whether a scalar text came in)."""
        with tf.device("cpu"):
            pieces, offsets, scalar = self.pieces(x)
            labels = None
            if y is not None:
                if not isinstance(y, tf.RaggedTensor):
                    y = (
                        tf.ragged.constant(y)
                        if isinstance(y, list)
                        else (tf.RaggedTensor.from_tensor(tf.convert_to_tensor(y)))
                    )
                labels = y
            outputs = pack(pieces, self.packer, labels)
            outputs["num_words"] = tf.cast(pieces.row_lengths(), tf.int32)
            if offsets is not None:
                outputs["word_starts"], outputs["word_ends"] = offsets
        return outputs, scalar

    def call(self, x, y=None, sample_weight=None):
        outputs = self.encode(x, y)
        inputs = {name: outputs[name] for name in MODEL_INPUTS}
        labels = outputs.get("labels")
        return keras.utils.pack_x_y_sample_weight(
            to_backend(inputs), to_backend(labels), sample_weight
        )
