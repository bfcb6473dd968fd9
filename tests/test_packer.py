"""Packer: BERT input layout, google-research/bert truncation, dynamic length, tf.data."""

import random

import numpy as np
import pytest
import tensorflow as tf

from keras_bert_impl.text import Packer

CLS, SEP, PAD = 101, 102, 0


def reference_truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng=None):
    """google-research/bert's truncate_seq_pair (create_pretraining_data.py), re-typed.

    With `rng`, each removed token leaves from the front or back at random (pretraining);
    without, always from the back.
    """
    tokens_a, tokens_b = list(tokens_a), list(tokens_b)
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        trunc_tokens = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng is not None and rng.random() < 0.5:
            del trunc_tokens[0]
        else:
            trunc_tokens.pop()
    return tokens_a, tokens_b


def ragged(rows):
    return tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=1, inner_shape=())


def test_single_segment_layout():
    out = Packer(6, CLS, SEP, PAD)(ragged([[1, 2], [1, 2, 3, 4, 5, 6]]))
    np.testing.assert_array_equal(
        out["token_ids"], [[CLS, 1, 2, SEP, PAD, PAD], [CLS, 1, 2, 3, 4, SEP]]
    )
    np.testing.assert_array_equal(out["segment_ids"], np.zeros([2, 6]))
    np.testing.assert_array_equal(out["padding_mask"], [[1, 1, 1, 1, 0, 0], [1] * 6])
    assert all(value.dtype == tf.int32 for value in out.values())


def test_pair_layout():
    out = Packer(8, CLS, SEP, PAD)((ragged([[1, 2]]), ragged([[7, 8, 9]])))
    np.testing.assert_array_equal(out["token_ids"], [[CLS, 1, 2, SEP, 7, 8, 9, SEP]])
    np.testing.assert_array_equal(out["segment_ids"], [[0, 0, 0, 0, 1, 1, 1, 1]])
    np.testing.assert_array_equal(out["padding_mask"], [[1] * 8])


def test_longest_first_matches_google_truncate_seq_pair_for_all_small_lengths():
    seq_length = 9
    rows_a, rows_b = [], []
    for length_a in range(12):
        for length_b in range(12):
            rows_a.append(list(range(1, length_a + 1)))
            rows_b.append(list(range(50, 50 + length_b)))
    out = Packer(seq_length, CLS, SEP, PAD)((ragged(rows_a), ragged(rows_b)))
    for a, b, packed in zip(rows_a, rows_b, out["token_ids"].numpy().tolist()):
        kept_a, kept_b = reference_truncate_seq_pair(a, b, seq_length - 3)
        expected = [CLS, *kept_a, SEP, *kept_b, SEP]
        assert packed == expected + [PAD] * (seq_length - len(expected)), (
            len(a),
            len(b),
        )


def test_random_truncation_keeps_reference_lengths_and_cuts_both_ends_evenly():
    seq_length, trials = 12, 400
    a = list(range(1, 21))
    b = list(range(50, 58))
    packer = Packer(seq_length, CLS, SEP, PAD, truncation="random", seed=3)
    out = packer((ragged([a] * trials), ragged([b] * trials)))["token_ids"].numpy()
    kept_a, kept_b = reference_truncate_seq_pair(a, b, seq_length - 3)
    fronts_a, fronts_b = [], []
    for row in out.tolist():
        sep = row.index(SEP)
        got_a, got_b = row[1:sep], row[sep + 1 : -1]
        assert (len(got_a), len(got_b)) == (len(kept_a), len(kept_b))
        # Contiguous runs of the originals.
        assert got_a == a[got_a[0] - 1 : got_a[0] - 1 + len(got_a)]
        assert got_b == b[got_b[0] - 50 : got_b[0] - 50 + len(got_b)]
        fronts_a.append(got_a[0] - 1)
        fronts_b.append(got_b[0] - 50)
    # The reference removes each token from a random end: front cuts ~ Binomial(n, 1/2).
    rng = random.Random(0)
    reference_fronts = []
    for _ in range(trials):
        got_a, _ = reference_truncate_seq_pair(a, b, seq_length - 3, rng)
        reference_fronts.append(got_a[0] - 1)
    removed_a = len(a) - len(kept_a)
    assert abs(np.mean(fronts_a) - removed_a / 2) < 0.5
    assert abs(np.mean(fronts_a) - np.mean(reference_fronts)) < 0.5
    assert abs(np.std(fronts_a) - np.std(reference_fronts)) < 0.5
    assert 0 < np.mean(fronts_b) < len(b) - len(kept_b)


def test_random_truncation_is_seeded():
    rows = ragged([list(range(1, 30))] * 8)
    first = Packer(10, CLS, SEP, truncation="random", seed=7)(rows)["token_ids"]
    second = Packer(10, CLS, SEP, truncation="random", seed=7)(rows)["token_ids"]
    other = Packer(10, CLS, SEP, truncation="random", seed=8)(rows)["token_ids"]
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_dynamic_length_pads_to_the_longest_and_never_truncates():
    out = Packer(None, CLS, SEP, PAD)(
        (ragged([[1], list(range(1, 40))]), ragged([[5], []]))
    )
    assert out["token_ids"].shape == (2, 42)
    assert out["padding_mask"].numpy().sum(axis=1).tolist() == [5, 42]


