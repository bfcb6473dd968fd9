"""What a whole word is, for whole-word masking: the one definition that the
static recipe (`pretraining`, NumPy) and the in-graph `MaskedLMMasker`
implement, and tests hold to the same answer on the same ids.

google-research/bert's `create_masked_lm_predictions` builds its candidates
so:

    for (i, token) in enumerate(tokens):
      if token == "[CLS]" or token == "[SEP]":
        continue
      if do_whole_word_mask and len(cand_indexes) >= 1 and token.startswith("##"):
        cand_indexes[-1].append(i)
      else:
        cand_indexes.append([i])

That is:
- a continuation piece is any token that starts with `##`;
- candidates are the real tokens except `[CLS]`, `[SEP]` (and padding);
- a word is a candidate that is not a continuation piece, plus the
  continuation pieces after it. `[CLS]`/`[SEP]` do not end a word: a `##`
  piece that opens segment B joins the last word of segment A. Only a `##`
  piece with no candidate before it in its sequence starts a word of its own.
"""

import numpy as np

CONTINUATION_PREFIX = "##"


def is_continuation(token):
    """Whether a vocabulary token continues a word (the reference's test)."""
    return token.startswith(CONTINUATION_PREFIX)


def continuation_flags(vocabulary):
    """`is_continuation` of every token of a vocabulary (index = id)."""
    return np.array([is_continuation(token) for token in vocabulary], dtype=bool)


def word_start_positions(token_ids, candidate, continuation):
    """Where each token's word starts, in NumPy.

    Args:
        token_ids: int `[n, seq]`.
        candidate: bool `[n, seq]`, the maskable tokens.
        continuation: bool `[vocab_size]`, `continuation_flags`.

    Returns:
        `(starts_word, word_start)`: bool `[n, seq]`, True on the first
        token of each word, and int `[n, seq]`, the position of the word
        start that each candidate belongs to (meaningless elsewhere).
    """
    position = np.arange(token_ids.shape[1])[None, :]
    earlier_candidates = np.cumsum(candidate, axis=1) - candidate
    starts_word = candidate & ~(continuation[token_ids] & (earlier_candidates > 0))
    word_start = np.maximum.accumulate(np.where(starts_word, position, 0), axis=1)
    return starts_word, word_start
