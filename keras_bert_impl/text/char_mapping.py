"""Per-code-point lookup tables for BERT's text normalization and word splitting.

BERT's BasicTokenizer decides everything one character at a time: a character is dropped
(control and format characters, NUL, U+FFFD), kept as is, or rewritten (NFD decomposition
with non-spacing marks removed, then lower-casing); every resulting character is a word
character, a separator (whitespace) or a word of its own (punctuation, CJK ideographs).
These tables let a TensorFlow graph apply those rules with `searchsorted` and `gather`
only, so the graph needs no custom op for normalization.
"""

import dataclasses
import functools
import unicodedata

import numpy as np

from keras_bert_impl.text import bert_char_tables

NUM_CODE_POINTS = 0x110000

# Input kinds: what happens to an input character.
KEEP = 0
DROP = 1
REWRITE = 2

# Output classes: how a normalized character takes part in word splitting.
WORD_CHAR = 0
SEPARATOR = 1
ISOLATED = 2

_HANGUL_SYLLABLES = range(0xAC00, 0xD7A4)


# A code point's info packs its kind (2 bits), its class (2 bits) and, for REWRITE, the
# index of its replacement (the remaining bits).
CLASS_SHIFT = 2
REWRITE_SHIFT = 4
FIELD_MASK = 3
FIRST_ASTRAL = 0x10000


@dataclasses.dataclass(frozen=True)
class CharMapping:
    """Per-code-point info: a dense table for the BMP, runs for the astral planes.

    Attributes:
        bmp_info: int32 [65536], info of each BMP code point (one gather per character).
        astral_starts: int32 [R], sorted first code point of each run of equal info at or
            above U+10000 (rare in text: looked up with a binary search).
        astral_info: int32 [R], the info of each run.
        rewrite_splits: int32 [M + 1], row splits of the replacement of each REWRITE point.
        rewrite_values: int32 [sum of lengths], the replacement code points.
    """

    bmp_info: np.ndarray
    astral_starts: np.ndarray
    astral_info: np.ndarray
    rewrite_splits: np.ndarray
    rewrite_values: np.ndarray


def _fill(table, ranges, value):
    for first, last in ranges:
        table[first : last + 1] = value


def _runs(table):
    """Dense per-code-point table -> (run starts, run values)."""
    starts = np.concatenate([[0], np.flatnonzero(np.diff(table)) + 1])
    return starts.astype(np.int32), table[starts].astype(np.int32)


def _in_ranges(ranges):
    table = np.zeros(NUM_CODE_POINTS, dtype=bool)
    _fill(table, ranges, True)
    return table


def _rewrite_candidates():
    """Code points that NFD or lower-casing can change (anything else maps to itself)."""
    yield from bert_char_tables.ACCENT_STRIP_OVERRIDES
    yield from bert_char_tables.LOWERCASE_OVERRIDES
    for c in range(NUM_CODE_POINTS):
        char = chr(c)
        if c in _HANGUL_SYLLABLES or char.lower() != char:
            yield c
        elif unicodedata.decomposition(char)[:1] not in ("", "<"):
            # Canonical decompositions only; "<...>" marks compatibility ones, which NFD keeps.
            yield c


@functools.lru_cache(maxsize=1)
def _candidates():
    return tuple(sorted(set(_rewrite_candidates())))


def _strip_accents(char, is_mark):
    override = bert_char_tables.ACCENT_STRIP_OVERRIDES.get(ord(char))
    if override is not None:
        return "".join(map(chr, override))
    return "".join(c for c in unicodedata.normalize("NFD", char) if not is_mark[ord(c)])


def _lowercase(char):
    override = bert_char_tables.LOWERCASE_OVERRIDES.get(ord(char))
    return char.lower() if override is None else "".join(map(chr, override))


def _normalize_char(char, lowercase, strip_accents, is_mark):
    if strip_accents:
        char = _strip_accents(char, is_mark)
    if lowercase:
        # Character by character, like the reference: no context-dependent final sigma.
        char = "".join(_lowercase(c) for c in char)
    return char


@functools.lru_cache(maxsize=4)
def build_char_mapping(lowercase, strip_accents):
    """Builds the lookup tables for one normalization setting.

    Args:
        lowercase: lower-case every character.
        strip_accents: decompose (NFD) and drop non-spacing marks.

    Returns:
        A `CharMapping`.
    """
    kinds = np.full(NUM_CODE_POINTS, KEEP, dtype=np.int8)
    is_mark = _in_ranges(bert_char_tables.MARK_RANGES)
    rewrites = {}
    if lowercase or strip_accents:
        for c in _candidates():
            normalized = _normalize_char(chr(c), lowercase, strip_accents, is_mark)
            if normalized != chr(c):
                rewrites[c] = [ord(x) for x in normalized]
    if strip_accents:
        # A lone combining mark normalizes to nothing.
        for first, last in bert_char_tables.MARK_RANGES:
            for c in range(first, last + 1):
                rewrites[c] = []
    for c, replacement in rewrites.items():
        kinds[c] = REWRITE if replacement else DROP
    # Text cleaning runs before everything else, so it wins over any rewrite.
    _fill(kinds, bert_char_tables.REMOVED_RANGES, DROP)
    # Surrogates cannot come out of UTF-8 decoding; keep them out of the tables.
    kinds[0xD800:0xE000] = KEEP

    keys = np.flatnonzero(kinds == REWRITE).astype(np.int32)
    lengths = [len(rewrites[int(c)]) for c in keys]
    values = [v for c in keys for v in rewrites[int(c)]]

    classes = np.full(NUM_CODE_POINTS, WORD_CHAR, dtype=np.int8)
    _fill(classes, bert_char_tables.PUNCTUATION_RANGES, ISOLATED)
    _fill(classes, bert_char_tables.CJK_RANGES, ISOLATED)
    _fill(classes, bert_char_tables.WHITESPACE_RANGES, SEPARATOR)

    rewrite_index = np.zeros(NUM_CODE_POINTS, dtype=np.int32)
    rewrite_index[keys] = np.arange(len(keys), dtype=np.int32)
    info = (
        kinds.astype(np.int32)
        | (classes.astype(np.int32) << CLASS_SHIFT)
        | (rewrite_index << REWRITE_SHIFT)
    )
    astral_starts, astral_info = _runs(info[FIRST_ASTRAL:])
    return CharMapping(
        bmp_info=info[:FIRST_ASTRAL],
        astral_starts=astral_starts + FIRST_ASTRAL,
        astral_info=astral_info,
        rewrite_splits=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32),
        rewrite_values=np.asarray(values, dtype=np.int32),
    )