def test_single_example_and_dense_inputs():
    packer = Packer(5, CLS, SEP, PAD)
    np.testing.assert_array_equal(
        packer(tf.constant([1, 2]))["token_ids"], [CLS, 1, 2, SEP, PAD]
    )
    dense = packer(tf.constant([[1, 2], [3, 4]], tf.int64))
    np.testing.assert_array_equal(
        dense["token_ids"], [[CLS, 1, 2, SEP, PAD], [CLS, 3, 4, SEP, PAD]]
    )


def test_from_tokenizer_uses_its_special_ids(tmp_path):
    import text_helpers

    from keras_bert_impl.text import Tokenizer

    vocab = text_helpers.write_vocab(
        tmp_path / "vocab.txt", ["[UNK]", "[PAD]", "[SEP]", "[CLS]", "[MASK]", "hi"]
    )
    tokenizer = Tokenizer(vocab)
    out = Packer.from_tokenizer(tokenizer, 5)(tokenizer(tf.constant(["hi"])))
    np.testing.assert_array_equal(out["token_ids"], [[3, 5, 2, 1, 1]])


def test_works_in_tf_data_and_tf_function():
    packer = Packer(6, CLS, SEP, PAD)
    rows = [[1, 2], [3], [4, 5, 6, 7, 8]]
    expected = packer(ragged(rows))["token_ids"].numpy()
    dataset = tf.data.Dataset.from_tensor_slices(ragged(rows)).batch(2).map(packer)
    np.testing.assert_array_equal(
        np.concatenate([batch["token_ids"] for batch in dataset]), expected
    )
    traced = tf.function(
        packer,
        input_signature=[tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1)],
    )
    np.testing.assert_array_equal(traced(ragged(rows))["token_ids"], expected)
    assert traced(ragged(rows))["token_ids"].shape[1] == 6


def test_bad_arguments_are_rejected_with_clear_messages():
    with pytest.raises(ValueError, match="truncation"):
        Packer(8, CLS, SEP, truncation="middle")
    with pytest.raises(ValueError, match="seq_length"):
        Packer(1, CLS, SEP)
    with pytest.raises(ValueError, match="one or two segments"):
        Packer(8, CLS, SEP)((ragged([[1]]),) * 3)
    with pytest.raises(ValueError, match="cannot hold"):
        Packer(2, CLS, SEP)((ragged([[1]]), ragged([[2]])))
    with pytest.raises(TypeError, match="integer"):
        Packer(8, CLS, SEP)(tf.ragged.constant([[1.0]]))


def test_one_truncation_rule_on_ints_and_tensors():
    """`longest_first_lengths` is the reference's loop on ints (the static
    recipe's `truncation_cuts`) and on tensors (the Packer)."""
    from keras_bert_impl.data.pretraining import truncation_cuts
    from keras_bert_impl.text.packer import longest_first_lengths

    cases = [(a, b, n) for a in range(9) for b in range(9) for n in range(1, 10)]
    a, b, n = (np.array(column, np.int64) for column in zip(*cases))
    keep_a, keep_b = longest_first_lengths(a, b, n, tf.minimum, tf.maximum)
    for i, (length_a, length_b, budget) in enumerate(cases):
        kept = reference_truncate_seq_pair(range(length_a), range(length_b), budget)
        expected = (len(kept[0]), len(kept[1]))
        assert longest_first_lengths(length_a, length_b, budget) == expected
        assert (int(keep_a[i]), int(keep_b[i])) == expected
        cuts = truncation_cuts(length_a, length_b, budget)
        assert cuts == (length_a - expected[0], length_b - expected[1])


def test_static_pretraining_rows_are_the_packer_layout():
    """`pretraining.pack_spans` (NumPy, worker processes) lays spans out as
    the Packer lays the same segments out."""
    from keras_bert_impl.data import pretraining, recipe_masking

    rng = np.random.default_rng(0)
    corpus = pretraining.TokenizedCorpus.from_documents(
        [[rng.integers(5, 90, rng.integers(1, 9)).tolist() for _ in range(6)]]
    )
    recipe = pretraining.PretrainingRecipe(max_seq_length=16)
    vocab = recipe_masking.MaskingVocabulary.from_tokens(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(95)]
    )
    spans, segments_a, segments_b = [], [], []
    for _ in range(50):
        a_start, b_start = rng.integers(0, corpus.num_tokens, 2)
        a_length = int(rng.integers(1, min(8, corpus.num_tokens - a_start) + 1))
        b_length = int(
            rng.integers(0, min(12 - a_length, corpus.num_tokens - b_start) + 1)
        )
        spans.append((a_start, a_length, b_start, b_length, 0))
        segments_a.append(corpus.token_ids[a_start : a_start + a_length].tolist())
        segments_b.append(corpus.token_ids[b_start : b_start + b_length].tolist())
    token_ids, input_mask, segment_ids = pretraining.pack_spans(
        corpus, spans, recipe, vocab
    )
    packed = Packer(16, vocab.cls_id, vocab.sep_id)(
        (ragged(segments_a), ragged(segments_b))
    )
    np.testing.assert_array_equal(packed["token_ids"], token_ids)
    np.testing.assert_array_equal(packed["padding_mask"], input_mask)
    np.testing.assert_array_equal(packed["segment_ids"], segment_ids)


def test_random_truncation_with_a_seed_is_stateless():
    rows = (ragged([list(range(1, 30))] * 4), ragged([list(range(40, 70))] * 4))
    packer = Packer(12, CLS, SEP, truncation="random")
    first, again, other = (
        packer(rows, seed=tf.constant(seed))["token_ids"].numpy()
        for seed in ([1, 2], [1, 2], [3, 4])
    )
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()
