"""Next-sentence pairs from raw passages, in the graph: the dynamic twin of
`pretraining.add_document_instances`.

Each row of a batch is a passage (a document or a paragraph) of token ids
with its sentence ends marked (`passage_pieces`: after a `.`, `!` or `?`
token and at line breaks). Every call draws, for every row, one pair
`(A, B)` and its label with google-research/bert's rules, restricted to one
instance per passage:

1. Target length: `max_num_tokens` or, with probability `short_seq_prob`, a
   uniform length in `[2, max_num_tokens]`.
2. The chunk starts at a sentence `s0` drawn uniformly from `0 … k`, where `k`
   is the first sentence from which the rest of the passage fits in the
   target (so a passage that fits is read from its start; a longer one from a
   random place). When the passage has two or more sentences, `s0` is never
   its last one. The chunk takes sentences from `s0` while the tokens before
   the next one stay below the target (the reference's chunk rule).
3. A is the chunk's first `a` sentences, `a` uniform in `[1, chunk - 1]`
   (1 for a one-sentence chunk).
4. With probability 1/2, and always when the chunk holds one sentence, B is
   a random next (label 1): it comes from another passage of the batch (the
   row `(r + j) mod batch`, `j` uniform in `[1, batch - 1]`; a batch of one
   takes its own passage, as the reference does with a one-document corpus),
   starting at a uniformly random sentence and taking sentences while the
   tokens before the next one stay below `target - len(A)` (at least one).
   Otherwise B is the rest of the chunk (label 0, "is next").

An empty passage gives an empty A (and an empty B to whichever row draws
it as a random next); label rates are 50/50 wherever chunks hold two or more
sentences.

Truncation to the packed length is the `text.Packer`'s "random" rule, and
masking the `MaskedLMMasker`'s: this module only forms the pairs. All
draws are stateless, from one seed per batch.
"""

import tensorflow as tf

# Tokens that end a sentence (BERT's basic tokenizer makes each its own word).
SENTENCE_END_TOKENS = (".", "!", "?", "。", "！", "？")

_NOT_CONVERTED = tf.autograph.experimental.do_not_convert


@_NOT_CONVERTED
def passage_pieces(tokenizer, passages, end_ids):
    """Tokenizes passages and marks where sentences end.

    A sentence ends after a `SENTENCE_END_TOKENS` piece and at every line
    break (so google-research/bert's one-sentence-per-line text keeps its
    sentences).

    Args:
        tokenizer: a `text.Tokenizer`.
        passages: tf.string `[batch]`.
        end_ids: ids of the tokens that end a sentence.

    Returns:
        `(ids, ends)`: RaggedTensors `[batch, (pieces)]`, int32 and bool.
    """
    lines = tf.strings.split(passages, "\n")  # [batch, (lines)]
    pieces = tf.cast(tokenizer(lines.flat_values), tf.int32)  # [lines, (pieces)]
    # A line's last piece: the flat index just before the next line starts.
    line_ends = tf.boolean_mask(pieces.row_limits() - 1, pieces.row_lengths() > 0)
    ends = tf.scatter_nd(
        line_ends[:, None],
        tf.ones_like(line_ends, tf.bool),
        tf.shape(pieces.values, out_type=tf.int64),
    )
    if end_ids:
        is_end_id = tf.reduce_any(
            tf.equal(pieces.values[:, None], tf.constant(end_ids, tf.int32)), axis=1
        )
        ends = ends | is_end_id
    ids = lines.with_flat_values(pieces).merge_dims(1, 2)
    return ids, ids.with_flat_values(ends)


def _uniform_int(u, high):
    """`floor(u * high)` clipped to `[0, high - 1]` (0 where `high` <= 0)."""
    value = tf.cast(tf.math.floor(u * tf.cast(high, tf.float32)), tf.int64)
    return tf.clip_by_value(value, 0, tf.maximum(high - 1, 0))


def _per_value(ragged, row_values):
    """`row_values[row]` for every value of a RaggedTensor, flat. Working on
    flat values avoids ragged broadcasting, whose graph is costly to build."""
    return tf.gather(row_values, ragged.value_rowids())


def _count_below(values, limit):
    """Per row, how many entries of the ragged `values` are below `limit`."""
    below = tf.cast(values.values < _per_value(values, limit), tf.int64)
    return tf.math.unsorted_segment_sum(below, values.value_rowids(), values.nrows())


