"""Perturbed copies for distillation: Tang et al.'s masking and n-gram rules,
their rates, determinism, and bad settings."""

import numpy as np
import pytest

from keras_bert_impl.data.text_augmentation import _perturb, perturbed_copies

SENTENCE = " ".join(f"w{i}" for i in range(12))


def test_copies_come_in_order_and_are_new_text():
    texts = ["a fine film", SENTENCE, "dull"]
    copies = perturbed_copies(texts, 3, seed=1)
    assert len(copies) == 9
    for source, group in zip(texts, np.reshape(copies, (3, 3))):
        if source != "dull":
            assert source not in group and len(set(group)) == 3
    assert perturbed_copies(texts, 3, seed=1) == copies
    assert perturbed_copies(texts, 3, seed=2) != copies


def test_a_one_word_text_repeats_what_it_can():
    # "dull" has two versions: itself and "[MASK]".
    assert perturbed_copies(["dull"], 3, mask_probability=1.0) == ["[MASK]"] * 3
    assert perturbed_copies([""], 2) == ["", ""]


def _draws(mask_probability, ngram_probability, count=400):
    """Single draws of the rule (perturbed_copies redraws a copy equal to its
    source, which would skew the rates)."""
    rng = np.random.default_rng(0)
    words = SENTENCE.split()
    return [
        _perturb(words, rng, mask_probability, ngram_probability, 5, "[MASK]")
        for _ in range(count)
    ]


def test_masking_rate_and_mask_token():
    copies = _draws(mask_probability=0.1, ngram_probability=0.0)
    words = [w for c in copies for w in c.split()]
    assert len(words) == 400 * 12
    masked = np.mean([w == "[MASK]" for w in words])
    assert 0.08 < masked < 0.12
    kept = [w for c in copies for i, w in enumerate(c.split()) if w != "[MASK]"]
    assert all(w.startswith("w") for w in kept)
    # Unmasked words stay in place.
    for copy in copies[:50]:
        for i, word in enumerate(copy.split()):
            assert word in ("[MASK]", f"w{i}")


def test_ngram_cuts_are_contiguous_and_at_most_max_ngram_long():
    copies = _draws(mask_probability=0.0, ngram_probability=0.25)
    cut = [c for c in copies if c != SENTENCE]
    assert 0.19 < len(cut) / 400 < 0.31
    for copy in cut:
        assert 1 <= len(copy.split()) <= 5 and f" {copy} " in f" {SENTENCE} "


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"copies": 0}, "copies must be an integer >= 1"),
        ({"copies": 1, "mask_probability": 1.5}, "mask_probability must be in"),
        ({"copies": 1, "ngram_probability": -0.1}, "ngram_probability must be in"),
        ({"copies": 1, "max_ngram": 0}, "max_ngram must be an integer"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    copies = kwargs.pop("copies")
    with pytest.raises(ValueError, match=message):
        perturbed_copies(["a b"], copies, **kwargs)


def test_a_text_that_is_not_a_str_is_named():
    with pytest.raises(ValueError, match="Text 1 is a bytes"):
        perturbed_copies(["ok", b"raw"], 1)
