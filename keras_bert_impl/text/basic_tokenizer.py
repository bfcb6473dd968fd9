"""BERT's BasicTokenizer (cleaning, normalization, word splitting) as a TensorFlow graph.

Everything runs on code points with core TensorFlow ops (`UnicodeDecodeWithOffsets`,
`LowerBound`/`UpperBound`, gathers, cumulative sums, `UnicodeEncode`), so a graph that
uses it needs no custom op and keeps byte offsets into the original strings.

Invalid UTF-8 never raises: each invalid byte sequence decodes to U+FFFD, which BERT's
text cleaning then drops, exactly what the reference does with text decoded from bytes
with `errors="replace"`.
"""

import dataclasses

import tensorflow as tf

from keras_bert_impl.text import char_mapping

_REPLACEMENT_CHAR = 0xFFFD


@dataclasses.dataclass
class SplitWords:
    """Normalized words of a batch of strings.

    Attributes:
        chars: RaggedTensor int32 [num_words, (chars)]: normalized code points of every
            word of the batch, in order.
        row_splits: int64 [batch + 1]: words `row_splits[i]:row_splits[i+1]` belong to text i.
        char_starts: int64 [total chars]: byte offset, in its original string, of the
            character each normalized code point comes from (aligned with `chars.flat_values`).
        char_ends: int64 [total chars]: end byte offset of that original character.
    """

    chars: tf.RaggedTensor
    row_splits: tf.Tensor
    char_starts: tf.Tensor
    char_ends: tf.Tensor

    def strings(self):
        """UTF-8 words as a RaggedTensor tf.string [batch, (words)]."""
        words = tf.strings.unicode_encode(self.chars, "UTF-8")
        return tf.RaggedTensor.from_row_splits(words, self.row_splits, validate=False)


def _run_lookup(starts, values, code_points):
    """Value of the run that contains each code point (runs sorted by first code point)."""
    index = tf.searchsorted(starts, code_points, side="right") - 1
    return tf.gather(values, index)


class BasicTokenizer(tf.Module):
    """Cleans, normalizes and splits text into words the way BERT's BasicTokenizer does.

    Args:
        lowercase: lower-case the text.
        strip_accents: decompose (NFD) and drop non-spacing marks. None follows `lowercase`.
    """

    def __init__(self, lowercase=True, strip_accents=None, name=None):
        super().__init__(name=name)
        self.lowercase = bool(lowercase)
        self.strip_accents = (
            self.lowercase if strip_accents is None else bool(strip_accents)
        )
        tables = char_mapping.build_char_mapping(self.lowercase, self.strip_accents)
        self._kind_starts = tf.constant(tables.kind_starts)
        self._kinds = tf.constant(tables.kinds)
        self._rewrite_keys = tf.constant(tables.rewrite_keys)
        self._rewrite_splits = tf.constant(tables.rewrite_splits)
        self._rewrite_values = tf.constant(tables.rewrite_values)
        self._class_starts = tf.constant(tables.class_starts)
        self._classes = tf.constant(tables.classes)

    def _normalize(self, code_points):
        """Flat code points -> (normalized code points, index of their source character)."""
        kind = _run_lookup(self._kind_starts, self._kinds, code_points)
        is_rewrite = tf.equal(kind, char_mapping.REWRITE)
        key_index = tf.searchsorted(self._rewrite_keys, code_points)
        rewrite_start = clamped_gather(self._rewrite_splits, key_index)
        rewrite_length = (
            clamped_gather(self._rewrite_splits, key_index + 1) - rewrite_start
        )
        kept_length = tf.cast(tf.equal(kind, char_mapping.KEEP), tf.int32)
        out_length = tf.where(is_rewrite, rewrite_length, kept_length)
        source = tf.repeat(tf.range(tf.shape(code_points)[0]), out_length)
        out_starts = tf.cumsum(out_length, exclusive=True)
        position = tf.range(tf.shape(source)[0]) - tf.gather(out_starts, source)
        # Kept characters would index anywhere in the rewrite table: clamp, then discard.
        normalized = tf.where(
            tf.gather(is_rewrite, source),
            clamped_gather(
                self._rewrite_values, tf.gather(rewrite_start, source) + position
            ),
            tf.gather(code_points, source),
        )
        return normalized, source

    def split(self, texts):
        """Splits a 1-D tf.string batch into normalized words.

        Args:
            texts: tf.string [batch].

        Returns:
            A `SplitWords`.
        """
        decoded, starts = tf.strings.unicode_decode_with_offsets(
            texts, "UTF-8", errors="replace", replacement_char=_REPLACEMENT_CHAR
        )
        code_points = decoded.flat_values
        char_rows = decoded.value_rowids()
        char_starts = starts.flat_values
        # A character ends where the next one of its text starts, the last one at the end.
        is_last = tf.equal(
            tf.range(tf.shape(char_rows, out_type=tf.int64)[0]) + 1,
            tf.gather(decoded.row_splits[1:], char_rows),
        )
        byte_lengths = tf.cast(tf.strings.length(texts, unit="BYTE"), tf.int64)
        char_ends = tf.where(
            is_last,
            tf.gather(byte_lengths, char_rows),
            tf.concat([char_starts[1:], tf.zeros([1], tf.int64)], 0),
        )

        normalized, source = self._normalize(code_points)
        rows = tf.gather(char_rows, source)
        char_class = _run_lookup(self._class_starts, self._classes, normalized)

        # A word starts at a punctuation/CJK character, or at a word character that does
        # not continue a word character of the same text.
        previous_class = tf.concat([[char_mapping.SEPARATOR], char_class[:-1]], 0)
        previous_row = tf.concat([[-1], rows[:-1]], 0)
        in_word = tf.not_equal(char_class, char_mapping.SEPARATOR)
        starts_word = in_word & (
            tf.equal(char_class, char_mapping.ISOLATED)
            | tf.not_equal(previous_class, char_mapping.WORD_CHAR)
            | tf.not_equal(rows, previous_row)
        )
        word_starts = tf.boolean_mask(starts_word, in_word)
        word_ids = tf.cumsum(tf.cast(word_starts, tf.int64)) - 1
        num_words = tf.reduce_sum(tf.cast(word_starts, tf.int64))
        word_chars = tf.RaggedTensor.from_value_rowids(
            tf.boolean_mask(normalized, in_word),
            word_ids,
            nrows=num_words,
            validate=False,
        )
        word_rows = tf.boolean_mask(rows, starts_word)
        row_splits = tf.RaggedTensor.from_value_rowids(
            word_rows,
            word_rows,
            nrows=tf.shape(texts, out_type=tf.int64)[0],
            validate=False,
        ).row_splits
        kept_source = tf.boolean_mask(source, in_word)
        return SplitWords(
            chars=word_chars,
            row_splits=row_splits,
            char_starts=tf.gather(char_starts, kept_source),
            char_ends=tf.gather(char_ends, kept_source),
        )


def clamped_gather(values, indices):
    """Gather with indices clamped into `values` (which may be empty), for lanes that a
    later `tf.where` discards."""
    padded = tf.concat([values, tf.zeros([1], values.dtype)], 0)
    return tf.gather(
        padded,
        tf.clip_by_value(indices, 0, tf.shape(values, out_type=indices.dtype)[0]),
    )


def utf8_length(code_points):
    """Number of UTF-8 bytes of each code point (int64)."""
    return (
        1
        + tf.cast(code_points >= 0x80, tf.int64)
        + tf.cast(code_points >= 0x800, tf.int64)
        + tf.cast(code_points >= 0x10000, tf.int64)
    )
