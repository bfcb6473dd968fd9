"""`kbi-finetune --task_name=text_classification|text_regression` on a user's own
CSV, TSV and JSON lines files, run as the command line runs it: end to end on
tiny files, and one line with exit code 1 for each mistake a user can make."""

import csv
import json

import numpy as np
import pytest

from keras_bert_impl.cli import finetune
from model_helpers import tiny_config
from pretraining_records import TINY_VOCAB
from text_helpers import write_vocab

LABELS = ("sports", "cooking", "music")
# Each class draws its words from its own part of the tiny vocabulary.
WORDS = {
    label: [f"word{i}" for i in range(k * 12, k * 12 + 12)]
    for k, label in enumerate(LABELS)
}


def _rows(count, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        label = LABELS[i % len(LABELS)]
        review = " ".join(rng.choice(WORDS[label], size=5))
        rows.append({"review": review, "label": label})
    return rows


def _write_csv(path, rows, columns=("review", "label")):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def _run(tmp_path, *flags):
    """Runs kbi-finetune in this process; returns its result (or raises
    SystemExit for an error)."""
    vocab = write_vocab(tmp_path / "vocab.txt", TINY_VOCAB)
    config = tmp_path / "config.json"
    tiny_config().write_json_file(config)
    argv = [
        "kbi-finetune",
        f"--vocab_file={vocab}",
        f"--bert_config_file={config}",
        f"--output_dir={tmp_path / 'out'}",
        "--max_seq_length=12",
        "--train_batch_size=4",
        "--eval_batch_size=4",
        "--learning_rate=1e-3",
        "--num_train_epochs=1",
        *flags,
    ]
    return finetune.run(argv)


def _error(capsys, tmp_path, *flags):
    """The one line kbi-finetune ends with, after checking its exit code."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        _run(tmp_path, *flags)
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kbi-finetune: error: "), lines
    return lines[0]


def _test_results(path):
    with open(path, encoding="utf-8") as handle:
        return list(csv.reader(handle, delimiter="\t"))


def test_three_class_csv_trains_evaluates_and_predicts_with_named_columns(tmp_path):
    train = _write_csv(tmp_path / "train.csv", _rows(12))
    dev = _write_csv(tmp_path / "dev.csv", _rows(6, seed=1))
    # A test file without labels, and a quoted text holding a comma.
    test = tmp_path / "test.csv"
    test.write_text('review\n"word0, word1 word2"\nword30 word31\n', encoding="utf-8")
    result = _run(
        tmp_path,
        "--task_name=text_classification",
        f"--train_file={train}",
        f"--validation_file={dev}",
        f"--test_file={test}",
        "--text_column=review",
        "--do_train",
        "--do_eval",
        "--do_predict",
    )
    out = tmp_path / "out"
    assert result["train_steps"] == 3
    results = json.loads((out / "eval_results.json").read_text())
    assert results["eval_examples"] == 6 and 0.0 <= results["accuracy"] <= 1.0
    assert "eval_examples = 6" in (out / "eval_results.txt").read_text().splitlines()
    # Label names: the training file's, sorted, saved beside the model.
    names = sorted(LABELS)
    assert json.loads((out / "labels.json").read_text()) == names
    header, *rows = _test_results(out / "test_results.tsv")
    assert header == [*names, "prediction"]
    assert len(rows) == 2
    for row in rows:
        probabilities = np.array(row[:3], float)
        np.testing.assert_allclose(probabilities.sum(), 1.0, atol=1e-5)
        assert row[3] == names[int(probabilities.argmax())]

    # Its model.keras alone is evaluated again into a fresh directory: the
    # model knows its task, vocabulary and labels.
    again = tmp_path / "again"
    finetune.run([
        "kbi-finetune",
        "--task_name=text_classification",
        f"--validation_file={dev}",
        "--text_column=review",
        f"--init_checkpoint={out / 'model.keras'}",
        f"--output_dir={again}",
        "--do_eval",
    ])
    assert json.loads((again / "eval_results.json").read_text()) == results


def test_jsonl_pairs_and_a_regression_run_end_to_end(tmp_path):
    rows = [
        {"premise": r["review"], "hypothesis": "word1", "gold": i % 2, "score": i / 4}
        for i, r in enumerate(_rows(8))
    ]
    train = _write_jsonl(tmp_path / "train.jsonl", rows)
    dev = _write_jsonl(tmp_path / "dev.json", rows[:4])
    pair = ["--text_column=premise", "--text_pair_column=hypothesis"]
    _run(
        tmp_path,
        "--task_name=text_classification",
        f"--train_file={train}",
        f"--validation_file={dev}",
        f"--test_file={dev}",
        "--label_column=gold",
        *pair,
        "--do_train",
        "--do_eval",
        "--do_predict",
    )
    out = tmp_path / "out"
    # JSON numbers are labels by their text, in numeric order.
    assert json.loads((out / "labels.json").read_text()) == ["0", "1"]
    header, *predicted = _test_results(out / "test_results.tsv")
    assert header == ["0", "1", "prediction"] and len(predicted) == 4
    assert {row[2] for row in predicted} <= {"0", "1"}

    regression_dir = tmp_path / "regression"
    regression_dir.mkdir()
    result = _run(
        regression_dir,
        "--task_name=text_regression",
        f"--train_file={train}",
        f"--validation_file={dev}",
        f"--test_file={dev}",
        "--label_column=score",
        *pair,
        "--do_train",
        "--do_eval",
        "--do_predict",
    )
    metrics = set(result["eval_results"])
    assert metrics == {"mse", "pearson", "spearman", "eval_examples"}
    header, *scores = _test_results(regression_dir / "out" / "test_results.tsv")
    assert header == ["prediction"] and len(scores) == 4
    assert all(np.isfinite(float(row[0])) for row in scores)
    assert not (regression_dir / "out" / "labels.json").exists()


def test_each_mistake_is_one_line_naming_the_input(tmp_path, capsys):
    train = _write_csv(tmp_path / "train.csv", _rows(6))
    own = ["--task_name=text_classification", "--do_train", "--do_eval"]

    def own_files(train_file, validation_file=train, *more):
        return _error(
            capsys,
            tmp_path,
            *own,
            f"--train_file={train_file}",
            f"--validation_file={validation_file}",
            *more,
        )

    line = own_files(train, train, "--text_column=text")
    assert "train.csv: no column 'text'" in line and "['review', 'label']" in line

    odd = tmp_path / "train.xlsx"
    odd.write_text("review,label\n")
    line = own_files(odd)
    assert "--train_file=" in line and "train.xlsx: unknown file extension" in line
    assert ".tsv, .csv, .jsonl, .json" in line

    dev = _write_csv(tmp_path / "dev.csv", [{"review": "word1", "label": "opera"}])
    line = own_files(train, dev, "--text_column=review")
    known = "['cooking', 'music', 'sports']"
    assert f"dev.csv:2: label 'opera' is not one of {known}" in line

    test = _write_csv(tmp_path / "test.csv", [{"review": "word1", "label": "opera"}])
    line = _error(
        capsys,
        tmp_path,
        "--task_name=text_classification",
        "--do_train",
        "--do_predict",
        f"--train_file={train}",
        f"--test_file={test}",
        "--text_column=review",
    )
    assert f"test.csv:2: label 'opera' is not one of {known}" in line

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "empty.jsonl: the file is empty" in own_files(empty)
    header_only = _write_csv(tmp_path / "header_only.csv", [])
    line = own_files(header_only, train, "--text_column=review")
    assert "header_only.csv: no examples" in line

    line = _error(
        capsys,
        tmp_path,
        "--task_name=sst2",
        f"--data_dir={tmp_path}",
        "--do_train",
        "--text_column=review",
    )
    assert "--text_column does not apply to --task_name=sst2" in line
    assert "--task_name=text_classification" in line

    line = _error(capsys, tmp_path, *own, f"--validation_file={train}")
    assert "--do_train for --task_name=text_classification needs --train_file" in line

    line = own_files(tmp_path / "missing.csv")
    assert "--train_file=" in line and "missing.csv does not exist" in line
    # Nothing that looks like a finished model was left behind.
    assert not (tmp_path / "out" / "model.keras").exists()


def _write_conll(path, count, seed=0):
    """CoNLL sentences of tiny-vocabulary words: word0-word9 are people."""
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(count):
        words = [f"word{i}" for i in rng.integers(0, 40, 5)]
        tags = ["B-PER" if int(w[4:]) < 10 else "O" for w in words]
        sentences.append("".join(f"{w} {t}\n" for w, t in zip(words, tags)))
    path.write_text("\n".join(sentences), encoding="utf-8")
    return str(path)


def test_own_conll_files_train_evaluate_and_predict_without_a_data_dir(tmp_path):
    train = _write_conll(tmp_path / "train.conll", 12)
    dev = _write_conll(tmp_path / "dev.conll", 4, seed=1)
    test = _write_conll(tmp_path / "test.conll", 3, seed=2)
    result = _run(
        tmp_path,
        "--task_name=ner",
        f"--train_file={train}",
        f"--validation_file={dev}",
        f"--test_file={test}",
        "--do_train",
        "--do_eval",
        "--do_predict",
    )
    assert {"precision", "recall", "f1"} <= set(result["eval_results"])
    out = tmp_path / "out"
    assert json.loads((out / "labels.json").read_text()) == ["O", "B-PER"]
    predicted = json.loads((out / "test_predictions.json").read_text())
    first_words = [line.split()[0] for line in open(test).read().split("\n\n")[0].splitlines()]
    assert len(predicted) == 3 and predicted[0]["words"] == first_words
    assert all(len(s["tags"]) == len(s["words"]) for s in predicted)


def test_ner_data_flags_are_one_layout_or_the_other(tmp_path, capsys):
    train = _write_conll(tmp_path / "train.conll", 2)
    line = _error(
        capsys, tmp_path, "--task_name=ner", "--do_train", f"--data_dir={tmp_path}",
        f"--train_file={train}",
    )
    assert "--data_dir and --train_file both name the data" in line
    line = _error(capsys, tmp_path, "--task_name=ner", "--do_train", "--do_eval",
                  f"--train_file={train}")
    assert "--do_eval for --task_name=ner needs --validation_file" in line
    assert "or --data_dir with train.txt, valid.txt, test.txt" in line
    line = _error(capsys, tmp_path, "--task_name=conll2003", "--do_train",
                  f"--train_file={tmp_path / 'missing.conll'}")
    assert "--train_file=" in line and "missing.conll does not exist" in line
    line = _error(capsys, tmp_path, "--task_name=ner", "--do_train",
                  f"--train_file={train}", "--text_column=review")
    assert "--text_column does not apply to --task_name=ner" in line
