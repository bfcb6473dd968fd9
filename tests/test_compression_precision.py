"""bf16 and int8 copies of a task model: outputs close to float32, `.keras` round trips
that give identical outputs, raw-text prediction, and SavedModels that pass the op
check for TF Serving 2.10 and 2.20."""

import os
import warnings

import keras
import numpy as np
import pytest

from keras_bert_impl import BertPretrainer
from keras_bert_impl.compression import PRECISIONS, model_precision, with_precision
from keras_bert_impl.compression import cpu_features, onednn_int8
from keras_bert_impl.compression.precision import native_support_warning
from keras_bert_impl.export import export_classifier
from keras_bert_impl.export.batching_files import SERVER_FILE
from keras_bert_impl.export.check import check_servable
from keras_bert_impl.export.exporter import read_model_card
from model_helpers import tiny_config, tiny_inputs, tiny_text_model
from tool_helpers import run_tool

# Largest |logit difference| from float32 allowed, for logits of size ~1 (measured on
# this model: bfloat16 0.011, int8 0.017). bfloat16 keeps 8 bits of mantissa; int8
# keeps 7 bits per weight row and per activation row.
LOGIT_ATOL = 0.05
TEXTS = ["good film", "bad film , bad", "w1 w2 w3 good"]


@pytest.fixture(scope="module")
def float_model():
    # Seeded: an unseeded random model's logits were at times all below 0.3, the
    # size the tolerances are set against.
    keras.utils.set_random_seed(0)
    return tiny_text_model()


@pytest.fixture(scope="module")
def int8_model(float_model):
    return with_precision(float_model, "int8")


@pytest.fixture(scope="module")
def bf16_model(float_model):
    return with_precision(float_model, "bfloat16")


def _logits(model):
    return np.asarray(model(tiny_inputs()))


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_outputs_close_to_float32_and_the_float_model_unchanged(
    float_model, int8_model, bf16_model, precision
):
    before = _logits(float_model)
    model = int8_model if precision == "int8" else bf16_model
    assert (
        model_precision(model) == precision
        and model_precision(float_model) == "float32"
    )
    logits = _logits(model)
    assert logits.dtype == np.float32
    assert np.abs(before).max() > 0.3  # the tolerance is small against the logits
    np.testing.assert_allclose(logits, before, atol=LOGIT_ATOL)
    assert 0 < np.abs(logits - before).max()  # it really runs in lower precision
    np.testing.assert_array_equal(_logits(float_model), before)
    assert model.label_names == float_model.label_names


def test_int8_quantizes_every_matmul_weight_and_keeps_layer_norm_float(int8_model):
    backbone = int8_model.backbone
    block = backbone.transformer_layers[0]
    for dense in (
        block.self_attention.query,
        block.intermediate_dense,
        backbone.pooled_dense,
    ):
        assert dense.quantization_mode == "int8"
        assert dense._kernel.dtype == "int8"
    assert backbone.token_embedding.quantization_mode == "int8"
    assert backbone.embeddings.position_embedding.embeddings.dtype == "float32"
    assert block.output_layer_norm.gamma.dtype == "float32"


