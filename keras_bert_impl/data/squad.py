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

CLS_POSITION = 0


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


def _char_offsets(text, byte_starts, byte_ends):
    """Converts UTF-8 byte offsets into `text` to character offsets."""
    encoded_lengths = np.array([len(c.encode("utf-8")) for c in text], dtype=np.int64)
    # char_at_byte[b] = index of the character holding byte b (plus an end).
    char_at_byte = np.append(
        np.repeat(np.arange(len(text)), encoded_lengths), len(text)
    )
    starts = char_at_byte[byte_starts]
    ends = char_at_byte[np.maximum(byte_ends - 1, 0)] + 1
    return starts, np.where(byte_ends > byte_starts, ends, starts)


def _windows(num_tokens, window_size, doc_stride):
    """(start, length) windows over `num_tokens` pieces, as run_squad.py."""
    windows, start = [], 0
    while True:
        length = min(num_tokens - start, window_size)
        windows.append((start, length))
        if start + length >= num_tokens:
            return windows
        start += min(length, doc_stride)


def _max_context_windows(windows, num_tokens):
    """For each piece, the window that centres it best (run_squad.py score)."""
    best_score = np.full(num_tokens, -1.0)
    best_window = np.zeros(num_tokens, np.int64)
    for index, (start, length) in enumerate(windows):
        positions = np.arange(start, start + length)
        score = (
            np.minimum(positions - start, start + length - 1 - positions)
            + 0.01 * length
        )
        better = score > best_score[positions]
        best_score[positions[better]] = score[better]
        best_window[positions[better]] = index
    return best_window


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

    Args:
        examples: from `read_squad`.
        tokenizer: a `keras_bert_impl.text.Tokenizer`.
        max_seq_length: packed length.
        doc_stride: pieces between the starts of consecutive windows.
        max_query_length: question pieces kept.

    Returns:
        `SquadFeatures`, one or more per example.
    """
    if max_query_length < 1 or doc_stride < 1:
        raise ValueError("max_query_length and doc_stride must be >= 1.")
    window_size = max_seq_length - max_query_length - 3
    if window_size < 1:
        raise ValueError(
            f"max_seq_length={max_seq_length} leaves no room for the context after "
            f"a {max_query_length}-piece question, [CLS] and two [SEP]."
        )
    if doc_stride > window_size:
        # Gaps between windows would leave context pieces in no window.
        raise ValueError(
            f"doc_stride={doc_stride} exceeds the context window ({window_size})."
        )
    examples = tuple(examples)
    questions = _ragged_rows(tokenizer(tf.constant([e.question for e in examples])))
    contexts = sorted({e.context for e in examples})
    context_ids, byte_starts, byte_ends = tokenizer.tokenize_with_offsets(
        tf.constant(contexts)
    )
    tokenized = {}
    for context, ids, starts, ends in zip(
        contexts,
        _ragged_rows(context_ids),
        _ragged_rows(byte_starts),
        _ragged_rows(byte_ends),
    ):
        tokenized[context] = (ids, *_char_offsets(context, starts, ends))
    rows = []
    for example_index, (example, query) in enumerate(zip(examples, questions)):
        query = query[:max_query_length]
        ids, starts, ends = tokenized[example.context]
        answer = None
        if example.answers:
            answer = _answer_pieces(example, starts, ends)
        windows = _windows(len(ids), max_seq_length - len(query) - 3, doc_stride)
        best_window = _max_context_windows(windows, len(ids))
        for window_index, (start, length) in enumerate(windows):
            rows.append(
                (
                    example_index,
                    query,
                    ids,
                    starts,
                    ends,
                    start,
                    length,
                    answer,
                    best_window == window_index,
                )
            )
    return _pack(rows, examples, tokenizer, max_seq_length)


def _pack(rows, examples, tokenizer, max_seq_length):
    shape = (len(rows), max_seq_length)
    token_ids = np.full(shape, tokenizer.pad_id, np.int32)
    segment_ids = np.zeros(shape, np.int32)
    padding_mask = np.zeros(shape, np.int32)
    start_char = np.full(shape, -1, np.int32)
    end_char = np.full(shape, -1, np.int32)
    is_max_context = np.zeros(shape, bool)
    start_positions = np.zeros(len(rows), np.int32)
    end_positions = np.zeros(len(rows), np.int32)
    example_index = np.zeros(len(rows), np.int32)
    for row, (
        index,
        query,
        ids,
        starts,
        ends,
        start,
        length,
        answer,
        is_best,
    ) in enumerate(rows):
        offset = len(query) + 2  # [CLS] question [SEP]
        window = slice(start, start + length)
        end = offset + length
        token_ids[row, 0] = tokenizer.cls_id
        token_ids[row, 1 : offset - 1] = query
        token_ids[row, offset - 1] = tokenizer.sep_id
        token_ids[row, offset:end] = ids[window]
        token_ids[row, end] = tokenizer.sep_id
        segment_ids[row, offset : end + 1] = 1
        padding_mask[row, : end + 1] = 1
        start_char[row, offset:end] = starts[window]
        end_char[row, offset:end] = ends[window]
        is_max_context[row, offset:end] = is_best[window]
        example_index[row] = index
        if answer is not None and answer[0] >= start and answer[1] < start + length:
            start_positions[row] = answer[0] - start + offset
            end_positions[row] = answer[1] - start + offset
    return SquadFeatures(
        token_ids=token_ids,
        segment_ids=segment_ids,
        padding_mask=padding_mask,
        start_positions=start_positions,
        end_positions=end_positions,
        example_index=example_index,
        token_start_char=start_char,
        token_end_char=end_char,
        token_is_max_context=is_max_context,
        examples=examples,
    )
