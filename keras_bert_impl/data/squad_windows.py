"""Question + context → packed windows with a doc stride, in the graph.

google-research/bert's `run_squad.py` recipe: the question (its first
`max_query_length` pieces) and a window of the context are packed as
`[CLS] question [SEP] window [SEP]`; windows start `doc_stride` pieces apart
until one reaches the end of the context; each context piece counts in the
one window that gives it the most context on both sides. The SQuAD reader
(`squad_features`) and the question-answerer preprocessor both pack with
this, so training, evaluation and serving see the same windows.
"""

import tensorflow as tf

from keras_bert_impl.text.packer import content_length
from keras_bert_impl.text.packer import place_in_rows

# Position of [CLS], where "no answer in this window" points.
CLS_POSITION = 0
# `context_piece` of positions that hold no context piece.
NOT_CONTEXT = -1

_NOT_CONVERTED = tf.autograph.experimental.do_not_convert


def check_window_settings(seq_length, doc_stride, max_query_length):
    """Raises ValueError when the settings leave a gap or no room."""
    if max_query_length < 1 or doc_stride < 1:
        raise ValueError("max_query_length and doc_stride must be >= 1.")
    window_size = content_length(seq_length, 2) - max_query_length
    if window_size < 1:
        raise ValueError(
            f"max_seq_length={seq_length} leaves no room for the context after "
            f"a {max_query_length}-piece question, [CLS] and two [SEP]."
        )
    if doc_stride > window_size:
        # Gaps between windows would leave context pieces in no window.
        raise ValueError(
            f"doc_stride={doc_stride} exceeds the context window ({window_size})."
        )


def context_byte_spans(windows, starts, ends):
    """Each window position's context piece as a UTF-8 byte span in its context.

    Args:
        windows: `question_context_windows`' outputs.
        starts, ends: the context pieces' byte offsets, int64 RaggedTensors
            `[batch, (pieces)]` (`Tokenizer.tokenize_with_offsets`).

    Returns:
        (start_byte, end_byte): int64 `[windows, seq]`, -1 at positions that
        hold no context piece.
    """
    piece = tf.cast(windows["context_piece"], tf.int64)
    flat = tf.gather(
        starts.row_starts(), tf.cast(windows["example_index"], tf.int64)
    )[:, None] + tf.maximum(piece, 0)
    # Positions outside the context read an appended -1.
    sentinel = tf.shape(starts.values, out_type=tf.int64)[0]
    flat = tf.where(piece >= 0, flat, sentinel)
    return tuple(
        tf.gather(tf.concat([offsets.values, [-1]], 0), flat)
        for offsets in (starts, ends)
    )


@_NOT_CONVERTED
def question_context_windows(
    question_ids,
    context_ids,
    packer,
    doc_stride,
    max_query_length,
    answer_pieces=None,
):
    """Packs every example into one or more windows.

    Args:
        question_ids: int RaggedTensor `[batch, (pieces)]`.
        context_ids: int RaggedTensor `[batch, (pieces)]`.
        packer: a `text.Packer` with a `seq_length` (the windows' size; with
            `bucket_lengths`, the windows are padded to their bucket).
        doc_stride: pieces between the starts of consecutive windows.
        max_query_length: question pieces kept.
        answer_pieces: optional (first, last) int `[batch]`: the answer's
            first and last context piece, -1 for no answer.

    Returns:
        dict over windows (`[windows]` or `[windows, seq]`): `token_ids`,
        `segment_ids`, `padding_mask` (int32), `example_index` (int32),
        `context_piece` (int32, the context piece at each position, -1
        elsewhere), `is_max_context` (bool) and, with `answer_pieces`,
        `start_positions` / `end_positions` (int32, 0 when the window does
        not hold the whole answer).
    """
    seq_length = packer.seq_length
    check_window_settings(seq_length, doc_stride, max_query_length)
    question_ids = tf.cast(question_ids, tf.int32)[:, :max_query_length]
    context_ids = tf.cast(context_ids, tf.int32)
    query_lengths = question_ids.row_lengths()
    window_sizes = content_length(seq_length, 2) - query_lengths
    num_pieces = context_ids.row_lengths()
    # run_squad.py moves the window by doc_stride until it reaches the end.
    num_windows = (
        tf.maximum(num_pieces - window_sizes, 0) + doc_stride - 1
    ) // doc_stride + 1
    example = tf.repeat(tf.range(context_ids.nrows()), num_windows)
    window_number = tf.ragged.range(num_windows).values
    start = window_number * doc_stride
    length = tf.minimum(
        tf.gather(num_pieces, example) - start, tf.gather(window_sizes, example)
    )
    positions = tf.ragged.range(start, start + length)  # [windows, (length)]
    # Each window piece's index among all context pieces of the batch.
    piece_example = tf.gather(example, positions.value_rowids())
    flat_positions = (
        tf.gather(context_ids.row_starts(), piece_example) + positions.values
    )
    window_ids = positions.with_values(tf.gather(context_ids.values, flat_positions))
    packed = packer((tf.gather(question_ids, example), window_ids))
    # seq_length, or the bucket a bucketing packer chose for these windows.
    width = packed["token_ids"].shape[1] or tf.shape(packed["token_ids"])[1]

    # The best window of each context piece: highest score, first on a tie,
    # with the reference's float64 arithmetic so ties break the same way.
    window = tf.range(tf.shape(example, out_type=tf.int64)[0])
    piece_window = tf.gather(window, positions.value_rowids())
    piece_start = tf.gather(start, positions.value_rowids())
    piece_length = tf.gather(length, positions.value_rowids())
    offset = positions.values - piece_start
    score = tf.cast(
        tf.minimum(offset, piece_length - 1 - offset), tf.float64
    ) + 0.01 * tf.cast(piece_length, tf.float64)
    num_segments = tf.shape(context_ids.values, out_type=tf.int64)[0]
    best_score = tf.math.unsorted_segment_max(score, flat_positions, num_segments)
    is_best = tf.equal(score, tf.gather(best_score, flat_positions))
    first_best = tf.math.unsorted_segment_min(
        tf.where(is_best, piece_window, tf.int64.max), flat_positions, num_segments
    )
    is_max_context = tf.equal(piece_window, tf.gather(first_best, flat_positions))

    prefix = tf.gather(query_lengths, example) + 2  # [CLS] question [SEP]
    outputs = dict(packed)
    outputs["example_index"] = tf.cast(example, tf.int32)
    outputs["context_piece"] = place_in_rows(
        tf.cast(positions, tf.int32), prefix, NOT_CONTEXT, width
    )
    outputs["is_max_context"] = place_in_rows(
        positions.with_values(is_max_context), prefix, False, width
    )
    if answer_pieces is not None:
        first, last = (tf.gather(tf.cast(p, tf.int64), example) for p in answer_pieces)
        inside = (first >= start) & (last < start + length) & (first >= 0)
        outputs["start_positions"] = tf.cast(
            tf.where(inside, first - start + prefix, CLS_POSITION), tf.int32
        )
        outputs["end_positions"] = tf.cast(
            tf.where(inside, last - start + prefix, CLS_POSITION), tf.int32
        )
    return outputs
