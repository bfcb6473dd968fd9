"""The main job (`kbi-demo`): every stage on a reduced size, killed half-way
and run again; and the checkpoint it fine-tunes embeds like
sentence-transformers."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from keras_bert_impl.export.batching_files import SERVER_FILE
from keras_bert_impl.pipeline import PipelineSettings, run_pipeline
from keras_bert_impl.pipeline.stages import MissingInputError
from tests.model_helpers import real_checkpoint_dir, real_sentences, tiny_config

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SENTENCES = ("A wonderful, moving film.", "The food was cold and bland.")


def _tiny_checkpoint(directory):
    """A 2-layer checkpoint with the real vocabulary: fine-tuning, export and
    serving stay fast while the text path is the real one."""
    from keras_bert_impl import BertBackbone
    from keras_bert_impl.convert import to_huggingface

    vocab_file = os.path.join(real_checkpoint_dir(), "vocab.txt")
    backbone = BertBackbone(tiny_config(vocab_size=30522, max_position_embeddings=64))
    backbone.build()
    to_huggingface(backbone, directory, vocab_file=vocab_file)
    return str(directory)


def _small_corpus(path):
    """Ten sentences from each of the first eight shipped documents."""
    from keras_bert_impl.pipeline import SAMPLE_CORPUS

    with open(SAMPLE_CORPUS, encoding="utf-8") as f:
        documents = f.read().split("\n\n")[:8]
    path.write_text(
        "\n\n".join("\n".join(d.splitlines()[:10]) for d in documents) + "\n",
        encoding="utf-8",
    )
    return str(path)


def _kbi_demo(run_dir, checkpoint, corpus, *flags):
    return [
        sys.executable,
        "-m",
        "keras_bert_impl.cli",
        "demo",
        f"--run_dir={run_dir}",
        f"--checkpoint_dir={checkpoint}",
        f"--corpus_files={corpus}",
        "--vocab_size=500",
        "--pretrain_steps=4",
        "--pretrain_batch_size=8",
        "--finetune_epochs=1",
        "--max_train_examples=32",
        "--verbose=0",
        "--sentences=" + "|".join(SENTENCES),
        *flags,
    ]


def test_main_job_killed_half_way_then_run_again_finishes(tmp_path):
    checkpoint = _tiny_checkpoint(tmp_path / "tiny_checkpoint")
    run_dir = tmp_path / "run"
    command = _kbi_demo(run_dir, checkpoint, _small_corpus(tmp_path / "corpus.txt"))

    # First run: killed as soon as fine-tuning starts.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "] finetune:" in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(seen)
    records = sorted(os.listdir(run_dir / "stages"))
    assert records == ["pretrain.json", "pretraining_data.json", "vocab.json"]
    assert not (run_dir / "saved_models").exists()

    # Second run: the three finished stages are skipped, the rest run.
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for stage in ("vocab", "pretraining_data", "pretrain"):
        assert f"] {stage}: finished earlier" in out, out
    for stage in ("finetune", "export", "check", "serve"):
        assert f"] {stage} done in" in out, out
    assert "servable on TF Serving 2.10" in out
    assert str(run_dir) in out.splitlines()[-1]
    # One complete version, nothing half-written beside it.
    assert sorted(os.listdir(run_dir / "saved_models" / "sentiment")) == ["1", SERVER_FILE]

    # The answers over gRPC are the fine-tuned Keras model's.
    import json

    import keras

    with open(run_dir / "stages" / "serve.json") as f:
        served = json.load(f)["answers"]
    model = keras.saving.load_model(run_dir / "finetune" / "model.keras")
    expected = model.predict_text(list(SENTENCES))
    assert [a["label"] for a in served] == list(expected.labels)
    np.testing.assert_allclose(
        [a["probability"] for a in served], expected.probabilities.max(-1), atol=1e-4
    )
    for a in served:
        assert a["text"] in out and a["label"] in ("negative", "positive")

    with open(run_dir / "stages" / "pretrain.json") as f:
        pretrain = json.load(f)
    assert pretrain["replicas"] == 2 and pretrain["strategy"] == "MirroredStrategy"


def test_a_stage_without_its_input_names_the_stage_that_makes_it(tmp_path):
    settings = PipelineSettings(run_dir=str(tmp_path / "run"), stages=("export",))
    with pytest.raises(MissingInputError, match="stage finetune makes"):
        run_pipeline(settings, report=lambda line: None)
    assert not os.path.exists(tmp_path / "run" / "stages" / "export.json")


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(stages=("vocab", "train")), "--stages=vocab,train"),
        (dict(sentences=()), "--sentences is empty"),
        (dict(pretrain_batch_size=7), "not divisible by --replicas=2"),
        (dict(vocab_size=0), "--vocab_size=0"),
    ],
)
def test_bad_settings_name_the_flag(changes, message):
    with pytest.raises(ValueError, match=message):
        PipelineSettings(**changes)


def test_bad_corpus_and_data_dir_are_named(tmp_path):
    settings = PipelineSettings(
        run_dir=str(tmp_path / "run"),
        stages=("vocab",),
        corpus_files=(str(tmp_path / "nope.txt"),),
    )
    with pytest.raises(ValueError, match="nope.txt is not a file"):
        run_pipeline(settings, report=lambda line: None)
    settings = PipelineSettings(
        run_dir=str(tmp_path / "run"), stages=("finetune",), data_dir=str(tmp_path)
    )
    with pytest.raises(ValueError, match="has no train.tsv"):
        run_pipeline(settings, report=lambda line: None)


def test_checkpoint_embeddings_match_sentence_transformers():
    """Mean-pooled states of the imported checkpoint, tokenized in the graph,
    equal sentence-transformers' embeddings of the same checkpoint."""
    sentence_transformers = pytest.importorskip(
        "sentence_transformers", reason="sentence-transformers is not installed"
    )
    import tensorflow as tf

    from keras_bert_impl import BertBackbone
    from keras_bert_impl.convert import from_huggingface
    from keras_bert_impl.text import Packer, Tokenizer

    sentences = real_sentences()[:12]
    tokenizer = Tokenizer(
        os.path.join(real_checkpoint_dir(), "vocab.txt"), lowercase=True
    )
    inputs = Packer.from_tokenizer(tokenizer, 64)(tokenizer(tf.constant(sentences)))
    states = np.asarray(
        from_huggingface(real_checkpoint_dir(), BertBackbone)(inputs)["sequence_output"]
    )
    mask = np.asarray(inputs["padding_mask"], "float32")[..., None]
    pooled = (states * mask).sum(1) / mask.sum(1)
    ours = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    reference = sentence_transformers.SentenceTransformer(
        real_checkpoint_dir(), device="cpu"
    ).encode(sentences, normalize_embeddings=True)
    assert np.abs(ours - reference).max() < 1e-5


def test_shipped_data_is_installed_with_the_package():
    from keras_bert_impl.pipeline import SAMPLE_CORPUS, SAMPLE_SENTIMENT_DIR

    assert os.path.getsize(SAMPLE_CORPUS) > 100_000
    for name in ("train.tsv", "dev.tsv"):
        with open(os.path.join(SAMPLE_SENTIMENT_DIR, name), encoding="utf-8") as f:
            header, *rows = f.read().splitlines()
        assert header == "sentence\tlabel"
        labels = [row.split("\t")[1] for row in rows]
        assert set(labels) == {"negative", "positive"}
        assert abs(labels.count("positive") - labels.count("negative")) <= 1
    # The README beside the data names each file's source and licence.
    assert os.path.exists(os.path.join(os.path.dirname(SAMPLE_CORPUS), "README.md"))
