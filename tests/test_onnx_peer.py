"""ONNX Runtime peer: a classifier exported through transformers and torch.onnx gives
Keras' logits at any batch size and length, its dynamic int8 quantization really runs
integer matmuls, and bad models or files fail with a clear error."""

import collections
import os

import numpy as np
import pytest

from keras_bert_impl import BertClassifier, BertTokenClassifier
from keras_bert_impl.compression import with_precision
from keras_bert_impl.preprocessing import BertTextClassifierPreprocessor
from model_helpers import max_abs_diff, tiny_config, tiny_inputs

onnx = pytest.importorskip("onnx", reason="onnx (test extra) is not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime (test extra) is not installed")
pytest.importorskip("transformers", reason="transformers (test extra) is not installed")
from benchmarks import onnx_peer  # noqa: E402

# Exported with a 2 x 8 example; these differ in both dimensions.
BATCH, LENGTH = 6, 13
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film"] + [
    f"w{i}" for i in range(56)
]
TEXTS = ["good film", "bad film bad", "w1 w2 w3 good w4", "film"]


@pytest.fixture(scope="module")
def classifier():
    # initializer_range 0.2 (not BERT's 0.02): logits of size ~1, so tolerances bite.
    model = BertClassifier(
        tiny_config(initializer_range=0.2),
        num_classes=3,
        preprocessor=BertTextClassifierPreprocessor(
            vocabulary=VOCABULARY, sequence_length=16
        ),
    )
    model.build()
    return model


@pytest.fixture(scope="module")
def exported(classifier, tmp_path_factory):
    directory = tmp_path_factory.mktemp("onnx")
    quantized = onnx_peer.export_classifier(classifier, directory, quantize=True)
    return str(directory), quantized


def _inputs(seed=0):
    return tiny_inputs(batch=BATCH, length=LENGTH, seed=seed)


def _op_counts(path):
    return collections.Counter(node.op_type for node in onnx.load(path).graph.node)


def _matmul_integer_weights(path):
    """The constant (weight) inputs of the model's MatMulInteger nodes."""
    graph = onnx.load(path).graph
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    return [
        constants[node.input[1]]
        for node in graph.node
        if node.op_type == "MatMulInteger" and node.input[1] in constants
    ]


def test_export_writes_both_files_and_nothing_else(exported):
    directory, quantized = exported
    assert quantized == os.path.join(directory, "model_quantized.onnx")
    assert sorted(os.listdir(directory)) == ["model.onnx", "model_quantized.onnx"]


def test_float_logits_equal_keras_at_other_shapes_with_padding(classifier, exported):
    directory, _ = exported
    peer = onnx_peer.OnnxRuntimeClassifier(os.path.join(directory, "model.onnx"))
    inputs = _inputs()
    assert inputs["padding_mask"].sum(axis=1).min() < LENGTH  # padded rows
    expected = np.asarray(classifier(inputs))
    assert np.abs(expected).max() > 0.3
    logits = peer.predict(inputs)
    assert logits.dtype == np.float32 and logits.shape == (BATCH, 3)
    assert max_abs_diff(logits, expected) < 1e-4
    # A batch without padding (the mask path must not be specialised away), int64
    # ids and a boolean mask, and a single row.
    full = {k: v[:1, :9].astype("int64") for k, v in inputs.items()}
    full["padding_mask"] = full["padding_mask"].astype(bool)
    assert full["padding_mask"].all()
    assert max_abs_diff(peer(full), np.asarray(classifier(full))) < 1e-4


def test_padded_positions_do_not_change_logits(exported):
    directory, _ = exported
    peer = onnx_peer.OnnxRuntimeClassifier(
        os.path.join(directory, "model.onnx"), num_threads=1, allow_spinning=False
    )
    options = peer.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    inputs = _inputs()
    noisy = dict(inputs)
    noisy["token_ids"] = np.where(inputs["padding_mask"] == 1, inputs["token_ids"], 7)
    assert max_abs_diff(peer.predict(noisy), peer.predict(inputs)) < 1e-5


def test_dynamic_int8_model_quantizes_matmuls_and_stays_close(classifier, exported):
    directory, quantized = exported
    float_ops, int8_ops = (
        _op_counts(os.path.join(directory, "model.onnx")),
        (_op_counts(quantized)),
    )
    assert float_ops["MatMulInteger"] == 0 and float_ops["MatMul"] > 0
    assert int8_ops["MatMulInteger"] >= 12 and int8_ops["DynamicQuantizeLinear"] > 0
    assert os.path.getsize(quantized) < os.path.getsize(
        os.path.join(directory, "model.onnx")
    )
    # Without VNNI ORT's uint8 x int8 kernels add products in pairs in int16: ORT's
    # reduce_range keeps the weights to 7 bits there, so that they cannot saturate.
    weights = _matmul_integer_weights(quantized)
    assert weights and all(w.dtype == np.int8 for w in weights)
    largest = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
    assert (largest <= 64) == onnx_peer.reduces_range()
    inputs = _inputs(seed=1)
    expected = np.asarray(classifier(inputs))
    logits = onnx_peer.OnnxRuntimeClassifier(quantized).predict(inputs)
    assert 0 < max_abs_diff(logits, expected) < 0.1
    agree = np.mean(logits.argmax(-1) == expected.argmax(-1))
    assert agree >= 5 / 6


