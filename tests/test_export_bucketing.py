"""Length bucketing in text.Packer: each batch padded to its bucket, real positions identical
to fixed padding, in eager code, tf.function and tf.data."""

import numpy as np
import pytest
import tensorflow as tf

from keras_bert_impl.text import Packer
from keras_bert_impl.text.packer import bucket_lengths_for
from keras_bert_impl.text.packer import serving_bucket_lengths

CLS, SEP, PAD = 101, 102, 0


def _ragged(rows):
    return tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=1)


def _rows(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [list(rng.integers(1000, 2000, size=n)) for n in lengths]


def test_auto_buckets():
    assert bucket_lengths_for(128) == (16, 32, 64, 128)
    assert bucket_lengths_for(100) == (16, 32, 64, 100)
    assert bucket_lengths_for(16) == (16,)
    assert bucket_lengths_for(8) == (8,)


def test_serving_buckets_are_multiples_of_eight():
    assert serving_bucket_lengths(128) == tuple(range(8, 129, 8))
    assert serving_bucket_lengths(100) == tuple(range(8, 97, 8)) + (100,)
    assert serving_bucket_lengths(8) == (8,)


def test_an_export_pads_to_the_next_multiple_of_eight():
    from keras_bert_impl.export.text_inputs import TextInputs
    from keras_bert_impl.text import Tokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"]
    text_inputs = TextInputs(Tokenizer(tokens), 64)
    assert text_inputs.bucket_lengths == tuple(range(8, 65, 8))
    # [CLS] hello world [SEP]: 4 positions, padded to 8 (an "auto" Packer pads to 16).
    packed = text_inputs(tf.constant(["hello world"]))
    assert packed["token_ids"].shape[1] == 8
    assert packed["padding_mask"].dtype == tf.int32


@pytest.mark.parametrize(
    "lengths_a, lengths_b, expected",
    [
        ([3, 5], None, 16),  # longest packed = 7
        ([14], None, 16),  # 14 + 2 = 16 exactly
        ([15], None, 32),
        ([40, 1], None, 64),
        ([500], None, 128),  # truncated to 128: never above seq_length
        ([10], [10], 32),  # 10 + 10 + 3 = 23
        ([0], None, 16),
    ],
)
def test_outputs_equal_fixed_padding_cut_to_the_bucket(lengths_a, lengths_b, expected):
    fixed = Packer(128, CLS, SEP, PAD)
    bucketed = Packer(128, CLS, SEP, PAD, bucket_lengths="auto")
    inputs = _ragged(_rows(lengths_a))
    if lengths_b is not None:
        inputs = (inputs, _ragged(_rows(lengths_b, seed=1)))
    want, got = fixed(inputs), bucketed(inputs)
    for name in ("token_ids", "segment_ids", "padding_mask"):
        assert got[name].shape[1] == expected, name
        np.testing.assert_array_equal(got[name], want[name][:, :expected], err_msg=name)
        # What the bucket leaves out of the fixed padding is padding only.
        assert not want["padding_mask"][:, expected:].numpy().any()


def test_custom_buckets_always_include_the_maximum():
    packer = Packer(64, CLS, SEP, PAD, bucket_lengths=[8, 24])
    assert packer.bucket_lengths == (8, 24, 64)
    assert packer(_ragged(_rows([5])))["token_ids"].shape == (1, 8)
    assert packer(_ragged(_rows([30])))["token_ids"].shape == (1, 64)


def test_empty_batch_and_traced_graphs():
    packer = Packer(32, CLS, SEP, PAD, bucket_lengths="auto")
    empty = packer(tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64)))
    assert empty["token_ids"].shape == (0, 16)

    @tf.function(input_signature=[tf.RaggedTensorSpec([None, None], tf.int32, 1)])
    def pack(rows):
        return packer(rows)["token_ids"]

    assert pack.get_concrete_function().structured_outputs.shape.as_list() == [None, None]
    assert pack(_ragged(_rows([3, 20]))).shape == (2, 32)
    dataset = tf.data.Dataset.from_tensor_slices(_ragged(_rows([3, 4, 40, 2]))).batch(2)
    shapes = [packer(batch)["token_ids"].shape[1] for batch in dataset.map(lambda x: x)]
    assert shapes == [16, 32]


def test_bad_bucket_arguments():
    with pytest.raises(ValueError, match="bucket_lengths needs a seq_length"):
        Packer(None, CLS, SEP, bucket_lengths="auto")
    with pytest.raises(ValueError, match="between 2 and seq_length=16"):
        Packer(16, CLS, SEP, bucket_lengths=[32])
    with pytest.raises(ValueError, match='"auto"'):
        Packer(16, CLS, SEP, bucket_lengths="dynamic")


def test_a_large_batch_runs_in_length_groups_and_keeps_its_order():
    from keras_bert_impl.export import serving_modules
    from keras_bert_impl.export.text_inputs import TextInputs
    from model_helpers import tiny_text_model

    model = tiny_text_model(sequence_length=32)
    module = serving_modules.ClassifierModule(
        model, TextInputs(model.preprocessor.tokenizer, 32)
    )
    words = ["good", "bad", "film", ","] + [f"w{i}" for i in range(20)]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=n)) for n in (1, 25, 3, 12, 7, 2, 30, 5, 9, 4, 16)]
    assert len(texts) >= serving_modules.MIN_GROUPED_BATCH
    pairs = texts[::-1]
    want = model.predict_text(texts).probabilities
    got = module.serving_default(tf.constant(texts))["probabilities"].numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    want_pairs = model.predict_text((texts, pairs)).probabilities
    got_pairs = module.predict_pair(tf.constant(texts), tf.constant(pairs))
    np.testing.assert_allclose(got_pairs["probabilities"].numpy(), want_pairs, atol=1e-5)
    # A small batch runs whole, with the same answers.
    few = module.serving_default(tf.constant(texts[:3]))["probabilities"].numpy()
    np.testing.assert_allclose(few, want[:3], atol=1e-5)
