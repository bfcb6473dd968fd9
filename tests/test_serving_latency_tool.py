"""benchmarks/serving_latency.py: the session runner answers like the Keras model, its
profile counts what the optimized graph runs, and the rounds time every system."""

import os
import sys

import numpy as np
import pytest

from model_helpers import tiny_text_model

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import serving_latency  # noqa: E402


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    from keras_bert_impl.export import exporter

    model = tiny_text_model()
    path = exporter.export_classifier(model, tmp_path_factory.mktemp("export") / "m")
    return model, path


def test_session_signature_answers_like_the_model(export):
    model, path = export
    texts = ["good film", "bad , bad film w3 w4"]
    signature = serving_latency.SessionSignature(path)
    got = signature(text=serving_latency.strings(texts))["probabilities"]
    want = model.predict_text(texts).probabilities
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_profile_counts_ops_and_fused_matmuls(export):
    _, path = export
    signature = serving_latency.SessionSignature(path)
    executed, counts, micros, fused = signature.profile(
        text=serving_latency.strings(["good film"])
    )
    assert executed == sum(counts.values()) > 100
    assert set(micros) == set(counts)
    # 2 layers x (query, key, value, output, intermediate, output) + pooler + head,
    # each a matmul fused with its bias.
    assert sum(count for name, count in fused.items() if "MatMul" in name) == 14
    assert "MatMul" not in counts  # no matmul left unfused


def test_interleaved_rounds_time_every_batch_of_every_system():
    calls = []
    systems = {
        "a": lambda batch: calls.append(("a", tuple(batch))),
        "b": lambda batch: calls.append(("b", tuple(batch))),
    }
    times = serving_latency.interleaved(systems, [["x"], ["y"], ["z"]], rounds=2)
    assert {name: len(t) for name, t in times.items()} == {"a": 6, "b": 6}
    # After the warm-up, round 0 runs a then b, round 1 b then a.
    timed = calls[6:]
    assert [name for name, _ in timed] == ["a"] * 3 + ["b"] * 3 + ["b"] * 3 + ["a"] * 3


def test_bad_sentences_file_names_the_column(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text("text\tlabel\nhello\t1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'sentence' column"):
        serving_latency.read_sentences(str(path), 10)


def test_threads_reach_tensorflow_through_its_environment(monkeypatch):
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        # Set, then deleted: monkeypatch then restores the variables after the
        # test (a delenv of an absent one records nothing), so the one thread
        # set here never reaches servers that later tests start.
        monkeypatch.setenv(name, "0")
        monkeypatch.delenv(name)
    serving_latency.limit_tensorflow_threads(0)  # 0: TensorFlow's own default
    assert "TF_NUM_INTRAOP_THREADS" not in os.environ
    serving_latency.limit_tensorflow_threads(1)
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "1"
    assert os.environ["TF_NUM_INTEROP_THREADS"] == "1"
