"""Perturbed copies of sentences for task-specific distillation.

A teacher labels text the labelled set does not contain; a student trained
on those labels learns more of the teacher's function than the labelled set
alone shows it (Tang et al. 2019, "Distilling Task-Specific Knowledge from
BERT into Simple Neural Networks", section 3.3; TinyBERT's data augmentation
follows the same idea). The rules are Tang et al.'s, without the
part-of-speech swap (which needs a tagger):

- masking: each word becomes `[MASK]` with probability `mask_probability`,
  so the teacher shows how much each word mattered;
- n-gram sampling: with probability `ngram_probability` the copy is cut to a
  random n-gram of itself, n uniform in 1..`max_ngram`.

Words are whitespace-separated tokens. A copy equal to its source, or to an
earlier copy of it, is drawn again (a bounded number of times), so copies
add new text whenever the sentence allows it.
"""

import numpy as np

from keras_bert_impl.constants import MASK

# Draws per wanted copy before a short sentence is allowed a repeat.
_TRIES_PER_COPY = 10


def perturbed_copies(
    texts,
    copies,
    *,
    mask_probability=0.1,
    ngram_probability=0.25,
    max_ngram=5,
    mask_token=MASK,
    seed=0,
):
    """`copies` perturbed versions of each text, in order.

    Args:
        texts: sentences (str).
        copies: versions per sentence (>= 1).
        mask_probability: chance that a word becomes `mask_token`.
        ngram_probability: chance that a version is cut to a random n-gram.
        max_ngram: longest n-gram kept.
        mask_token: what a masked word becomes (the tokenizer's mask token).
        seed: the random seed; the same seed gives the same copies.

    Returns:
        A list of `len(texts) * copies` strings: the copies of `texts[0]`,
        then those of `texts[1]`, and so on.

    Raises:
        ValueError: a setting out of range, or a text that is not a str.
    """
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ValueError(f"copies must be an integer >= 1, got {copies!r}.")
    for name, value in (
        ("mask_probability", mask_probability),
        ("ngram_probability", ngram_probability),
    ):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}.")
    if isinstance(max_ngram, bool) or not isinstance(max_ngram, int) or max_ngram < 1:
        raise ValueError(f"max_ngram must be an integer >= 1, got {max_ngram!r}.")
    rng = np.random.default_rng(seed)
    out = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(
                f"Text {index} is a {type(text).__name__}; perturbed copies are "
                "made of str sentences."
            )
        words = text.split()
        seen = {" ".join(words)}
        made = []
        for _ in range(copies * _TRIES_PER_COPY):
            if len(made) == copies:
                break
            copy = _perturb(
                words, rng, mask_probability, ngram_probability, max_ngram, mask_token
            )
            if copy not in seen:
                seen.add(copy)
                made.append(copy)
        # A sentence too short for enough distinct copies repeats its last.
        made += [made[-1] if made else " ".join(words)] * (copies - len(made))
        out.extend(made)
    return out


def _perturb(words, rng, mask_probability, ngram_probability, max_ngram, mask_token):
    words = [mask_token if rng.random() < mask_probability else word for word in words]
    if words and rng.random() < ngram_probability:
        n = min(int(rng.integers(1, max_ngram + 1)), len(words))
        start = int(rng.integers(0, len(words) - n + 1))
        words = words[start : start + n]
    return " ".join(words)
