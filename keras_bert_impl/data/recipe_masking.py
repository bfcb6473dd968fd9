"""BERT's masked-LM recipe on NumPy arrays (google-research/bert's
`create_masked_lm_predictions`), for the static pretraining files.

`num_to_predict = min(max_predictions_per_seq, max(1, round(len(tokens) *
masked_lm_prob)))`, with `[CLS]` and `[SEP]` counted in `len(tokens)` and
Python's round-half-to-even. Candidates (all tokens but `[CLS]`/`[SEP]`, or
whole words as `whole_words` defines them) are visited in random order and taken
while the total stays within `num_to_predict`; a whole word that would overflow
is skipped. Each chosen token becomes `[MASK]` (80%), stays itself (10%), or
becomes a uniformly random vocabulary id (10%). Positions are sorted. The same
rule runs in the graph for dynamic masking (`data.masking`).
"""

import dataclasses

import numpy as np

from keras_bert_impl.constants import CLS, MASK, SEP, SPECIAL_TOKENS
from keras_bert_impl.data.whole_words import continuation_flags
from keras_bert_impl.data.whole_words import word_start_positions


@dataclasses.dataclass(frozen=True)
class MaskingVocabulary:
    """What masking needs to know about the vocabulary.

    Args:
        vocab_size: random replacements are drawn from `[0, vocab_size)`, the
            whole vocabulary, as in the reference.
        cls_id, sep_id, mask_id: ids of `[CLS]`, `[SEP]`, `[MASK]`.
        is_continuation: bool array `[vocab_size]`, True for `##` pieces
            (`whole_words.continuation_flags`).
    """

    vocab_size: int
    cls_id: int
    sep_id: int
    mask_id: int
    is_continuation: np.ndarray

    @classmethod
    def from_tokens(cls, vocabulary, source="vocabulary"):
        """Builds it from the vocabulary's token strings (index = id).

        Raises:
            ValueError: naming `source` and every missing special token.
        """
        index = {token: i for i, token in enumerate(vocabulary)}
        missing = [t for t in SPECIAL_TOKENS if t not in index]
        if missing:
            raise ValueError(
                f"{source} lacks the special token(s) {', '.join(missing)}; a BERT "
                "vocabulary needs [PAD], [UNK], [CLS], [SEP] and [MASK], one per line."
            )
        return cls(
            vocab_size=len(vocabulary),
            cls_id=index[CLS],
            sep_id=index[SEP],
            mask_id=index[MASK],
            is_continuation=continuation_flags(vocabulary),
        )


def num_to_predict(num_tokens, masked_lm_prob, max_predictions_per_seq):
    """The reference's prediction count for a sequence of `num_tokens`.

    `num_tokens` counts [CLS] and the [SEP]s. Works on ints and NumPy arrays;
    NumPy's `rint` rounds half to even like Python's `round`.
    """
    return np.minimum(
        max_predictions_per_seq,
        np.maximum(1, np.rint(np.asarray(num_tokens) * masked_lm_prob)),
    ).astype(np.int64)


def _take_per_row(array, index):
    """`np.take_along_axis(array, index, axis=1)`, several times faster."""
    row_offsets = np.arange(len(array))[:, None] * array.shape[1]
    return np.take(array.reshape(-1), index + row_offsets)


def _take_whole_words(word_start, candidate, visit_order, budget):
    """Walks each row's words in visit order, taking a word while it fits.

    A word that would overflow the budget is skipped and the walk goes on, as
    in the reference. All rows advance together, one word per step.

    Returns:
        bool `[n, max_seq_length]`: whether the word visited at each step is taken.
    """
    num_rows, seq_length = word_start.shape
    row_offsets = np.arange(num_rows)[:, None] * seq_length
    word_size = np.bincount(
        (word_start + row_offsets)[candidate], minlength=word_start.size
    )
    size_in_order = _take_per_row(word_size.reshape(num_rows, seq_length), visit_order)
    taken_count = np.zeros(num_rows, dtype=np.int64)
    taken_in_order = np.zeros((num_rows, seq_length), dtype=bool)
    for step in range(seq_length):
        size = size_in_order[:, step]
        take = (size > 0) & (taken_count + size <= budget)
        taken_in_order[:, step] = take
        taken_count += np.where(take, size, 0)
        if np.all((taken_count >= budget) | (size == 0)):
            break
    return taken_in_order


