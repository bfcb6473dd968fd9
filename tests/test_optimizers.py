"""FusedAdamW: Keras' AdamW, its update in one TensorFlow kernel per variable."""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_bert_impl import internals
from keras_bert_impl.optimizers import FusedAdamW
from keras_bert_impl.schedules import WarmupPolynomialDecay
from keras_bert_impl.training import create_optimizer


def _model():
    """Word embeddings (a sparse gradient), a LayerNorm and a Dense: the kinds of
    weights BERT's optimizer meets, with and without weight decay."""
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((5,), dtype="int32"),
            keras.layers.Embedding(50, 8),
            keras.layers.LayerNormalization(),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(3),
        ]
    )


def _train(optimizer, steps=4):
    """`steps` updates of a fresh model (same seed every call) by `optimizer`. The
    gradients of each step come from the model before any update, so two optimizers
    see the very same gradients and any difference is the update's own."""
    model = _model()
    initial = [v.numpy() for v in model.trainable_variables]
    ids = tf.constant(np.random.default_rng(0).integers(0, 50, (steps, 6, 5)), tf.int32)
    labels = tf.constant(np.random.default_rng(1).integers(0, 3, (steps, 6)))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    gradients = []
    for x, y in zip(ids, labels):
        with tf.GradientTape() as tape:
            value = loss(y, model(x))
        gradients.append(tape.gradient(value, model.trainable_variables))

    @tf.function
    def step(step_gradients):
        optimizer.apply_gradients(zip(step_gradients, model.trainable_variables))

    for step_gradients in gradients:
        step(step_gradients)
    # Every op the step runs, inside the branches of a loss-scaling `If` too.
    graph = step.get_concrete_function(gradients[0]).graph.as_graph_def()
    nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
    return types.SimpleNamespace(
        updates=[v.numpy() - w for v, w in zip(model.trainable_variables, initial)],
        model=model,
        optimizer=optimizer,
        first_gradient=gradients[0][0],
        op_types={node.op for node in nodes},
    )


@pytest.mark.parametrize("amsgrad", [False, True])
def test_same_weights_and_moments_as_keras_adamw(amsgrad):
    def optimizer(cls):
        result = cls(
            learning_rate=WarmupPolynomialDecay(0.05, 10, warmup_steps=2),
            weight_decay=0.1,
            epsilon=1e-6,
            global_clipnorm=1.0,
            amsgrad=amsgrad,
        )
        result.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
        return result

    ours = _train(optimizer(FusedAdamW))
    theirs = _train(optimizer(keras.optimizers.AdamW))
    assert isinstance(ours.first_gradient, tf.IndexedSlices)  # embeddings' path covered
    # The fused kernel ran (amsgrad, which it lacks, falls back to Keras' update).
    assert ("ResourceApplyAdam" in ours.op_types) is not amsgrad
    assert "ResourceApplyAdam" not in theirs.op_types
    # The kernel forms 1 - beta_2 from float32 beta_2 (0.00099998713), Keras from the
    # Python float (0.001): the moments differ by 1.3e-5 relative, the steps by less.
    for mine, keras_update in zip(ours.updates, theirs.updates):
        scale = np.abs(keras_update).max()
        assert scale > 1e-3  # every weight moved
        np.testing.assert_allclose(mine, keras_update, rtol=0, atol=2e-5 * scale)
    pairs = zip(ours.model.trainable_variables, theirs.model.trainable_variables)
    for variable, twin in pairs:
        for mine, keras_slot in zip(
            internals.adam_slots(ours.optimizer, variable),
            internals.adam_slots(theirs.optimizer, twin),
        ):
            np.testing.assert_allclose(mine.numpy(), keras_slot.numpy(), rtol=2e-5, atol=1e-12)
    assert int(ours.optimizer.iterations) == 4


def test_under_loss_scaling_as_mixed_float16_trains():
    scaled = keras.optimizers.LossScaleOptimizer(FusedAdamW(0.01))
    run = _train(scaled, steps=2)
    assert "ResourceApplyAdam" in run.op_types
    assert int(run.optimizer.iterations) == 2
    assert all(np.isfinite(v.numpy()).all() for v in run.model.trainable_variables)


def test_create_optimizer_and_compiled_models_use_it_and_it_reloads(tmp_path):
    assert isinstance(create_optimizer(1e-3, 10, 1), FusedAdamW)
    model = _model()
    model.compile(FusedAdamW(1e-3, weight_decay=0.02), loss="mse")
    model.fit(np.ones((2, 5), np.int32), np.ones((2, 3)), verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is FusedAdamW
    assert loaded.optimizer.weight_decay == pytest.approx(0.02)