@pytest.mark.parametrize("kind", ["int8", "bfloat16", "token_classifier"])
def test_export_accepts_only_float32_classifiers(classifier, kind, tmp_path):
    if kind == "token_classifier":
        model = BertTokenClassifier(tiny_config(), num_classes=3)
        model.build()
    else:
        # One layer: Keras' quantize runs a gc.collect per quantized layer.
        model = BertClassifier(tiny_config(num_layers=1), num_classes=3)
        model = with_precision(model, kind)
    with pytest.raises(ValueError, match="float32 BertClassifier"):
        onnx_peer.export_classifier(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_failed_quantization_leaves_nothing_half_written(
    classifier, tmp_path, monkeypatch
):
    def broken(*args):
        raise RuntimeError("quantizer failed")

    monkeypatch.setattr(onnx_peer, "_quantize", broken)
    with pytest.raises(RuntimeError, match="quantizer failed"):
        onnx_peer.export_classifier(classifier, tmp_path, quantize=True)
    assert os.listdir(tmp_path) == []


def test_missing_corrupt_or_foreign_model_files_name_the_path(tmp_path):
    missing = str(tmp_path / "absent.onnx")
    with pytest.raises(FileNotFoundError, match="absent.onnx"):
        onnx_peer.OnnxRuntimeClassifier(missing)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a protobuf \x00\xff" * 10)
    with pytest.raises(ValueError, match="corrupt.onnx: not a loadable ONNX model"):
        onnx_peer.OnnxRuntimeClassifier(str(corrupt))
    # A valid ONNX model with other inputs.
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    foreign = str(tmp_path / "identity.onnx")
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), foreign
    )
    with pytest.raises(ValueError, match="identity.onnx: inputs"):
        onnx_peer.OnnxRuntimeClassifier(foreign)


def test_predict_rejects_bad_token_dicts(exported):
    directory, _ = exported
    peer = onnx_peer.OnnxRuntimeClassifier(os.path.join(directory, "model.onnx"))
    inputs = _inputs()
    with pytest.raises(ValueError, match="lacks \\['segment_ids'\\]"):
        peer.predict({k: v for k, v in inputs.items() if k != "segment_ids"})
    with pytest.raises(ValueError, match="token_ids.*float32; expected integers"):
        peer.predict({**inputs, "token_ids": inputs["token_ids"].astype("float32")})
    with pytest.raises(ValueError, match="differ in shape"):
        peer.predict({**inputs, "segment_ids": inputs["segment_ids"][:, :5]})


def test_precision_benchmark_times_onnx_runtime_in_the_same_rounds(
    classifier, exported
):
    from benchmarks.precision import accuracy, time_precisions

    directory, quantized = exported
    models = {
        "float32": classifier,
        "ort float32": onnx_peer.OnnxRuntimeClassifier(
            os.path.join(directory, "model.onnx"), num_threads=1
        ),
        "ort int8": onnx_peer.OnnxRuntimeClassifier(quantized, num_threads=1),
    }
    results = time_precisions(models, TEXTS, batch_sizes=[2], rounds=2)
    assert [r.precision for r in results] == list(models)
    assert results[1].max_abs_logit_diff < 1e-4
    assert 0 < results[2].max_abs_logit_diff < 0.1
    assert all(len(r.speedups) == 2 and min(r.speedups) > 0 for r in results)
    labels = np.asarray(classifier(classifier.preprocessor(TEXTS))).argmax(-1)
    peer_accuracy = accuracy(
        models["ort float32"], TEXTS, labels, batch_size=3, preprocessed_by=classifier
    )
    assert peer_accuracy == accuracy(classifier, TEXTS, labels) == 1.0


def test_precision_benchmark_gives_a_bare_classifier_a_preprocessor(
    classifier, tmp_path
):
    """A .keras classifier saved without a preprocessor runs on text with
    --vocab_file: same weights, the vocabulary's tokens."""
    from benchmarks.precision import with_preprocessor

    bare = BertClassifier(classifier.backbone, num_classes=3)
    bare.build()
    bare.head.set_weights(classifier.head.get_weights())
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(VOCABULARY) + "\n", encoding="utf-8")
    model = with_preprocessor(bare, str(vocab_file), 16)
    assert bare.preprocessor is None and model.preprocessor.sequence_length == 16
    inputs = model.preprocessor(TEXTS)
    expected = classifier.preprocessor(TEXTS)
    np.testing.assert_array_equal(inputs["token_ids"], expected["token_ids"])
    assert max_abs_diff(model(inputs), classifier(expected)) == 0
