"""Model fixes the trainer relies on: one MLM loss per step, compile metrics
kept, no private Keras imports, attention that cannot overflow in float16."""

import pathlib

import keras
import numpy as np

from keras_bert_impl import BertPretrainer
from keras_bert_impl.layers import MultiHeadSelfAttention
from keras_bert_impl.models import pretrainer as pretrainer_module
from model_helpers import tiny_config, tiny_inputs

PACKAGE = pathlib.Path(pretrainer_module.__file__).parents[1]


def _pretraining_batch(batch=4, predictions=3):
    x = tiny_inputs(batch=batch, length=12, mask_positions=predictions)
    rng = np.random.default_rng(1)
    y = {
        "masked_lm_ids": rng.integers(5, 64, (batch, predictions)).astype("int32"),
        "masked_lm_weights": np.array(
            [[1, 1, 0]] * batch, "float32"
        ),  # a padded prediction slot
        "next_sentence_labels": np.array([0, 1] * (batch // 2), "int32"),
    }
    return x, y


def test_masked_lm_loss_computed_once_per_step(monkeypatch):
    calls = []
    original = pretrainer_module.masked_lm_loss

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(pretrainer_module, "masked_lm_loss", counting)
    model = BertPretrainer(tiny_config())
    model.compile(optimizer="adam", run_eagerly=True)
    x, y = _pretraining_batch()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # one step
    assert len(calls) == 1


def test_compile_metrics_are_updated_and_reported():
    model = BertPretrainer(tiny_config(hidden_dropout=0.0, attention_dropout=0.0))
    model.compile(
        optimizer="adam",
        metrics={"nsp_logits": [keras.metrics.SparseCategoricalAccuracy("nsp_acc")]},
        # Weighted: padded prediction slots (weight 0) must not count.
        weighted_metrics={
            "mlm_logits": [keras.metrics.SparseTopKCategoricalAccuracy(5, "mlm_top5")]
        },
    )
    x, y = _pretraining_batch()
    results = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    # Keras prefixes a dict-keyed compile metric with its output's name.
    assert {"nsp_logits_nsp_acc", "mlm_logits_mlm_top5", "loss"} <= set(results)
    # The user's NSP accuracy is the built-in one computed independently.
    assert np.isclose(results["nsp_logits_nsp_acc"], results["next_sentence_accuracy"])
    outputs = model.predict(x, verbose=0)
    top5 = np.argsort(-outputs["mlm_logits"], axis=-1)[..., :5]
    hits = (top5 == y["masked_lm_ids"][..., None]).any(-1)
    weights = y["masked_lm_weights"]
    assert np.isclose(
        results["mlm_logits_mlm_top5"], (hits * weights).sum() / weights.sum()
    )


def test_no_private_keras_imports_in_models_and_layers():
    for folder in ("models", "layers", "training"):
        for path in (PACKAGE / folder).glob("*.py"):
            assert "keras.src" not in path.read_text(), path


def test_attention_scores_do_not_overflow_in_float16():
    # head_size 64: unscaled q·k of ~1e5 overflows float16 (max 65504); the
    # scaled score (~1.2e4) does not.
    layer = MultiHeadSelfAttention(
        num_heads=1, head_size=64, dropout=0.0, dtype="mixed_float16"
    )
    inputs = np.ones((1, 3, 64), "float32")
    layer.build(inputs.shape)
    for dense in (layer.query, layer.key):
        dense.kernel.assign(np.eye(64, dtype="float32") * 40.0)
    layer.value.kernel.assign(np.eye(64, dtype="float32"))
    layer.output_dense.kernel.assign(np.eye(64, dtype="float32"))
    out = keras.ops.convert_to_numpy(layer(inputs, padding_mask=np.ones((1, 3))))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, 1.0, rtol=1e-3)
