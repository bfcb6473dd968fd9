"""SQuAD v1.1 / v2.0 JSON → extractive question-answering features.

Follows google-research/bert's `run_squad.py` feature recipe: the question
(truncated to `max_query_length` pieces) and a window of the context are
packed as `[CLS] question [SEP] context window [SEP]`; long contexts are
covered by windows `doc_stride` pieces apart; the answer's first and last
pieces give the start/end positions, and a window that does not hold the
whole answer (or an unanswerable question) points both at `[CLS]` (0).

Where the reference re-tokenizes whitespace-split words to map pieces back to
text, these features keep each context piece's character span in the
original context (from `Tokenizer.tokenize_with_offsets`), so predicted spans
become the exact substring of the context (see `squad_postprocess`).
"""

import dataclasses
import json

import numpy as np
import tensorflow as tf

from keras_bert_impl.data.batching import batched_examples
from keras_bert_impl.data.squad_windows import check_window_settings
from keras_bert_impl.data.squad_windows import question_context_windows
from keras_bert_impl.text import Packer


@dataclasses.dataclass(frozen=True)
class SquadExample:
    """One question on one context.

    Attributes:
        qas_id: the question's id.
        question: question text.
        context: paragraph text.
        answers: tuple of `(text, start_char)`; empty when unanswerable.
        is_impossible: the question has no answer in the context (v2.0).
    """

    qas_id: str
    question: str
    context: str
    answers: tuple
    is_impossible: bool


def _require(mapping, key, where):
    if not isinstance(mapping, dict) or key not in mapping:
        raise ValueError(f"{where}: missing the key {key!r}.")
    return mapping[key]


def read_squad(path):
    """Reads a SQuAD-format JSON file (v1.1 or v2.0).

    Every answer is checked against its context: `context[answer_start:]`
    must begin with the answer text.

    Raises:
        ValueError: naming the file and line of invalid JSON, or the file and
            the entry (`data[i].paragraphs[j].qas[k]`, question id) that lacks
            a key, has an answer that does not match its context, or has no
            answer without being marked `is_impossible`.
    """
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"No such file: {path}")
    with tf.io.gfile.GFile(path, "rb") as handle:
        raw = handle.read()
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not valid UTF-8 at byte {error.start}.") from None
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path}:{error.lineno}: invalid JSON ({error.msg}, column {error.colno})."
        ) from None
    examples = []
    for i, article in enumerate(_require(document, "data", path)):
        for j, paragraph in enumerate(
            _require(article, "paragraphs", f"{path}: data[{i}]")
        ):
            where = f"{path}: data[{i}].paragraphs[{j}]"
            context = _require(paragraph, "context", where)
            for k, qa in enumerate(_require(paragraph, "qas", where)):
                examples.append(_read_question(qa, context, f"{where}.qas[{k}]"))
    if not examples:
        raise ValueError(f"{path}: no questions found.")
    return tuple(examples)


def _read_question(qa, context, where):
    qas_id = str(_require(qa, "id", where))
    where = f"{where} (id {qas_id})"
    question = _require(qa, "question", where)
    is_impossible = bool(qa.get("is_impossible", False))
    answers = []
    for answer in qa.get("answers", []):
        text = _require(answer, "text", where)
        start = _require(answer, "answer_start", where)
        if not isinstance(start, int) or context[start : start + len(text)] != text:
            found = (
                context[start : start + len(text)] if isinstance(start, int) else start
            )
            raise ValueError(
                f"{where}: answer {text!r} does not match the context at "
                f"answer_start={start!r} (the context has {found!r} there)."
            )
        if not text.strip():
            raise ValueError(f"{where}: answer text is empty.")
        answers.append((text, start))
    if is_impossible:
        answers = []
    elif not answers:
        raise ValueError(
            f"{where}: no answers and not marked is_impossible (SQuAD v2.0 marks "
            "unanswerable questions with is_impossible: true)."
        )
    return SquadExample(qas_id, question, context, tuple(answers), is_impossible)


