"""UTF-8 byte offsets → character offsets, inside an exported graph.

The tokenizer reports byte offsets into the UTF-8 input; clients index their
strings by character (Python `str`, a JSON string's code points), so the
exported signatures answer in characters. Core TensorFlow ops only.
"""

import tensorflow as tf


def char_offsets(texts, byte_offsets):
    """Character offsets of byte offsets that fall on character boundaries.

    Args:
        texts: tf.string `[batch]`.
        byte_offsets: int `[batch, n]`; negative entries are padding.

    Returns:
        int32 `[batch, n]`: the number of characters before each offset
        (so a start offset becomes its character's index, an end offset the
        index after its last character); -1 where the input was negative.
        Invalid UTF-8 counts one character per replaced sequence.
    """
    byte_offsets = tf.cast(byte_offsets, tf.int64)
    _, char_starts = tf.strings.unicode_decode_with_offsets(
        texts, "UTF-8", errors="replace"
    )
    # One sorted search over all texts laid end to end (no per-row padding, so
    # rows of empty texts and empty batches need no special case).
    base = tf.cumsum(tf.cast(tf.strings.length(texts), tf.int64), exclusive=True)
    starts = char_starts.values + tf.gather(base, char_starts.value_rowids())
    targets = byte_offsets + base[:, tf.newaxis]
    found = tf.searchsorted(
        starts[tf.newaxis], tf.reshape(targets, [1, -1]), side="left", out_type=tf.int64
    )
    chars = (
        tf.reshape(found, tf.shape(byte_offsets)) - char_starts.row_starts()[:, None]
    )
    return tf.where(byte_offsets >= 0, tf.cast(chars, tf.int32), -1)
