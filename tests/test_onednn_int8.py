"""int8 through oneDNN's quantized matmul (`compression.onednn_int8`): a Dense layer
against its dequantized float twin, calibrated ranges (clipping, batch and padding
independence), `.keras` round trips, fallbacks with a warning, and exports that need
TF Serving 2.17."""

import os
import re
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_bert_impl.compression import model_precision, onednn_int8, with_precision
from keras_bert_impl.export import export_classifier
from keras_bert_impl.export.batching_files import SERVER_FILE
from keras_bert_impl.export.check import check_servable
from keras_bert_impl.models import quantization
from model_helpers import tiny_inputs, tiny_text_model
from tool_helpers import run_tool

TEXTS = ["good film", "bad film , bad", "w1 w2 w3 good"]
CALIBRATION = TEXTS * 4
# Logits of the tiny model are ~1; 8-bit activations and int8 weights keep ~1% (over 12
# random models the largest logit error was 0.033). 7-bit codes (a CPU without VNNI)
# double the activations' step: over 8 models the largest error was then 0.058.
LOGIT_ATOL = 0.05 * 254 / (onednn_int8.activation_levels() - 2)


@pytest.fixture(scope="module")
def float_model():
    keras.utils.set_random_seed(0)
    return tiny_text_model()


@pytest.fixture(scope="module")
def onednn_model(float_model):
    # Token dicts like the ones tested (other seeds) and the texts: inputs outside the
    # calibrated ranges would be clipped (LOGIT_ATOL).
    texts = {k: np.asarray(v) for k, v in float_model.preprocessor(TEXTS).items()}
    calibration = [tiny_inputs(seed=seed) for seed in (1, 2, 3)] + [texts]
    return with_precision(float_model, "int8_onednn", calibration=calibration)


def _int8_dense(activation, units=48, inputs=32, seed=0):
    rng = np.random.default_rng(seed)
    layer = keras.layers.Dense(units, activation=activation)
    layer.build((None, inputs))
    layer.set_weights(
        [
            rng.normal(0, 0.2, (inputs, units)).astype("float32"),
            rng.normal(0, 0.5, units).astype("float32"),
        ]
    )
    layer.quantize(
        "int8",
        config=keras.quantizers.Int8QuantizationConfig(activation_quantizer=None),
    )
    return layer


def _dequantized(layer, x):
    """The same layer in float, with the int8 kernel dequantized."""
    kernel = np.asarray(layer._kernel, "float32") / np.asarray(layer.kernel_scale)
    return layer.activation(x @ kernel + np.asarray(layer.bias))


def check_against_the_float_twin(activation):
    """A oneDNN int8 Dense within its error bound of its dequantized float twin, on
    this CPU's codes (7 bits without VNNI); returns the largest error / bound."""
    layer = _int8_dense(keras.activations.get(activation))
    x = np.random.default_rng(1).normal(0.4, 1.5, (3, 5, 32)).astype("float32")
    want = np.asarray(_dequantized(layer, x))
    assert onednn_int8.use_onednn_int8(layer, (x.min(), x.max()))
    got = np.asarray(layer(x))
    assert got.shape == (3, 5, 48) and got.dtype == np.float32
    # Each input is off by at most half a step; the error is their weighted sum (an
    # activation after the matmul only shrinks it: GELU and tanh have slopes <= 1.13).
    levels = onednn_int8.activation_levels()
    low, high = onednn_int8.quantization_range(x.min(), x.max(), levels)
    kernel = np.asarray(layer._kernel, "float32") / np.asarray(layer.kernel_scale)
    bound = 0.5 * (high - low) / (levels - 1) * np.abs(kernel).sum(axis=0) + 1e-5
    assert np.all(np.abs(got - want) <= bound)
    assert np.abs(got - want).max() > 0  # it really runs in int8
    # Graph and eager agree.
    np.testing.assert_allclose(tf.function(layer)(x), got, atol=1e-6)
    return float(np.max(np.abs(got - want) / bound))


@pytest.mark.parametrize("activation", ["gelu", "linear", "tanh"])
def test_dense_matches_its_dequantized_float_twin(activation):
    check_against_the_float_twin(activation)


