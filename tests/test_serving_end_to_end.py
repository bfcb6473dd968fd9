"""Export -> kbi-serve in a subprocess -> Client / REST: every signature of every exported
task equals the in-process Keras model (<= 1e-5), each export passes kbi-check-servable, and
bad requests get TF Serving's status codes without hurting the server."""

import base64
import os

import grpc
import numpy as np
import pytest
import tensorflow as tf
from model_helpers import tiny_config
from serving_helpers import kbi_serve
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from keras_bert_impl import BertBackbone, BertClassifier, BertPretrainer
from keras_bert_impl.export import export_classifier, export_embeddings, export_fill_mask
from keras_bert_impl.export.check import check_servable
from keras_bert_impl.serving import Client, ServingError
from keras_bert_impl.text import Packer, Tokenizer

MAX_SEQ_LENGTH = 48
LABELS = ["negative", "neutral", "positive"]
WORDS = (
    "the a is of and to in film movie good bad great not it was this that plot cast "
    "paris capital france funny clever acted story"
).split()
TEXTS = [
    "The film was good.",
    "a bad plot, not funny!",
    "",
    "Paris is the capital of France. " * 12,  # longer than MAX_SEQ_LENGTH: truncated
    "naïve café [MASK] 北京 👍",
]
PAIRS = ["great cast", "", "it was clever", "the story " * 30, "x"]


def _vocabulary():
    letters = "abcdefghijklmnopqrstuvwxyz.,!?"
    return (
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        + sorted(set(WORDS) | set(letters))
        + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    )


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    keras_seed = 7
    tf.keras.utils.set_random_seed(keras_seed)
    tokenizer = Tokenizer(_vocabulary())
    config = tiny_config(vocab_size=tokenizer.vocab_size, max_position_embeddings=64)
    classifier = BertClassifier(config, num_classes=3)
    regressor = BertClassifier(config, num_classes=1)
    backbone = BertBackbone(config)
    pretrainer = BertPretrainer(config)
    for model in (classifier, regressor, backbone, pretrainer):
        model.build()
    root = tmp_path_factory.mktemp("saved_models")
    paths = {
        "sst": export_classifier(
            classifier, root / "sst", tokenizer, labels=LABELS, max_seq_length=MAX_SEQ_LENGTH
        ),
        "stsb": export_classifier(
            regressor, root / "stsb", tokenizer, max_seq_length=MAX_SEQ_LENGTH
        ),
        "embed": export_embeddings(
            backbone, root / "embed", tokenizer, max_seq_length=MAX_SEQ_LENGTH
        ),
        "mlm": export_fill_mask(
            pretrainer, root / "mlm", tokenizer, top_k=3, max_seq_length=MAX_SEQ_LENGTH
        ),
    }
    models = {"sst": classifier, "stsb": regressor, "embed": backbone, "mlm": pretrainer}
    return root, tokenizer, models, paths


@pytest.fixture(scope="module")
def server(exports):
    root, _, _, _ = exports
    config = root / "models.config"
    entries = "".join(
        f'config {{ name: "{name}" base_path: "{root / name}" model_platform: "tensorflow" }}\n'
        for name in ("sst", "stsb", "embed", "mlm")
    )
    config.write_text(f"model_config_list {{\n{entries}}}\n")
    with kbi_serve(
        f"--model_config_file={config}",
        "--grpc_channel_arguments=grpc.max_receive_message_length=4194304",
    ) as running:
        yield running


def _keras_inputs(tokenizer, texts, pairs=None):
    """Fixed padding to MAX_SEQ_LENGTH: the export's bucketing must not change anything."""
    packer = Packer.from_tokenizer(tokenizer, MAX_SEQ_LENGTH)
    segments = tokenizer(tf.constant(texts))
    if pairs is not None:
        segments = (segments, tokenizer(tf.constant(pairs)))
    return {k: tf.cast(v, tf.int32) for k, v in packer(segments).items()}


def _keras_classifier(model, inputs):
    logits = model(inputs, training=False).numpy()
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def _keras_embeddings(model, inputs):
    outputs = model(inputs, training=False)
    mask = inputs["padding_mask"].numpy()[:, :, None].astype("float32")
    mean = (outputs["sequence_output"].numpy() * mask).sum(1) / np.maximum(mask.sum(1), 1)
    mean /= np.linalg.norm(mean, axis=-1, keepdims=True)
    return outputs["pooled_output"].numpy(), mean


def _close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, atol=1e-5, rtol=0)