def choose_masked_positions(token_ids, input_mask, recipe, vocab, np_rng):
    """Picks the positions to predict: step 5 of the module docstring.

    Every candidate (whole word, or single token without whole-word masking)
    gets a random sort key; visiting candidates by key is the reference's
    `rng.shuffle(cand_indexes)`.

    Returns:
        bool `[n, max_seq_length]`, True where a token is to be predicted.
    """
    num_rows, seq_length = token_ids.shape
    position = np.arange(seq_length)[None, :]
    candidate = (
        (input_mask == 1) & (token_ids != vocab.cls_id) & (token_ids != vocab.sep_id)
    )
    # A word is named by the position where it starts (`whole_words`).
    starts_word = candidate.copy()
    word_start = np.broadcast_to(position, token_ids.shape)
    if recipe.do_whole_word_mask:
        starts_word, word_start = word_start_positions(
            token_ids, candidate, vocab.is_continuation
        )

    sort_key = np_rng.random((num_rows, seq_length))
    sort_key[~starts_word] = np.inf
    visit_order = np.argsort(sort_key, axis=1)
    budget = num_to_predict(
        input_mask.sum(axis=1), recipe.masked_lm_prob, recipe.max_predictions_per_seq
    )
    if recipe.do_whole_word_mask:
        taken_in_order = _take_whole_words(word_start, candidate, visit_order, budget)
    else:
        # One-token words always fit while the budget lasts.
        num_words = starts_word.sum(axis=1)
        taken_in_order = position < np.minimum(budget, num_words)[:, None]

    row_offsets = np.arange(num_rows)[:, None] * seq_length
    word_taken = np.zeros(num_rows * seq_length, dtype=bool)
    word_taken[visit_order + row_offsets] = taken_in_order
    return candidate & word_taken[word_start + row_offsets]


def mask_tokens(token_ids, input_mask, recipe, vocab, np_rng):
    """Masks packed rows and lists the predictions.

    Returns:
        `(input_ids, masked_lm_positions, masked_lm_ids, masked_lm_weights)`:
        the rows with [MASK]/random/kept tokens in place, and the sorted
        positions, original ids and weights, zero-padded to
        `max_predictions_per_seq`.
    """
    chosen = choose_masked_positions(token_ids, input_mask, recipe, vocab, np_rng)
    # Row-major order lists each row's chosen positions sorted; `slot` is a
    # position's index among its row's predictions.
    rows, positions = np.nonzero(chosen)
    slot = (np.cumsum(chosen, axis=1) - 1)[rows, positions]
    originals = token_ids[rows, positions]

    # One uniform draw decides: [0, 0.8) [MASK], [0.8, 0.9) keep, [0.9, 1) random.
    action = np_rng.random(len(rows))
    random_ids = np_rng.integers(0, vocab.vocab_size, size=len(rows))
    input_ids = token_ids.copy()
    input_ids[rows, positions] = np.where(
        action < 0.8, vocab.mask_id, np.where(action < 0.9, originals, random_ids)
    )

    shape = (len(token_ids), recipe.max_predictions_per_seq)
    masked_lm_positions = np.zeros(shape, dtype=np.int64)
    masked_lm_ids = np.zeros(shape, dtype=np.int64)
    masked_lm_weights = np.zeros(shape, dtype=np.float32)
    masked_lm_positions[rows, slot] = positions
    masked_lm_ids[rows, slot] = originals
    masked_lm_weights[rows, slot] = 1.0
    return input_ids, masked_lm_positions, masked_lm_ids, masked_lm_weights
