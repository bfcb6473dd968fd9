import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_bert_impl import BertBackbone
from keras_bert_impl import BertClassifier
from keras_bert_impl import BertPretrainer
from keras_bert_impl import BertQuestionAnswerer
from keras_bert_impl import BertTokenClassifier
from tests.model_helpers import max_abs_diff
from tests.model_helpers import nested_max_abs_diff
from tests.model_helpers import tiny_config
from tests.model_helpers import tiny_inputs

MODELS = {
    "backbone": (lambda c, **kw: BertBackbone(c, **kw), {}),
    "pretrainer": (lambda c, **kw: BertPretrainer(c, **kw), {"mask_positions": 2}),
    "classifier": (lambda c, **kw: BertClassifier(c, num_classes=3, **kw), {}),
    "regressor": (lambda c, **kw: BertClassifier(c, num_classes=1, **kw), {}),
    "token_classifier": (
        lambda c, **kw: BertTokenClassifier(c, num_classes=5, **kw),
        {},
    ),
    "question_answerer": (lambda c, **kw: BertQuestionAnswerer(c, **kw), {}),
}


def build(kind, **kwargs):
    make, input_kwargs = MODELS[kind]
    return make(tiny_config(), **kwargs), tiny_inputs(**input_kwargs)


def test_backbone_outputs_and_layer_names():
    model, inputs = build("backbone")
    out = model(inputs)
    assert tuple(out["sequence_output"].shape) == (3, 10, 32)
    assert tuple(out["pooled_output"].shape) == (3, 32)
    names = [layer.name for layer in model.layers]
    assert names == [
        "embeddings",
        "transformer_layer_0",
        "transformer_layer_1",
        "pooled_dense",
    ]


def test_backbone_all_hidden_states():
    model = BertBackbone(tiny_config(), output_hidden_states=True)
    out = model(tiny_inputs())
    assert len(out["hidden_states"]) == 3
    np.testing.assert_array_equal(
        np.asarray(out["hidden_states"][-1]), np.asarray(out["sequence_output"])
    )


def test_default_segment_ids_and_padding_mask():
    model, inputs = build("backbone")
    inputs["segment_ids"][:] = 0
    explicit = model(inputs)
    implicit = model({"token_ids": inputs["token_ids"]})
    assert nested_max_abs_diff(explicit, implicit) == 0.0


def test_padding_does_not_change_valid_outputs():
    model, inputs = build("backbone")
    padded = {k: np.pad(v, ((0, 0), (0, 6))) for k, v in inputs.items()}
    out = model(inputs)["sequence_output"]
    padded_out = np.asarray(model(padded)["sequence_output"])[:, :10]
    assert max_abs_diff(out, padded_out, inputs["padding_mask"]) < 1e-5


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_save_load_and_config_round_trip(kind, tmp_path):
    model, inputs = build(kind)
    expected = model(inputs)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert nested_max_abs_diff(loaded(inputs), expected) == 0.0
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    clone(inputs)
    clone.set_weights(model.get_weights())
    assert nested_max_abs_diff(clone(inputs), expected) == 0.0


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_dropout_only_in_training(kind):
    model, inputs = build(kind)
    first, second = model(inputs), model(inputs, training=False)
    assert nested_max_abs_diff(first, second) == 0.0
    assert nested_max_abs_diff(first, model(inputs, training=True)) > 0.0


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_layer_norm_and_outputs_in_float32(policy):
    model = BertPretrainer(tiny_config(), dtype=policy)
    inputs = tiny_inputs(mask_positions=2)
    out = model(inputs)
    assert keras.backend.standardize_dtype(out["mlm_logits"].dtype) == "float32"
    assert keras.backend.standardize_dtype(out["nsp_logits"].dtype) == "float32"
    block = model.backbone.transformer_layers[0]
    assert block.intermediate_dense.compute_dtype == policy.split("_")[1]
    assert block.attention_layer_norm.compute_dtype == "float32"
    assert all(w.dtype == "float32" for w in model.weights)
    reference = BertPretrainer(tiny_config())
    reference(inputs)
    reference.set_weights(model.get_weights())
    assert nested_max_abs_diff(reference(inputs), out) < 0.25