def test_classifier_over_grpc_equals_keras(exports, server):
    _, tokenizer, models, _ = exports
    want = _keras_classifier(models["sst"], _keras_inputs(tokenizer, TEXTS))
    want_pair = _keras_classifier(models["sst"], _keras_inputs(tokenizer, TEXTS, PAIRS))
    with Client(server.grpc_target, "sst", batch_size=2) as client:
        got = client.predict({"text": TEXTS})
        _close(got["probabilities"], want)
        assert got["label_id"].tolist() == want.argmax(-1).tolist()
        assert got["label"].tolist() == [LABELS[i] for i in want.argmax(-1)]
        got = client.predict({"text": TEXTS, "text_pair": PAIRS}, "predict_pair")
        _close(got["probabilities"], want_pair)
        ids = _keras_inputs(tokenizer, TEXTS)
        got = client.predict({k: v.numpy() for k, v in ids.items()}, "predict_ids")
        _close(got["probabilities"], want)
        results = client.classify([{"text": t} for t in TEXTS], "classify")
        assert [[label for label, _ in row] for row in results] == [LABELS] * len(TEXTS)
        _close([[score for _, score in row] for row in results], want)
        pair_results = client.classify(
            [{"text": t, "text_pair": p} for t, p in zip(TEXTS, PAIRS)], "classify"
        )
        _close([[score for _, score in row] for row in pair_results], want_pair)
        version, signatures = client.get_model_metadata()
        assert version == 1
        assert signatures["classify"].method_name == "tensorflow/serving/classify"
        assert client.get_model_status() == [(1, "AVAILABLE", "OK", "")]


def test_classifier_over_rest_equals_keras(exports, server):
    _, tokenizer, models, _ = exports
    want = _keras_classifier(models["sst"], _keras_inputs(tokenizer, TEXTS))
    code, body = server.rest("/v1/models/sst:predict", {"instances": TEXTS})
    assert code == 200, body
    _close([row["probabilities"] for row in body["predictions"]], want)
    assert [row["label"] for row in body["predictions"]] == [LABELS[i] for i in want.argmax(-1)]
    b64 = [{"b64": base64.b64encode(t.encode()).decode()} for t in TEXTS]
    code, body = server.rest("/v1/models/sst/versions/1:predict", {"inputs": {"text": b64}})
    assert code == 200, body
    _close(body["outputs"]["probabilities"], want)
    code, body = server.rest(
        "/v1/models/sst:classify",
        {"signature_name": "classify", "examples": [{"text": t} for t in TEXTS]},
    )
    assert code == 200, body
    _close([[score for _, score in row] for row in body["results"]], want)


def test_regression_over_grpc_and_rest_equals_keras(exports, server):
    _, tokenizer, models, _ = exports
    want = models["stsb"](_keras_inputs(tokenizer, TEXTS, PAIRS), training=False).numpy()[:, 0]
    with Client(server.grpc_target, "stsb") as client:
        _close(client.predict({"text": TEXTS, "text_pair": PAIRS}, "predict_pair")["score"], want)
        _close(
            client.regress(
                [{"text": t, "text_pair": p} for t, p in zip(TEXTS, PAIRS)], "regress"
            ),
            want,
        )
    code, body = server.rest(
        "/v1/models/stsb:regress",
        {"signature_name": "regress", "examples": [{"text": t, "text_pair": p} for t, p in zip(TEXTS, PAIRS)]},
    )
    assert code == 200, body
    _close(body["results"], want)
    code, body = server.rest(
        "/v1/models/stsb:predict",
        {"signature_name": "predict_pair", "instances": [{"text": t, "text_pair": p} for t, p in zip(TEXTS, PAIRS)]},
    )
    assert code == 200, body
    _close(body["predictions"], want)


def test_embeddings_over_grpc_and_rest_equal_keras(exports, server):
    _, tokenizer, models, _ = exports
    ids = _keras_inputs(tokenizer, TEXTS)
    pooled, mean = _keras_embeddings(models["embed"], ids)
    with Client(server.grpc_target, "embed") as client:
        got = client.predict({"text": TEXTS})
        _close(got["pooled_output"], pooled)
        _close(got["embedding"], mean)
        got = client.predict({k: v.numpy() for k, v in ids.items()}, "predict_ids")
        _close(got["embedding"], mean)
    code, body = server.rest("/v1/models/embed:predict", {"instances": TEXTS})
    assert code == 200, body
    _close([row["embedding"] for row in body["predictions"]], mean)


