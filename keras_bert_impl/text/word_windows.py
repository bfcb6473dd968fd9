"""Windows of whole words: how a text longer than a sequence is cut for token
classification.

The one rule behind the CoNLL reader's training rows, the token classifier's
`predict_text` and the exported token-classifier graph: a window holds as many
whole words as fit in `budget` pieces; a word longer than that sits alone in
its window, cut to its first `budget` pieces (its tag is its first piece's, so
it is still tagged); the next window starts at the first word left out. Windows
never overlap, and every word lands in exactly one.

Core TensorFlow ops only (a `tf.while_loop` over windows, a binary search per
step), so it runs in `tf.data`, eagerly, and in a graph that TF Serving serves.
"""

import tensorflow as tf

_NOT_CONVERTED = tf.autograph.experimental.do_not_convert


@_NOT_CONVERTED
def word_windows(pieces, budget):
    """Cuts each text's words into consecutive windows of whole words.

    Args:
        pieces: RaggedTensor `[batch, (words), (pieces)]`.
        budget: pieces per window (the sequence length less [CLS] and [SEP]),
            an int or int64 scalar tensor >= 1.

    Returns:
        (pieces `[windows, (words), (pieces)]`, the text of each window (int64
        `[windows]`), the index of its first word in that text (int64
        `[windows]`)). The windows' words are `pieces`' words in their order
        (uncut: packing cuts a long word), so per-word values regroup with
        the windows' row lengths. A text without words has no window.
    """
    budget = tf.cast(budget, tf.int64)
    sizes = tf.minimum(pieces.values.row_lengths(), budget)  # [all words]
    ends = tf.cumsum(sizes)  # pieces up to and including each word, all texts
    before = ends - sizes  # pieces before each word, all texts
    # tf.searchsorted's own checks cost more than its search, eagerly.
    sorted_ends = tf.expand_dims(ends, 0)

    def open_windows(cursor, limits, starts):
        # One window opens at each unfinished text's cursor; the cursor moves
        # past the words that fit: `ends` never decreases, so the first word
        # past the budget is a binary search. The cursor always moves (a word
        # alone fits: its size is cut to the budget); finished texts drop out.
        starts = tf.tensor_scatter_nd_update(
            starts, tf.expand_dims(cursor, 1), tf.ones_like(cursor, tf.bool)
        )
        limit = tf.gather(before, cursor) + budget
        cursor = tf.reshape(
            tf.raw_ops.UpperBound(
                sorted_inputs=sorted_ends,
                values=tf.expand_dims(limit, 0),
                out_type=tf.int64,
            ),
            [-1],
        )
        # Plain ops, not tf.boolean_mask: eagerly each op costs its dispatch.
        going = tf.reshape(tf.where(cursor < limits), [-1])
        return tf.gather(cursor, going), tf.gather(limits, going), starts

    # One step per window of the longest text, all unfinished texts at once.
    has_words = pieces.row_lengths() > 0
    _, _, starts = tf.while_loop(
        lambda cursor, *_: tf.size(cursor) > 0,
        open_windows,
        (
            tf.boolean_mask(pieces.row_starts(), has_words),
            tf.boolean_mask(pieces.row_limits(), has_words),
            tf.zeros_like(sizes, tf.bool),
        ),
        shape_invariants=(
            tf.TensorShape([None]),
            tf.TensorShape([None]),
            sizes.shape,
        ),
    )
    window_of_word = tf.cumsum(tf.cast(starts, tf.int64)) - 1
    first = tf.where(starts)[:, 0]  # flat index of each window's first word
    window_row = tf.gather(pieces.value_rowids(), first)
    window_first = first - tf.gather(pieces.row_starts(), window_row)
    windows = tf.RaggedTensor.from_value_rowids(
        pieces.values, window_of_word, nrows=tf.shape(first, out_type=tf.int64)[0]
    )
    return windows, window_row, window_first
