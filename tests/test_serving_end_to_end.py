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

from keras_bert_impl import (
    BertBackbone,
    BertClassifier,
    BertPretrainer,
    BertQuestionAnswerer,
    BertTokenClassifier,
)
from keras_bert_impl.export import (
    export_classifier,
    export_embeddings,
    export_fill_mask,
    export_question_answerer,
    export_token_classifier,
)
from keras_bert_impl.export.check import check_servable, check_servables
from keras_bert_impl.preprocessing import (
    BertQuestionAnswererPreprocessor,
    BertTokenClassifierPreprocessor,
)
from keras_bert_impl.serving import Client, ServingError
from keras_bert_impl.text import Packer, Tokenizer
from keras_bert_impl.training.evaluation import entity_spans

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
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "MISC"]
QUESTIONS = ["what is the capital of france?", "who acted?", "", "x " * 20, "good?"]
CONTEXTS = [
    "Paris is the capital of France. " * 6,  # several windows
    "the cast acted well; naïve café 北京 👍 good film",
    "",
    "the plot is good",
    "",
]


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
    tagger = BertTokenClassifier(
        config,
        label_names=TAGS,
        preprocessor=BertTokenClassifierPreprocessor(tokenizer, MAX_SEQ_LENGTH),
    )
    answerer = BertQuestionAnswerer(
        config,
        preprocessor=BertQuestionAnswererPreprocessor(
            tokenizer, MAX_SEQ_LENGTH, doc_stride=8, max_query_length=8
        ),
    )
    for model in (classifier, regressor, backbone, pretrainer, tagger, answerer):
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
        "ner": export_token_classifier(tagger, root / "ner"),
        "qa": export_question_answerer(answerer, root / "qa"),
    }
    models = {
        "sst": classifier,
        "stsb": regressor,
        "embed": backbone,
        "mlm": pretrainer,
        "ner": tagger,
        "qa": answerer,
    }
    return root, tokenizer, models, paths


@pytest.fixture(scope="module")
def server(exports):
    root, _, _, _ = exports
    config = root / "models.config"
    entries = "".join(
        f'config {{ name: "{name}" base_path: "{root / name}" model_platform: "tensorflow" }}\n'
        for name in ("sst", "stsb", "embed", "mlm", "ner", "qa")
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


def test_token_classifier_over_grpc_and_rest_equals_keras(exports, server):
    _, _, models, _ = exports
    tagger = models["ner"]
    want = tagger.predict_text(TEXTS)
    encoded = tagger.preprocessor.encode(tf.constant(TEXTS))
    inputs = {k: encoded[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    logits = tagger(inputs, training=False).numpy().astype("float64")
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    with Client(server.grpc_target, "ner", batch_size=2) as client:
        got = client.predict({"text": TEXTS})
        ids = client.predict({k: v.numpy() for k, v in inputs.items()}, "predict_ids")
    # Longer than the sequence length: tagged in several windows of whole words.
    assert len(want[3]) > MAX_SEQ_LENGTH and all(word.tag for word in want[3])
    for row, (text, words) in enumerate(zip(TEXTS, want)):
        n = got["num_words"][row]
        assert n == len(words)
        assert got["words"][row, :n].tolist() == [w.word for w in words]
        assert got["tags"][row, :n].tolist() == [w.tag or "" for w in words]
        assert got["word_start"][row, :n].tolist() == [w.start for w in words]
        assert got["word_end"][row, :n].tolist() == [w.end for w in words]
        assert (got["tags"][row, n:] == "").all() and (got["word_start"][row, n:] == -1).all()
        # Scores of the words of the first window, from the in-process model.
        word_index = encoded["word_index"][row].numpy()
        first_pieces = np.flatnonzero(word_index >= 0)
        _close(
            got["tag_scores"][row, word_index[first_pieces]],
            probabilities[row, first_pieces].max(-1),
        )
        # Entities: conlleval's chunks of the same tags, sliced out of the text.
        spans = entity_spans([w.tag or "O" for w in words])
        k = got["num_entities"][row]
        assert k == len(spans)
        assert got["entity_label"][row, :k].tolist() == [t for t, _, _ in spans]
        starts = [words[first].start for _, first, _ in spans]
        ends = [words[last].end for _, _, last in spans]
        assert got["entity_start"][row, :k].tolist() == starts
        assert got["entity_end"][row, :k].tolist() == ends
        assert got["entity_text"][row, :k].tolist() == [
            text[a:b] for a, b in zip(starts, ends)
        ]
    assert sum(got["num_entities"]) > 3
    _close(ids["probabilities"], probabilities)
    assert ids["tags"][0, 1] == TAGS[probabilities[0, 1].argmax()]
    code, body = server.rest("/v1/models/ner:predict", {"instances": TEXTS[:2]})
    assert code == 200, body
    assert body["predictions"][0]["tags"][: len(want[0])] == [w.tag for w in want[0]]


def test_question_answerer_over_grpc_and_rest_equals_keras(exports, server):
    _, _, models, _ = exports
    answerer = models["qa"]
    want = answerer.predict_text(QUESTIONS, CONTEXTS)
    windows = answerer.preprocessor.encode((tf.constant(QUESTIONS), tf.constant(CONTEXTS)))
    assert windows["example_index"].numpy().tolist().count(0) > 1  # a long context
    inputs = {k: windows[k].numpy() for k in ("token_ids", "segment_ids", "padding_mask")}
    logits = answerer(inputs, training=False)
    with Client(server.grpc_target, "qa", batch_size=2) as client:
        got = client.predict({"question": QUESTIONS, "context": CONTEXTS})
        ids = client.predict(inputs, "predict_ids")
    assert got["answer"].tolist() == [a.text for a in want]
    assert got["start_char"].tolist() == [a.start for a in want]
    assert got["end_char"].tolist() == [a.end for a in want]
    _close(got["score"], [a.score for a in want])
    assert want[0].text and want[2] == type(want[2])("", -1, -1, 1.0)
    for name in ("start_logits", "end_logits"):
        _close(ids[name], logits[name].numpy())
    instances = [{"question": q, "context": c} for q, c in zip(QUESTIONS, CONTEXTS)]
    code, body = server.rest("/v1/models/qa:predict", {"instances": instances})
    assert code == 200, body
    assert [row["answer"] for row in body["predictions"]] == [a.text for a in want]


def test_every_export_passes_the_servability_check(exports, server):
    _, _, models, paths = exports
    # The full check (one clean process loads all three and replays their warmup, then
    # each signature is compared with Keras) on one export of each kind of signature set;
    # every export's warmup also replays in kbi-serve, which loaded them all.
    full = {
        "sst": {"serving_default", "predict_pair", "predict_ids", "classify"},
        "ner": {"serving_default", "predict_ids"},
        "qa": {"serving_default", "predict_ids"},
    }
    # A relative path, as users type it (the clean process runs elsewhere).
    relative = {"sst": os.path.relpath(paths["sst"])}
    reports = check_servables(
        [(relative.get(name, paths[name]), models[name]) for name in full],
        server_version="2.10",
    )
    for report, replayed in zip(reports, full.values()):
        assert report.ok, report.summary()
        assert set(report.replayed) == replayed
        assert max(report.max_abs_diff.values()) <= 1e-5
    for name, path in paths.items():
        for version in ("2.10", "2.20"):
            assert check_servable(path, server_version=version, clean_load=False).ok
        expected = 4 if name in ("sst", "stsb") else 2
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