def test_dense_holds_its_bound_on_onednn_avx2_kernels():
    """ONEDNN_MAX_CPU_ISA=AVX2 makes oneDNN run the kernels of a CPU without VNNI (on
    one with it too), and the layer its 7-bit codes: still within the bound."""
    script = (
        "from keras_bert_impl.compression import cpu_features, onednn_int8\n"
        "import test_onednn_int8 as t\n"
        "assert onednn_int8.activation_levels() == 128, cpu_features.summary()\n"
        "for activation in ('gelu', 'linear'):\n"
        "    ratio = t.check_against_the_float_twin(activation)\n"
        "    print('within', ratio, 'of the bound')\n"
    )
    tests = os.path.dirname(os.path.abspath(__file__))
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ONEDNN_VERBOSE": "1"},
        cwd=tests,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # oneDNN's own word on the kernels it ran.
    assert re.search(r"isa:Intel AVX2$", result.stdout, re.MULTILINE)
    assert result.stdout.count("of the bound") == 2


def test_inputs_outside_the_range_are_clipped_and_zeros_give_the_bias():
    layer = _int8_dense(None)
    onednn_int8.use_onednn_int8(layer, (-1.0, 1.0))
    x = np.random.default_rng(2).normal(0, 3, (4, 32)).astype("float32")
    levels = onednn_int8.activation_levels()
    np.testing.assert_allclose(
        layer(x),
        layer(np.clip(x, *onednn_int8.quantization_range(-1.0, 1.0, levels))),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        layer(np.zeros((2, 32), "float32")),
        np.tile(np.asarray(layer.bias), (2, 1)),
        atol=1e-5,
    )
    # A range that is all one value still quantizes.
    zero = _int8_dense(None)
    onednn_int8.use_onednn_int8(zero, (0.0, 0.0))
    assert np.all(np.isfinite(zero(x)))


def test_gradient_is_that_of_the_dequantized_layer():
    layer = _int8_dense(keras.activations.get("gelu"))
    x = tf.constant(np.random.default_rng(3).normal(0, 1, (2, 32)).astype("float32"))
    onednn_int8.use_onednn_int8(layer, (-4.0, 4.0))
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = layer(x)
        loss = tf.reduce_sum(outputs**2)
    gradient = tape.gradient(loss, x)
    # The float twin's gradient for the same upstream gradient (2 * the int8 outputs):
    # exact, whatever the quantization error of the outputs themselves.
    with tf.GradientTape() as tape:
        tape.watch(x)
        twin = _dequantized(layer, x)
    want = tape.gradient(twin, x, output_gradients=2 * outputs)
    assert np.abs(np.asarray(want)).max() > 1
    np.testing.assert_allclose(gradient, want, rtol=1e-5, atol=1e-5)


def test_a_model_is_close_to_float_and_round_trips(float_model, onednn_model, tmp_path):
    assert model_precision(onednn_model) == "int8_onednn"
    dense = onednn_model.backbone.transformer_layers[0].intermediate_dense
    assert dense._int8_matmul == "onednn" and dense._kernel.dtype == "int8"
    low, high = dense._int8_input_range
    assert low < 0 < high
    before = np.asarray(float_model(tiny_inputs()))
    logits = np.asarray(onednn_model(tiny_inputs()))
    np.testing.assert_allclose(logits, before, atol=LOGIT_ATOL)
    assert np.abs(logits - before).max() > 0
    # Traced, every layer's op keeps its own kernel: the same logits as eagerly.
    traced = tf.function(onednn_model)
    for _ in range(2):
        np.testing.assert_allclose(traced(tiny_inputs()), logits, atol=1e-5)

    path = str(tmp_path / "onednn.keras")
    onednn_model.save(path)
    loaded = keras.saving.load_model(path)
    assert model_precision(loaded) == "int8_onednn"
    assert loaded.backbone.transformer_layers[
        0
    ].intermediate_dense._int8_input_range == (low, high)
    np.testing.assert_array_equal(np.asarray(loaded(tiny_inputs())), logits)
    np.testing.assert_array_equal(
        loaded.predict(TEXTS, verbose=0), onednn_model.predict(TEXTS, verbose=0)
    )


def test_a_sentence_gets_the_same_answer_whatever_it_is_batched_with(onednn_model):
    alone = onednn_model.predict(TEXTS[:1], verbose=0)
    with_longer = onednn_model.predict(
        [TEXTS[0], "w1 w2 w3 " * 8 + "bad film , bad"], verbose=0
    )
    np.testing.assert_allclose(with_longer[:1], alone, atol=1e-5)