def test_classifier_regression_and_ranges():
    with pytest.raises(ValueError, match="num_classes"):
        BertClassifier(tiny_config(), num_classes=0)
    model, inputs = build("question_answerer")
    out = model(inputs)
    padded = inputs["padding_mask"] == 0
    assert np.all(np.asarray(out["start_logits"])[padded] <= -1e8)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda x: {**x, "token_ids": x["token_ids"].astype("float32")},
            "'token_ids' must be an integer",
        ),
        (
            lambda x: {**x, "token_ids": x["token_ids"][0]},
            "'token_ids' must have rank 2",
        ),
        (
            lambda x: {**x, "segment_ids": x["segment_ids"][:, :5]},
            "'segment_ids' has shape",
        ),
        (
            lambda x: {k: np.tile(v, (1, 4)) for k, v in x.items()},
            "max_position_embeddings=32",
        ),
        (lambda x: {**x, "segment_ids": x["segment_ids"] * 2}, "type_vocab_size=2"),
        (lambda x: {**x, "token_ids": x["token_ids"] + 64}, "vocab_size=64"),
        (lambda x: {**x, "token_ids": x["token_ids"] - 100}, "'token_ids' holds -"),
        (lambda x: {**x, "tokens": x["token_ids"]}, "unknown \\['tokens'\\]"),
        (lambda x: {"segment_ids": x["segment_ids"]}, "missing \\['token_ids'\\]"),
        (lambda x: x["token_ids"], "take a dict"),
    ],
)
def test_bad_inputs_name_the_input_and_the_limit(change, message):
    model, inputs = build("backbone")
    with pytest.raises(ValueError, match=message) as error:
        model(change(inputs))
    # The user reads our message first, not Keras' call context or ANSI escapes.
    assert not str(error.value).startswith("Exception encountered")
    assert "\x1b" not in str(error.value)


def test_mask_positions_checked_against_sequence_length():
    model, inputs = build("pretrainer")
    inputs["mask_positions"] = inputs["mask_positions"] + 10
    with pytest.raises(ValueError, match="'mask_positions'"):
        model(inputs)


def test_dynamic_shapes_are_accepted_when_traced():
    model, inputs = build("backbone")
    eager = model(inputs)["pooled_output"]
    spec = {k: tf.TensorSpec([None, None], tf.int32) for k in inputs}
    traced = tf.function(lambda x: model(x)["pooled_output"], input_signature=[spec])
    assert max_abs_diff(traced(inputs), eager) < 1e-6


def _pretraining_batch(batch=8, length=12, predictions=3, vocab_size=64, seed=3):
    rng = np.random.default_rng(seed)
    x = tiny_inputs(
        batch=batch,
        length=length,
        vocab_size=vocab_size,
        seed=seed,
        mask_positions=predictions,
    )
    y = {
        "masked_lm_ids": rng.integers(5, vocab_size, size=(batch, predictions)).astype(
            "int32"
        ),
        "masked_lm_weights": np.ones((batch, predictions), "float32"),
        "next_sentence_labels": (np.arange(batch) % 2).astype("int32"),
    }
    y["masked_lm_weights"][:, -1] = 0.0  # padding predictions carry no loss
    return x, y


def test_pretrainer_overfits_a_fixed_batch_with_fit():
    keras.utils.set_random_seed(0)
    config = tiny_config(hidden_dropout=0.0, attention_dropout=0.0)
    model = BertPretrainer(config)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    x, y = _pretraining_batch()
    # The same batch 15 times an epoch: 150 steps without 150 epochs' overhead.
    tiled_x, tiled_y = (
        {k: np.tile(v, (15,) + (1,) * (v.ndim - 1)) for k, v in d.items()}
        for d in (x, y)
    )
    history = model.fit(
        tiled_x, tiled_y, batch_size=8, epochs=10, shuffle=False, verbose=0
    )
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert logs["masked_lm_accuracy"] > 0.95
    assert logs["next_sentence_accuracy"] == 1.0
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
    assert set(history.history) >= {
        "loss",
        "masked_lm_accuracy",
        "next_sentence_accuracy",
        "masked_lm_loss",
        "next_sentence_loss",
    }


def test_every_pretrainer_weight_gets_a_gradient():
    model = BertPretrainer(tiny_config())
    x, y = _pretraining_batch()
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x, y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    for weight, grad in zip(model.trainable_weights, grads):
        assert grad is not None, weight.path
        assert float(tf.reduce_max(tf.abs(tf.convert_to_tensor(grad)))) > 0, weight.path