def test_fill_mask_over_grpc_and_rest_equals_keras(exports, server):
    _, tokenizer, models, _ = exports
    texts = ["paris is the [MASK] of france.", "no mask here", "[MASK] film [MASK] good"]
    ids = _keras_inputs(tokenizer, texts)
    positions = np.zeros((len(texts), 2), np.int32)
    for row, tokens in enumerate(ids["token_ids"].numpy()):
        found = np.flatnonzero(tokens == tokenizer.mask_id)
        positions[row, : len(found)] = found
    logits = models["mlm"](dict(ids, mask_positions=positions), training=False)["mlm_logits"]
    logits = logits.numpy().astype("float64")
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    top_ids = np.argsort(-probabilities, axis=-1)[..., :3]
    top_scores = np.take_along_axis(probabilities, top_ids, -1)
    real = np.arange(2)[None, :, None] < np.array([1, 0, 2])[:, None, None]
    with Client(server.grpc_target, "mlm") as client:
        got = client.predict({"text": texts})
    assert got["num_masks"].tolist() == [1, 0, 2]
    assert got["token_ids"].tolist() == np.where(real, top_ids, -1).tolist()
    _close(got["scores"], np.where(real, top_scores, 0.0))
    vocabulary = tokenizer.vocabulary
    assert got["tokens"][0, 0].tolist() == [vocabulary[i] for i in top_ids[0, 0]]
    assert got["tokens"][1].tolist() == [["", "", ""]] * 2
    code, body = server.rest("/v1/models/mlm:predict", {"instances": texts[:1]})
    assert code == 200, body
    assert body["predictions"][0]["tokens"][0] == [vocabulary[i] for i in top_ids[0, 0]]


def test_every_export_passes_the_servability_check(exports, server):
    _, _, models, paths = exports
    # The full check (clean-process load, warmup replay, comparison with Keras) on the
    # classifier; every export's warmup also replays in kbi-serve, which loaded them all.
    report = check_servable(paths["sst"], server_version="2.10", keras_model=models["sst"])
    assert report.ok, report.summary()
    assert set(report.replayed) == {"serving_default", "predict_pair", "predict_ids", "classify"}
    assert max(report.max_abs_diff.values()) <= 1e-5
    for name, path in paths.items():
        for version in ("2.10", "2.20"):
            assert check_servable(path, server_version=version, clean_load=False).ok
        expected = 2 if name in ("embed", "mlm") else 4
        assert (
            f"Finished reading {expected} warmup records for {{name: {name} version: 1}}"
            in server.log()
        )
        assert os.path.exists(os.path.join(path, "assets.extra", "model_card.json"))


def _rpc_code(call, *args):
    with pytest.raises(ServingError) as error:
        call(*args)
    return error.value.code, error.value.message


def test_bad_requests_get_tf_serving_codes_and_the_server_stays_healthy(server):
    target = server.grpc_target
    with Client(target, "sst", max_retries=0, timeout=60) as client:
        code, message = _rpc_code(client.predict, {"txt": ["a"]})
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert "Sent extra: {txt}. Missing but required: {text}." in message
        code, message = _rpc_code(client.predict, {"text": np.array([1, 2], np.int32)})
        assert (code, message) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expects arg[0] to be string but int32 is provided",
        )
        code, message = _rpc_code(client.predict, {"text": [["a", "b"]]})
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "shape [1, 2]" in message
        code, message = _rpc_code(client.predict, {"text": ["a"]}, "nope")
        assert (code, message) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            'Serving signature key "nope" not found.',
        )
        code, message = _rpc_code(client.classify, [], "classify")
        assert (code, message) == (grpc.StatusCode.INVALID_ARGUMENT, "Input is empty.")
        empty = client.predict({"text": np.array([], dtype=object)})
        assert empty["probabilities"].shape == (0, 3)
        long_text = client.predict({"text": ["good " * 200_000]})  # a 1 MB string
        assert long_text["probabilities"].shape == (1, 3)
        invalid_utf8 = client.predict({"text": [b"caf\xc3 \xff\xfe good"]})
        assert invalid_utf8["probabilities"].shape == (1, 3)
        code, _ = _rpc_code(client.predict, {"text": ["x" * 5_000_000]})
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    for spec, expected in (
        (dict(model_name="nope"), grpc.StatusCode.NOT_FOUND),
        (dict(model_name="sst", version=9), grpc.StatusCode.NOT_FOUND),
        (dict(model_name="sst", version_label="canary"), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with Client(target, max_retries=0, **spec) as client:
            assert _rpc_code(client.predict, {"text": ["a"]})[0] == expected, spec
    # Requests the Client would not build, straight through the stub.
    channel = grpc.insecure_channel(target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(predict_pb2.PredictRequest(), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()
    for body, raw in ((None, b"{not json"), ({"instances": [1, 2]}, None), ({}, None)):
        code, answer = server.rest("/v1/models/sst:predict", body, raw=raw)
        assert code == 400 and "error" in answer, (body, raw, answer)
    assert server.rest("/v1/models/nope:predict", {"instances": ["a"]})[0] == 404
    assert server.rest("/v1/models/sst:predict", {"signature_name": "nope", "instances": ["a"]})[0] == 400
    # Still healthy: every model available, predictions unchanged.
    assert server.process.poll() is None
    with Client(target, "sst") as client:
        assert client.get_model_status()[0][1] == "AVAILABLE"
        assert client.predict({"text": TEXTS})["probabilities"].shape == (len(TEXTS), 3)