def test_bad_settings_are_refused_naming_what_is_valid(float_model):
    with pytest.raises(ValueError, match="needs calibration data"):
        with_precision(float_model, "int8_onednn")
    with pytest.raises(ValueError, match="not an int8-quantized Dense"):
        onednn_int8.use_onednn_int8(keras.layers.Dense(4), (0.0, 1.0))
    for bad in ((1.0, -1.0), (0.0, float("nan"))):
        with pytest.raises(ValueError, match="input_range must be finite"):
            onednn_int8.use_onednn_int8(_int8_dense(None), bad)
    with pytest.raises(ValueError, match="calibration data is empty"):
        with_precision(float_model, "int8_onednn", calibration=[])
    backbone = float_model.backbone
    with pytest.raises(ValueError, match="no preprocessor"):
        with_precision(backbone, "int8_onednn", calibration=TEXTS)
    # Text pairs calibrate too; a backbone calibrates on token dicts instead.
    pairs = with_precision(float_model, "int8_onednn", calibration=(TEXTS, TEXTS))
    assert model_precision(pairs) == "int8_onednn"
    quantized = with_precision(backbone, "int8_onednn", calibration=[tiny_inputs()])
    assert model_precision(quantized) == "int8_onednn"


def test_without_onednn_kernels_it_warns_and_runs_keras_int8(float_model, monkeypatch):
    monkeypatch.setattr(onednn_int8, "onednn_available", lambda: False)
    with pytest.warns(UserWarning, match="needs the TensorFlow backend"):
        model = with_precision(float_model, "int8_onednn", calibration=CALIBRATION)
    assert model_precision(model) == "int8_onednn"
    weight_only = with_precision(float_model, "int8_weight_only")
    np.testing.assert_allclose(
        model(tiny_inputs()), weight_only(tiny_inputs()), atol=1e-6
    )


def test_a_saved_model_whose_matmul_no_module_provides_warns_on_load(
    onednn_model, tmp_path, monkeypatch
):
    path = str(tmp_path / "onednn.keras")
    onednn_model.save(path)
    monkeypatch.delitem(quantization._INT8_MATMULS, "onednn")
    with pytest.warns(UserWarning, match="import keras_bert_impl.compression"):
        loaded = keras.saving.load_model(path)
    assert np.all(np.isfinite(np.asarray(loaded(tiny_inputs()))))
    # Saved again, it still names the oneDNN matmul and its ranges.
    monkeypatch.undo()
    resaved = str(tmp_path / "resaved.keras")
    loaded.save(resaved)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = keras.saving.load_model(resaved)
    assert not [w for w in caught if "no imported module" in str(w.message)]
    np.testing.assert_array_equal(
        np.asarray(again(tiny_inputs())), np.asarray(onednn_model(tiny_inputs()))
    )


def test_export_runs_in_a_clean_process_and_needs_tf_serving_2_17(
    onednn_model, tmp_path
):
    path = export_classifier(
        onednn_model, str(tmp_path / "export"), bucket_lengths=None
    )
    report = check_servable(path, server_version="2.10", clean_load=False)
    assert any(
        "_QuantizedMatMul needs TF Serving >= 2.17" in p for p in report.problems
    )
    assert report.ops.min_server_version == "2.17"
    report = check_servable(
        path, server_version="2.20", keras_model=onednn_model, atol=1e-4
    )
    assert report.ok, report.summary()
    assert any("only in builds with oneDNN" in note for note in report.notes)


def test_kbi_export_needs_a_calibration_file(float_model, tmp_path, monkeypatch):
    saved = str(tmp_path / "float.keras")
    float_model.save(saved)

    common = [
        f"--init_checkpoint={saved}",
        "--task=classifier",
        f"--export_dir={tmp_path / 'int8'}",
        "--precision=int8_onednn",
        "--bucket_lengths=none",
    ]
    result = run_tool("export", *common)
    assert result.returncode == 1 and "--calibration_file" in result.stderr
    calibration = tmp_path / "calibration.txt"
    calibration.write_text("\n".join(CALIBRATION) + "\n")
    # oneDNN capped at AVX2 (any x86-64 CPU): the tool says in one line what that costs.
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    result = run_tool("export", *common, f"--calibration_file={calibration}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "int8")) == ["1", SERVER_FILE]
    (line,) = [line for line in result.stderr.splitlines() if "VNNI" in line]
    assert line.startswith("kbi-export: warning: precision 'int8_onednn' runs without")
    assert "7-bit activations" in line and "ONEDNN_MAX_CPU_ISA=AVX2" in line