def test_masked_lm_loss_follows_the_google_formula():
    from keras_bert_impl.models.pretrainer import masked_lm_loss

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 7)).astype("float32")
    ids = rng.integers(0, 7, size=(2, 3))
    weights = np.array([[1, 1, 0], [1, 0, 0]], "float32")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per = -np.take_along_axis(log_probs, ids[..., None], -1)[..., 0]
    expected = (per * weights).sum() / (weights.sum() + 1e-5)
    assert abs(float(masked_lm_loss(ids, weights, logits)) - expected) < 1e-5


def test_pretrainer_targets_are_checked():
    model = BertPretrainer(tiny_config())
    x, y = _pretraining_batch()
    del y["masked_lm_weights"]
    with pytest.raises(ValueError, match="masked_lm_weights"):
        model.compute_loss(x, y, model(x))


def task_models_with_targets():
    """Each task model (default compile) with a batch of inputs and targets."""
    x = tiny_inputs(batch=4)
    return x, (
        (BertClassifier(tiny_config(), num_classes=2), np.array([0, 1, 0, 1])),
        (BertClassifier(tiny_config(), num_classes=1), np.array([0.5, 1.0, 0.0, 2.0])),
        (
            BertTokenClassifier(tiny_config(), num_classes=3),
            np.where(x["padding_mask"] == 1, 1, -100),
        ),
        (
            BertQuestionAnswerer(tiny_config()),
            {
                "start_positions": np.array([1, 2, 0, 1]),
                "end_positions": np.array([2, 3, 0, 1]),
            },
        ),
    )


def test_task_models_come_compiled_and_train_without_compile():
    """As keras-hub's tasks: constructed (or from_preset) means compiled with the
    task's defaults, so fit() works at once; compile() still overrides."""
    x, models = task_models_with_targets()
    for model, y in models:
        assert model.compiled and model.optimizer is not None, type(model).__name__
        history = model.fit(x, y, epochs=2, verbose=0)
        assert np.isfinite(history.history["loss"]).all(), type(model).__name__
    model, _ = models[0]
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    assert isinstance(model.optimizer, keras.optimizers.SGD)


def test_an_untrained_task_model_reloads_without_optimizer_warnings(tmp_path):
    x, models = task_models_with_targets()
    for index, (model, _) in enumerate(models):
        path = str(tmp_path / f"{index}.keras")
        model.save(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = keras.saving.load_model(path)
        assert not [str(w.message) for w in caught if "optimizer" in str(w.message)]
        assert loaded.compiled and not loaded.optimizer.built, type(model).__name__


def test_reloaded_task_models_come_back_compiled(tmp_path):
    """A `.keras` file restores compile() and the optimizer state with the weights."""
    x, models = task_models_with_targets()
    for index, (model, y) in enumerate(models):
        name = type(model).__name__
        model.compile()
        model.fit(x, y, verbose=0)
        path = str(tmp_path / f"{index}.keras")
        model.save(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = keras.saving.load_model(path)
        assert not [w for w in caught if "compile()" in str(w.message)], name
        assert loaded.compiled, name
        assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 1
        for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables):
            np.testing.assert_array_equal(np.asarray(saved), np.asarray(restored))
        assert [type(m).__name__ for m in loaded.metrics] == [
            type(m).__name__ for m in model.metrics
        ], name
        loaded.fit(x, y, verbose=0)
        assert int(loaded.optimizer.iterations) == 2, name


def test_token_accuracy_skips_ignored_labels():
    from keras_bert_impl.models.token_classifier import LabelledTokenAccuracy

    metric = LabelledTokenAccuracy()
    logits = np.eye(3, dtype="float32")[[[0, 1, 2, 0]]]  # predicts 0, 1, 2, 0
    metric.update_state(np.array([[0, 2, -100, -100]]), logits)
    assert float(metric.result()) == 0.5


def test_summary_builds_the_model_and_names_config_head_and_preprocessor():
    from keras_bert_impl.preprocessing import BertTextClassifierPreprocessor

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"]
    model = BertClassifier(
        tiny_config(vocab_size=len(vocabulary)),
        label_names=["negative", "positive"],
        preprocessor=BertTextClassifierPreprocessor(vocabulary=vocabulary, sequence_length=16),
    )
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "BertClassifier: 2 layers, hidden 32, 4 heads" in text
    assert "head: 2 classes: negative, positive" in text
    assert "BertTextClassifierPreprocessor, sequence_length 16, vocabulary 7" in text
    assert f"Total params: {model.count_params():,}" in text and model.count_params() > 0
