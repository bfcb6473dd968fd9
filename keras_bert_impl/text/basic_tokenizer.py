"""BERT's BasicTokenizer (cleaning, normalization, word splitting) as a TensorFlow graph.

Everything runs on code points with core TensorFlow ops (`UnicodeDecodeWithOffsets`,
`LowerBound`/`UpperBound`, gathers, cumulative sums, `UnicodeEncode`), so a graph that
uses it needs no custom op and keeps byte offsets into the original strings.

Invalid UTF-8 never raises: each invalid byte sequence decodes to U+FFFD, which BERT's
text cleaning then drops, exactly what the reference does with text decoded from bytes
with `errors="replace"`.

Special tokens written literally in the text (e.g. "[MASK]") can be kept whole, as the
reference does for its added tokens: they are matched on the original characters (case
and all) before normalization and come out as words of their own.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_bert_impl.text import char_mapping

# Plain graph code without Python control flow on tensors: tracing it through autograph
# only costs time.
_NOT_CONVERTED = tf.autograph.experimental.do_not_convert

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
        special_index: int32 [num_words]: index of the special token a word is, else -1
            (such a word holds one placeholder character spanning the whole literal).
        special_strings: tf.string [num special tokens].
    """

    chars: tf.RaggedTensor
    row_splits: tf.Tensor
    char_starts: tf.Tensor
    char_ends: tf.Tensor
    special_index: tf.Tensor
    special_strings: tf.Tensor

    def strings(self):
        """UTF-8 words as a RaggedTensor tf.string [batch, (words)]."""
        words = tf.where(
            self.special_index >= 0,
            clamped_gather(self.special_strings, self.special_index),
            tf.strings.unicode_encode(self.chars, "UTF-8"),
        )
        return tf.RaggedTensor.from_row_splits(words, self.row_splits, validate=False)