def test_bfloat16_computes_in_bfloat16_with_float32_layer_norm(bf16_model):
    block = bf16_model.backbone.transformer_layers[0]
    assert block.intermediate_dense.compute_dtype == "bfloat16"
    assert block.output_layer_norm.compute_dtype == "float32"
    assert block.intermediate_dense.kernel.dtype == "float32"  # the weights stay exact


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_keras_round_trip_gives_identical_outputs(
    int8_model, bf16_model, precision, tmp_path
):
    model = int8_model if precision == "int8" else bf16_model
    path = str(tmp_path / f"{precision}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert model_precision(loaded) == precision
    np.testing.assert_array_equal(_logits(loaded), _logits(model))
    if precision == "int8":  # the preprocessor came back: raw text in
        np.testing.assert_array_equal(
            loaded.predict(TEXTS, verbose=0), model.predict(TEXTS, verbose=0)
        )


def test_int8_pretrainer_keeps_the_tied_token_table_float():
    model = BertPretrainer(tiny_config(initializer_range=0.2))
    model.build()
    inputs = tiny_inputs(mask_positions=2)
    quantized = with_precision(model, "int8")
    assert quantized.backbone.token_embedding.quantization_mode is None
    assert quantized.mlm_head.token_embedding is quantized.backbone.token_embedding
    want, got = model(inputs), quantized(inputs)
    for name in ("mlm_logits", "nsp_logits"):
        # Scaled to the logits' size (masked-LM logits reach ~3 here; measured 0.08).
        atol = 2 * LOGIT_ATOL * max(1.0, float(np.abs(want[name]).max()))
        np.testing.assert_allclose(got[name], want[name], atol=atol, err_msg=name)


def test_unknown_or_repeated_precision_is_refused_naming_the_valid_ones(
    float_model, int8_model
):
    with pytest.raises(
        ValueError, match="'fp16'; expected one of float32, bfloat16, int8"
    ):
        with_precision(float_model, "fp16")
    assert PRECISIONS == (
        "float32",
        "bfloat16",
        "int8",
        "int8_weight_only",
        "int8_onednn",
    )
    with pytest.raises(ValueError, match="already int8-quantized"):
        with_precision(int8_model, "bfloat16")


def _assert_serves_on_2_10_and_2_20(path):
    for server_version in ("2.10", "2.20"):
        report = check_servable(path, server_version=server_version, clean_load=False)
        assert report.ok, (server_version, report.problems)


def test_bfloat16_export_passes_the_op_check(bf16_model, tmp_path):
    path = export_classifier(bf16_model, str(tmp_path / "bf16"), bucket_lengths=None)
    _assert_serves_on_2_10_and_2_20(path)


def test_kbi_export_precision_int8_writes_a_servable_export(float_model, tmp_path):
    saved = str(tmp_path / "float.keras")
    float_model.save(saved)
    export_dir = str(tmp_path / "int8")
    result = run_tool("export",
        f"--init_checkpoint={saved}",
        "--task=classifier",
        f"--export_dir={export_dir}",
        "--precision=int8",
        "--bucket_lengths=none",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    path = os.path.join(export_dir, "1")
    assert read_model_card(path)["precision"] == "int8"
    _assert_serves_on_2_10_and_2_20(path)
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        assert b"BatchMatMulV3" in f.read()  # the int8 x int8 -> int32 matmul

    result = run_tool("export",
        f"--init_checkpoint={saved}",
        "--task=classifier",
        f"--export_dir={export_dir}",
        "--precision=fp16",
    )
    assert result.returncode == 1
    assert "--precision=fp16" in result.stderr
    assert "float32, bfloat16, int8" in result.stderr
    # One version and the batching parameters written with it; nothing half-written.
    assert sorted(os.listdir(export_dir)) == ["1", SERVER_FILE]


def test_benchmark_times_every_precision_on_the_same_batches(
    float_model, bf16_model, int8_model
):
    from benchmarks.precision import (
        report_markdown,
        time_precisions,
    )

    models = {"float32": float_model, "bfloat16": bf16_model, "int8": int8_model}
    results = time_precisions(models, TEXTS, batch_sizes=[2], rounds=2)
    assert [r.precision for r in results] == list(models)
    assert results[0].speedups == [1.0, 1.0] and results[0].max_abs_logit_diff == 0
    for result in results[1:]:
        assert 0 < result.max_abs_logit_diff < LOGIT_ATOL
        assert len(result.sentences_per_second) == 2 and min(result.speedups) > 0
    report = report_markdown(results, {"int8": 0.5}, "kbi-benchmark-precision ...", "")
    assert "| int8 | 2 |" in report and report.rstrip().endswith("| 0.5000 |")


def test_int8_weight_only_dequantizes_then_matmuls_in_float(float_model, tmp_path):
    """No int8 x int8 -> int32 BatchMatMulV3 in the graph: it serves wherever the
    float model does."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    model = with_precision(float_model, "int8_weight_only")
    dense = model.backbone.transformer_layers[0].intermediate_dense
    assert dense._kernel.dtype == "int8" and dense.inputs_quantizer is None
    np.testing.assert_allclose(_logits(model), _logits(float_model), atol=LOGIT_ATOL)
    path = str(tmp_path / "weight_only.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert model_precision(loaded) == "int8_weight_only"
    np.testing.assert_array_equal(_logits(loaded), _logits(model))

    export = export_classifier(model, str(tmp_path / "export"), bucket_lengths=None)
    _assert_serves_on_2_10_and_2_20(export)
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    graph = saved_model.meta_graphs[0].graph_def
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    int8_matmuls = [
        n.name
        for n in nodes
        if "MatMul" in n.op
        and tf.int8.as_datatype_enum in (n.attr["Ta"].type, n.attr["T"].type)
    ]
    assert not int8_matmuls
    assert any(
        n.op == "Cast" and n.attr["SrcT"].type == tf.int8.as_datatype_enum
        for n in nodes
    )


AVX2_ONLY = cpu_features.parse("model name : AMD EPYC\nflags : avx avx2 fma\n", {})
SAPPHIRE_RAPIDS = cpu_features.parse(
    "flags : avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 "
    "amx_tile amx_bf16 amx_int8\n",
    {},
)


def _native_support_warnings(model, precision, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with_precision(model, precision, **kwargs)
    return [
        str(w.message)
        for w in caught
        if "native support" in str(w.message) or "without VNNI" in str(w.message)
    ]


def test_a_cpu_without_native_support_says_so_in_one_line(float_model, monkeypatch):
    monkeypatch.setattr(cpu_features, "detect", lambda: AVX2_ONLY)
    (bf16,) = _native_support_warnings(float_model, "bfloat16")
    assert "no AVX512_BF16 or AMX" in bf16 and "slower than float32" in bf16
    assert "AMD EPYC; avx2" in bf16 and "\n" not in bf16
    if onednn_int8.onednn_available():
        (int8,) = _native_support_warnings(
            float_model, "int8_onednn", calibration=TEXTS
        )
        assert "without VNNI" in int8 and "7-bit activations" in int8
        assert "\n" not in int8
    assert native_support_warning("int8") is None
    # A CPU with both: no word; an unknown one: int8_onednn keeps 7 bits and says so,
    # bfloat16 may well be native.
    monkeypatch.setattr(cpu_features, "detect", lambda: SAPPHIRE_RAPIDS)
    assert native_support_warning("bfloat16") is None
    assert native_support_warning("int8_onednn") is None
    unknown = cpu_features.parse("", {}, machine="aarch64")
    monkeypatch.setattr(cpu_features, "detect", lambda: unknown)
    assert native_support_warning("bfloat16") is None
    if onednn_int8.onednn_available():
        assert "ISA features unknown" in native_support_warning("int8_onednn")