def _token_slices(ids, rows, starts, ends):
    """`ids[rows[i], starts[i]:ends[i]]` for every i, as a RaggedTensor."""
    positions = tf.ragged.range(starts, tf.maximum(ends, starts))
    flat = positions.values + _per_value(positions, tf.gather(ids.row_starts(), rows))
    return positions.with_values(tf.gather(ids.values, flat))


@_NOT_CONVERTED
def next_sentence_pairs(ids, ends, seed, max_num_tokens, short_seq_prob=0.1):
    """Draws one (A, B, label) per passage; see the module docstring.

    Args:
        ids: int32 RaggedTensor `[batch, (pieces)]`.
        ends: bool RaggedTensor of the same shape, True on a sentence's last
            piece.
        seed: int tensor `[2]` for the stateless random ops.
        max_num_tokens: A and B together before truncation aims at this
            (`seq_length - 3`).
        short_seq_prob: probability of a shorter target length.

    Returns:
        `(segment_a, segment_b, next_sentence_labels)`: int32 RaggedTensors
        `[batch, (pieces)]` and int32 `[batch]` (1 = random next).
    """
    batch = ids.nrows()
    lengths = ids.row_lengths()
    # The last piece of a passage always ends its sentence.
    position = tf.ragged.range(lengths)
    ends = ends.values | tf.equal(position.values, _per_value(position, lengths - 1))
    # Token offsets where each sentence starts: [batch, (sentences)]. A
    # sentence starts a passage or follows an end (the flat shift crosses
    # rows only where position 0 starts one anyway).
    after_end = tf.concat([[False], ends[:-1]], axis=0)
    is_start = tf.equal(position.values, 0) | after_end
    sentence_starts = tf.ragged.boolean_mask(position, position.with_values(is_start))
    num_sentences = sentence_starts.row_lengths()

    def start_of(rows, sentence):
        """Token offset where `sentence` starts in each of `rows` (its
        passage's length for a sentence past the last)."""
        count = tf.gather(num_sentences, rows)
        index = tf.gather(sentence_starts.row_starts(), rows) + tf.minimum(
            sentence, count - 1
        )
        inside = sentence < count
        offset = tf.gather(sentence_starts.values, tf.maximum(index, 0))
        return tf.where(inside, offset, tf.gather(lengths, rows))

    u = tf.random.stateless_uniform([8, batch], tf.cast(seed, tf.int64))
    rows = tf.range(batch, dtype=tf.int64)
    budget = tf.constant(max_num_tokens, tf.int64)
    target = tf.where(u[0] < short_seq_prob, 2 + _uniform_int(u[1], budget - 1), budget)
    # First sentence from which the rest of the passage fits in the target.
    fits_from = _count_below(tf.cast(sentence_starts, tf.int64), lengths - target)
    fits_from = tf.clip_by_value(fits_from, 0, tf.maximum(num_sentences - 2, 0))
    chunk_start = _uniform_int(u[2], fits_from + 1)
    chunk_offset = start_of(rows, chunk_start)
    chunk_size = (
        _count_below(tf.cast(sentence_starts, tf.int64), chunk_offset + target)
        - chunk_start
    )
    a_sentences = tf.where(chunk_size >= 2, 1 + _uniform_int(u[3], chunk_size - 1), 1)
    a_end = start_of(rows, chunk_start + a_sentences)
    is_random_next = (chunk_size <= 1) | (u[4] < 0.5)

    # Random next: sentences of another passage of the batch.
    shift = tf.where(batch > 1, 1 + _uniform_int(u[5], batch - 1), 0)
    other = (rows + shift) % batch
    other_start = _uniform_int(u[6], tf.gather(num_sentences, other))
    other_offset = start_of(other, other_start)
    b_target = tf.maximum(target - (a_end - chunk_offset), 1)
    other_end_sentence = _count_below(
        tf.gather(tf.cast(sentence_starts, tf.int64), other),
        other_offset + b_target,
    )
    random_end = start_of(other, other_end_sentence)

    chunk_end = start_of(rows, chunk_start + chunk_size)
    b_rows = tf.where(is_random_next, other, rows)
    b_start = tf.where(is_random_next, other_offset, a_end)
    b_end = tf.where(is_random_next, random_end, chunk_end)
    segment_a = _token_slices(ids, rows, chunk_offset, a_end)
    segment_b = _token_slices(ids, b_rows, b_start, b_end)
    return segment_a, segment_b, tf.cast(is_random_next, tf.int32)