class BasicTokenizer(tf.Module):
    """Cleans, normalizes and splits text into words the way BERT's BasicTokenizer does.

    Args:
        lowercase: lower-case the text.
        strip_accents: decompose (NFD) and drop non-spacing marks. None follows `lowercase`.
        special_tokens: strings kept whole when they occur literally in the text; each must
            start and end with a punctuation character (like "[MASK]") so that a match
            always falls on word boundaries.
    """

    def __init__(
        self, lowercase=True, strip_accents=None, special_tokens=(), name=None
    ):
        super().__init__(name=name)
        self.lowercase = bool(lowercase)
        self.strip_accents = (
            self.lowercase if strip_accents is None else bool(strip_accents)
        )
        tables = char_mapping.build_char_mapping(self.lowercase, self.strip_accents)
        self._bmp_info = tf.constant(tables.bmp_info)
        self._astral_starts = tf.constant(tables.astral_starts)
        self._astral_info = tf.constant(tables.astral_info)
        self._rewrite_splits = tf.constant(tables.rewrite_splits)
        self._rewrite_values = tf.constant(tables.rewrite_values)

        special_tokens = list(special_tokens)
        for token in special_tokens:
            if not token or not all(
                _char_class(tables, ord(c)) == char_mapping.ISOLATED
                for c in (token[0], token[-1])
            ):
                raise ValueError(
                    f"Special token {token!r} must start and end with a punctuation character."
                )
        count = len(special_tokens)
        self._special_strings = tf.constant(special_tokens, tf.string, shape=[count])
        longest = max([len(token) for token in special_tokens], default=0)
        # [tokens, longest]: code points, -1 past a token's end ("matches anything").
        self._special_code_points = tf.constant(
            [
                [ord(c) for c in token] + [-1] * (longest - len(token))
                for token in special_tokens
            ],
            tf.int32,
            shape=[count, longest],
        )
        self._special_first_chars = sorted({ord(token[0]) for token in special_tokens})
        self._special_lengths = tf.constant(
            [len(token) for token in special_tokens], tf.int32, shape=[count]
        )

    def _info(self, code_points):
        """Packed kind / class / rewrite index of each code point (see char_mapping)."""
        info = tf.gather(
            self._bmp_info, tf.minimum(code_points, char_mapping.FIRST_ASTRAL - 1)
        )
        # Astral code points (emoji, rare scripts) are few: binary-search only those.
        astral = tf.where(code_points >= char_mapping.FIRST_ASTRAL)
        runs = tf.searchsorted(
            self._astral_starts, tf.gather_nd(code_points, astral), side="right"
        )
        return tf.tensor_scatter_nd_update(
            info, astral, tf.gather(self._astral_info, runs - 1)
        )

    def _match_special_tokens(self, code_points, rows):
        """Per character: index of the special token that starts there (else -1), its length."""
        no_match = tf.fill(tf.shape(code_points), -1)
        if not self._special_first_chars:
            return no_match, tf.zeros_like(no_match)
        # Only characters that can start a token ("[") are candidates; compare the windows
        # that follow them ([candidates, longest]) with every token at once.
        is_candidate = tf.reduce_any(
            tf.equal(code_points[:, tf.newaxis], self._special_first_chars), axis=1
        )
        candidates = tf.where(is_candidate)
        window = candidates + tf.range(
            tf.shape(self._special_code_points, out_type=tf.int64)[1]
        )
        candidate_rows = tf.gather_nd(rows, candidates)[:, tf.newaxis]
        in_text = tf.equal(clamped_gather(rows, window), candidate_rows) & (
            window < tf.shape(code_points, out_type=tf.int64)[0]
        )
        window_chars = tf.where(in_text, clamped_gather(code_points, window), -2)
        expected = self._special_code_points[tf.newaxis]
        matched = tf.reduce_all(
            tf.equal(window_chars[:, tf.newaxis], expected) | tf.equal(expected, -1),
            axis=2,
        )
        token_index = tf.range(tf.shape(matched)[1])
        match_index = tf.reduce_max(tf.where(matched, token_index, -1), axis=1)
        match_index = tf.tensor_scatter_nd_update(no_match, candidates, match_index)
        lengths = tf.where(
            match_index >= 0, clamped_gather(self._special_lengths, match_index), 0
        )
        return match_index, lengths

    def _normalize(self, code_points, dropped):
        """Flat code points -> (normalized code points, index of their source character).

        Characters where `dropped` is True produce nothing.
        """
        info = self._info(code_points)
        kind = tf.bitwise.bitwise_and(info, char_mapping.FIELD_MASK)
        is_rewrite = tf.equal(kind, char_mapping.REWRITE)
        rewrite_index = tf.bitwise.right_shift(info, char_mapping.REWRITE_SHIFT)
        rewrite_start = clamped_gather(self._rewrite_splits, rewrite_index)
        rewrite_length = (
            clamped_gather(self._rewrite_splits, rewrite_index + 1) - rewrite_start
        )
        kept_length = tf.cast(tf.equal(kind, char_mapping.KEEP), tf.int32)
        out_length = tf.where(is_rewrite, rewrite_length, kept_length)
        out_length = tf.where(dropped, 0, out_length)
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

    @_NOT_CONVERTED
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

        # A special token literal becomes its first character ("[", punctuation, so a word
        # of its own) spanning the whole literal; the rest of the literal is dropped.
        special, special_length = self._match_special_tokens(code_points, char_rows)
        inside = _inside_matches(special_length)
        last_char = tf.range(tf.shape(special, out_type=tf.int64)[0]) + tf.cast(
            tf.maximum(special_length, 1) - 1, tf.int64
        )
        char_ends = tf.gather(char_ends, last_char)
        normalized, source = self._normalize(code_points, inside)
        rows = tf.gather(char_rows, source)
        char_class = tf.bitwise.bitwise_and(
            tf.bitwise.right_shift(self._info(normalized), char_mapping.CLASS_SHIFT),
            char_mapping.FIELD_MASK,
        )

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
            special_index=tf.gather(special, tf.boolean_mask(source, starts_word)),
            special_strings=self._special_strings,
        )


def _char_class(tables, code_point):
    """Output class of one code point, read from the packed tables in Python."""
    if code_point < char_mapping.FIRST_ASTRAL:
        info = int(tables.bmp_info[code_point])
    else:
        run = int(np.searchsorted(tables.astral_starts, code_point, side="right")) - 1
        info = int(tables.astral_info[run])
    return (info >> char_mapping.CLASS_SHIFT) & char_mapping.FIELD_MASK


def _inside_matches(match_lengths):
    """True for the characters after the first of each match (`match_lengths` > 0 at starts)."""
    size = tf.shape(match_lengths)[0]
    starts = tf.cast(tf.where(match_lengths > 0)[:, 0], tf.int32)
    lengths = tf.gather(match_lengths, starts)
    # +1 after each match start, -1 at its end: the running sum is 1 inside a match.
    delta = tf.math.unsorted_segment_sum(
        tf.concat([tf.ones_like(starts), -tf.ones_like(starts)], 0),
        tf.concat([starts + 1, starts + lengths], 0),
        size + 1,
    )
    return tf.cumsum(delta)[:size] > 0


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
