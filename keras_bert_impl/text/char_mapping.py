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


@dataclasses.dataclass(frozen=True)
class CharMapping:
    """Piecewise-constant lookups over code points.

    Attributes:
        kind_starts: int32 [R], sorted first code point of each run of equal input kind.
        kinds: int32 [R], KEEP / DROP / REWRITE for each run.
        rewrite_keys: int32 [M], sorted code points whose kind is REWRITE.
        rewrite_splits: int32 [M + 1], row splits of the replacement of each key.
        rewrite_values: int32 [sum of lengths], the replacement code points.
        class_starts: int32 [C], sorted first code point of each run of equal output class.
        classes: int32 [C], WORD_CHAR / SEPARATOR / ISOLATED for each run.
    """

    kind_starts: np.ndarray
    kinds: np.ndarray
    rewrite_keys: np.ndarray
    rewrite_splits: np.ndarray
    rewrite_values: np.ndarray
    class_starts: np.ndarray
    classes: np.ndarray


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

    kind_starts, kind_values = _runs(kinds)
    class_starts, class_values = _runs(classes)
    return CharMapping(
        kind_starts=kind_starts,
        kinds=kind_values,
        rewrite_keys=keys,
        rewrite_splits=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32),
        rewrite_values=np.asarray(values, dtype=np.int32),
        class_starts=class_starts,
        classes=class_values,
    )
