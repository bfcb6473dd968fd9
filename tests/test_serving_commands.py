"""The serving commands as a user runs them: kbi-export on a saved .keras model, kbi-serve
on the export, kbi-predict against it; the answers equal the in-process model's."""

import json
import os
import subprocess
import sys

import tensorflow as tf
from model_helpers import tiny_config
from serving_helpers import kbi_serve

from keras_bert_impl import BertTokenClassifier
from keras_bert_impl.preprocessing import BertTokenClassifierPreprocessor
from keras_bert_impl.text import Tokenizer

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TEXTS = ["Paris is the capital of France.", "naïve café 北京 👍", ""]


def _command(name, *flags):
    """`name` as installed next to this Python (the console script a user runs)."""
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), name), *flags],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_kbi_export_then_kbi_predict_through_kbi_serve(tmp_path):
    tf.keras.utils.set_random_seed(11)
    vocabulary = (
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        + list("abcdefghijklmnopqrstuvwxyz.,")
        + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
        + ["paris", "the", "is", "of"]
    )
    tokenizer = Tokenizer(vocabulary)
    model = BertTokenClassifier(
        tiny_config(vocab_size=tokenizer.vocab_size),
        label_names=TAGS,
        preprocessor=BertTokenClassifierPreprocessor(tokenizer, sequence_length=32),
    )
    model.build()
    model.save(tmp_path / "ner.keras")
    want = model.predict_text(TEXTS)

    base = tmp_path / "saved_models" / "ner"
    printed = _command(
        "kbi-export",
        f"--init_checkpoint={tmp_path / 'ner.keras'}",
        "--task=token_classifier",
        f"--export_dir={base}",
        "--bucket_lengths=16,32",
    )
    assert f"Exported token_classifier -> {base / '1'}" in printed
    with kbi_serve(
        "--model_name=ner", f"--model_base_path={base}", rest=False
    ) as server:
        printed = _command(
            "kbi-predict",
            f"--server={server.grpc_target}",
            "--model_name=ner",
            *[f"--text={text}" for text in TEXTS],
        )
    rows = [json.loads(line) for line in printed.splitlines()]
    assert [row["text"] for row in rows] == TEXTS
    for row, words in zip(rows, want):
        n = row["num_words"]
        assert row["words"][:n] == [w.word for w in words]
        assert row["tags"][:n] == [w.tag for w in words]
        assert row["word_start"][:n] == [w.start for w in words]
        assert row["entity_label"][: row["num_entities"]] == [
            label for label in row["entity_label"] if label
        ]
