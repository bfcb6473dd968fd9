"""`BertQuestionAnswererPreprocessor`: question + context → windows with a stride."""

import keras
import tensorflow as tf

from keras_bert_impl.constants import MODEL_INPUTS
from keras_bert_impl.data.squad_windows import check_window_settings
from keras_bert_impl.data.squad_windows import context_byte_spans
from keras_bert_impl.data.squad_windows import question_context_windows
from keras_bert_impl.preprocessing.base import ACCEPTED_TEXT
from keras_bert_impl.preprocessing.base import BertPreprocessorBase
from keras_bert_impl.preprocessing.base import to_backend
from keras_bert_impl.text import Packer

ACCEPTED_PAIR = f"a (question, context) tuple, each {ACCEPTED_TEXT}"
ANSWER_KEYS = ("answer_start", "answer_text")


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertQuestionAnswererPreprocessor(BertPreprocessorBase):
    """Packs `[CLS] question [SEP] context window [SEP]`, SQuAD-style.

    A context longer than its window is covered by several windows
    `doc_stride` pieces apart (google-research/bert's `run_squad.py`, the
    code the SQuAD reader uses too: `data.squad_windows`), so the output has
    one row per window, not per example.

    Call args:
        x: a `(question, context)` tuple of equally long `[batch]` texts.
        y: optional answers: a dict with `answer_start` (int `[batch]`,
            character offset in the context, -1 for no answer) and
            `answer_text` (`[batch]` strings).
        sample_weight: optional `[batch]`, repeated over each example's
            windows.

    Returns:
        `x`, `(x, y)` or `(x, y, sample_weight)` over windows: `x` a dict of
        int32 `token_ids`, `segment_ids`, `padding_mask`; `y` a dict of int32
        `start_positions`, `end_positions` (0, [CLS], when a window does not
        hold the whole answer), what `BertQuestionAnswerer` trains on.

    Args:
        sequence_length: packed length (384 in run_squad.py).
        doc_stride: pieces between the starts of consecutive windows;
            None: `min(128, sequence_length // 3)` (run_squad.py's 128 at 384).
        max_query_length: question pieces kept; None:
            `min(64, sequence_length // 6)` (run_squad.py's 64 at 384).
        Other arguments: see `BertPreprocessorBase`.
    """

    def __init__(
        self,
        tokenizer=None,
        sequence_length=384,
        doc_stride=None,
        max_query_length=None,
        **kwargs,
    ):
        super().__init__(tokenizer, sequence_length, **kwargs)
        if sequence_length is None:
            raise ValueError(f"{type(self).__name__} needs a fixed sequence_length.")
        # run_squad.py's 64 and 128 at length 384, in proportion below it.
        if max_query_length is None:
            max_query_length = min(64, sequence_length // 6)
        if doc_stride is None:
            doc_stride = min(128, sequence_length // 3)
        check_window_settings(sequence_length, doc_stride, max_query_length)
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length
        self.packer = Packer.from_tokenizer(self.tokenizer, sequence_length)

    def _pair(self, x):
        if not isinstance(x, tuple) or len(x) != 2:
            raise TypeError(
                f"{type(self).__name__} takes {ACCEPTED_PAIR}; got {type(x).__name__}."
            )
        question, context = (self.text_input(s, ACCEPTED_PAIR) for s in x)
        if question.shape.rank == 0:
            question, context = question[tf.newaxis], context[tf.newaxis]
        return question, context

    def _answer_pieces(self, y, context, starts, ends):
        """First and last piece overlapping each answer (-1 when none)."""
        if not isinstance(y, dict) or any(key not in y for key in ANSWER_KEYS):
            raise ValueError(
                f"{type(self).__name__} takes answers as a dict with "
                f"{ANSWER_KEYS}; got {y!r}."
            )
        char_start = tf.reshape(tf.cast(y["answer_start"], tf.int64), [-1])
        text = tf.reshape(
            self.text_input(y["answer_text"], "answer_text strings"), [-1]
        )
        _, char_bytes = tf.strings.unicode_decode_with_offsets(
            context, "UTF-8", errors="replace"
        )
        has_answer = (char_start >= 0) & (char_start < char_bytes.row_lengths())
        safe_start = tf.where(has_answer, char_start, 0)
        byte_start = tf.gather(
            tf.concat([char_bytes.values, [0]], 0),
            tf.where(has_answer, char_bytes.row_starts() + safe_start, 0),
        )
        byte_end = byte_start + tf.cast(tf.strings.length(text), tf.int64)
        byte_start, byte_end = byte_start[:, None], byte_end[:, None]
        overlaps = (ends > byte_start) & (starts < byte_end)
        index = tf.ragged.range(starts.row_lengths())
        none = tf.constant(-1, tf.int64)
        first = tf.reduce_min(tf.where(overlaps, index, tf.int64.max), axis=1)
        last = tf.reduce_max(tf.where(overlaps, index, none), axis=1)
        found = has_answer & (last >= 0)
        return tf.where(found, first, none), tf.where(found, last, none)

    def encode(self, x, y=None):
        """Everything `call` computes plus the map back to the text.

        Returns:
            dict over windows: the model inputs, `example_index`,
            `context_piece`, `is_max_context` (see
            `data.squad_windows.question_context_windows`), `start_byte` /
            `end_byte` (int64 `[windows, seq]`, each context piece's UTF-8
            span in its context, -1 elsewhere) and, with `y`,
            `start_positions` / `end_positions`.
        """
        with tf.device("cpu"):
            question, context = self._pair(x)
            context_ids, starts, ends = self.tokenizer.tokenize_with_offsets(context)
            answers = None
            if y is not None:
                answers = self._answer_pieces(y, context, starts, ends)
            outputs = question_context_windows(
                self.tokenizer(question),
                context_ids,
                self.packer,
                self.doc_stride,
                self.max_query_length,
                answer_pieces=answers,
            )
            outputs["start_byte"], outputs["end_byte"] = context_byte_spans(
                outputs, starts, ends
            )
        return outputs

    def call(self, x, y=None, sample_weight=None):
        outputs = self.encode(x, y)
        inputs = {name: outputs[name] for name in MODEL_INPUTS}
        targets = None
        if y is not None:
            targets = {
                "start_positions": outputs["start_positions"],
                "end_positions": outputs["end_positions"],
            }
        if sample_weight is not None:
            sample_weight = tf.gather(
                tf.reshape(sample_weight, [-1]), outputs["example_index"]
            )
        return keras.utils.pack_x_y_sample_weight(
            to_backend(inputs), to_backend(targets), to_backend(sample_weight)
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"doc_stride": self.doc_stride, "max_query_length": self.max_query_length}
        )
        return config