@dataclasses.dataclass(frozen=True)
class SquadFeatures:
    """Packed windows of SQuAD examples and their map back to the text.

    Attributes:
        token_ids, segment_ids, padding_mask: int32 `[num_features, seq]`.
        start_positions, end_positions: int32 `[num_features]`, the answer's
            first/last piece in the window, 0 ([CLS]) when it has none.
        example_index: int32 `[num_features]`, index into `examples`.
        token_start_char, token_end_char: int32 `[num_features, seq]`,
            character span `[start, end)` of each context piece in its
            example's context; -1 on question, special and padding positions.
        token_is_max_context: bool `[num_features, seq]`, True where this
            window gives the piece the most context on both sides (the one
            window whose prediction counts for it).
        examples: the `SquadExample`s.
    """

    token_ids: np.ndarray
    segment_ids: np.ndarray
    padding_mask: np.ndarray
    start_positions: np.ndarray
    end_positions: np.ndarray
    example_index: np.ndarray
    token_start_char: np.ndarray
    token_end_char: np.ndarray
    token_is_max_context: np.ndarray
    examples: tuple

    def __len__(self):
        return len(self.token_ids)

    def dataset(
        self,
        batch_size,
        *,
        shuffle=False,
        seed=None,
        repeat=False,
        drop_remainder=False,
        with_labels=True,
    ):
        """A `tf.data.Dataset` of `(x, {start_positions, end_positions})`,
        or of `x` alone with `with_labels=False` (prediction)."""
        x = {
            "token_ids": self.token_ids,
            "segment_ids": self.segment_ids,
            "padding_mask": self.padding_mask,
        }
        elements = x
        if with_labels:
            y = {
                "start_positions": self.start_positions,
                "end_positions": self.end_positions,
            }
            elements = (x, y)
        dataset = batched_examples(
            elements,
            len(self),
            batch_size,
            shuffle=shuffle,
            seed=seed,
            repeat=repeat,
            drop_remainder=drop_remainder,
        )
        return dataset.prefetch(tf.data.AUTOTUNE)


def char_spans(text, byte_starts, byte_ends):
    """Converts UTF-8 byte offsets into `text` to character offsets."""
    encoded_lengths = np.array(
        [len(c.encode("utf-8", "surrogatepass")) for c in text], dtype=np.int64
    )
    # char_at_byte[b] = index of the character holding byte b (plus an end).
    char_at_byte = np.append(
        np.repeat(np.arange(len(text)), encoded_lengths), len(text)
    )
    starts = char_at_byte[byte_starts]
    ends = char_at_byte[np.maximum(byte_ends - 1, 0)] + 1
    return starts, np.where(byte_ends > byte_starts, ends, starts)


def _answer_pieces(example, starts, ends):
    """First and last context piece of the example's first answer."""
    text, start_char = example.answers[0]
    end_char = start_char + len(text)
    overlapping = np.nonzero((ends > start_char) & (starts < end_char))[0]
    if len(overlapping) == 0:
        raise ValueError(
            f"Question {example.qas_id}: the answer {text!r} covers no token of the "
            "context (only characters the tokenizer drops)."
        )
    return overlapping[0], overlapping[-1]


def _ragged_rows(ragged):
    return np.split(ragged.flat_values.numpy(), ragged.row_splits.numpy()[1:-1])


def squad_features(
    examples, tokenizer, *, max_seq_length=384, doc_stride=128, max_query_length=64
):
    """Turns `SquadExample`s into packed windows.

    Tokenizing, windowing and packing are the question-answerer
    preprocessor's (`squad_windows`); this adds the answers' pieces and the
    character spans that map predictions back to the context.

    Args:
        examples: from `read_squad`.
        tokenizer: a `keras_bert_impl.text.Tokenizer`.
        max_seq_length: packed length.
        doc_stride: pieces between the starts of consecutive windows.
        max_query_length: question pieces kept.

    Returns:
        `SquadFeatures`, one or more per example.
    """
    check_window_settings(max_seq_length, doc_stride, max_query_length)
    examples = tuple(examples)
    contexts = sorted({e.context for e in examples})
    context_ids, byte_starts, byte_ends = tokenizer.tokenize_with_offsets(
        tf.constant(contexts)
    )
    spans = [
        char_spans(context, starts, ends)
        for context, starts, ends in zip(
            contexts, _ragged_rows(byte_starts), _ragged_rows(byte_ends)
        )
    ]
    row_of = {context: row for row, context in enumerate(contexts)}
    rows = [row_of[e.context] for e in examples]
    answers = np.full((2, len(examples)), -1, np.int64)
    for index, (example, row) in enumerate(zip(examples, rows)):
        if example.answers:
            answers[:, index] = _answer_pieces(example, *spans[row])
    windows = question_context_windows(
        tokenizer(tf.constant([e.question for e in examples])),
        tf.gather(context_ids, rows),
        Packer.from_tokenizer(tokenizer, max_seq_length),
        doc_stride,
        max_query_length,
        answer_pieces=(answers[0], answers[1]),
    )
    windows = {name: value.numpy() for name, value in windows.items()}
    piece = windows["context_piece"]
    start_char = np.full(piece.shape, -1, np.int32)
    end_char = np.full(piece.shape, -1, np.int32)
    for window, example_index in enumerate(windows["example_index"]):
        in_context = piece[window] >= 0
        starts, ends = spans[rows[example_index]]
        start_char[window, in_context] = starts[piece[window, in_context]]
        end_char[window, in_context] = ends[piece[window, in_context]]
    return SquadFeatures(
        token_ids=windows["token_ids"],
        segment_ids=windows["segment_ids"],
        padding_mask=windows["padding_mask"],
        start_positions=windows["start_positions"],
        end_positions=windows["end_positions"],
        example_index=windows["example_index"],
        token_start_char=start_char,
        token_end_char=end_char,
        token_is_max_context=windows["is_max_context"],
        examples=examples,
    )
