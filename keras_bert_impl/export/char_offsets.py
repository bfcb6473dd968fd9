"""UTF-8 byte offsets → character offsets, inside an exported graph.

The tokenizer reports byte offsets into the UTF-8 input; clients index their
strings by character (Python `str`, a JSON string's code points), so the
exported signatures answer in characters. Core TensorFlow ops only.
"""

import tensorflow as tf

_PAST_END = tf.int64.max


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
    # One column past the longest text, so that rows of empty texts still have
    # a column to search.
    starts = tf.concat(
        [
            char_starts.to_tensor(default_value=_PAST_END),
            tf.fill([tf.shape(texts)[0], 1], _PAST_END),
        ],
        axis=1,
    )
    chars = tf.searchsorted(starts, byte_offsets, side="left", out_type=tf.int32)
    return tf.where(byte_offsets >= 0, chars, -1)
