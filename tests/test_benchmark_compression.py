"""benchmarks.compression_tradeoff's bookkeeping: the table and its best combination,
students and pruned models reused only when their settings match, bad flags."""

import json

import numpy as np
import pytest

from benchmarks import compression_tradeoff as tool
from benchmarks.precision import PrecisionResult


class _Model:
    def __init__(self, params):
        self.params = params

    def count_params(self):
        return self.params


def _timing(name, batch, speedups):
    return PrecisionResult(name, batch, [1.0] * len(speedups), speedups, 0.0)


def test_table_rows_and_the_best_combination_keeping_97_percent():
    variants = [
        tool.Variant(tool.TEACHER, _Model(22_700_000)),
        tool.Variant(
            "distilled 3-layer student", _Model(17_400_000), True, "kbi-distill a"
        ),
        tool.Variant("3-layer student, labels only", _Model(17_400_000), False),
        tool.Variant("distilled 3-layer student + bfloat16", _Model(17_400_000)),
        tool.Variant("distilled 2-layer student + bfloat16", _Model(15_600_000)),
    ]
    accuracies = {
        tool.TEACHER: 0.93,
        "distilled 3-layer student": 0.915,
        "3-layer student, labels only": 0.90,
        "distilled 3-layer student + bfloat16": 0.914,
        "distilled 2-layer student + bfloat16": 0.85,  # faster, but under 97%
    }
    timings = []
    for batch in (1, 32):
        timings += [
            _timing(tool.TEACHER, batch, [1.0, 1.0]),
            _timing("distilled 3-layer student", batch, [1.9, 2.1]),
            _timing("distilled 3-layer student + bfloat16", batch, [2.8, 3.0]),
            _timing("distilled 2-layer student + bfloat16", batch, [4.0, 4.2]),
        ]
    assert (
        tool.best_combination(variants, timings, accuracies, 32)
        == "distilled 3-layer student + bfloat16"
    )
    serving = {
        tool.TEACHER: (True, 2e-7, "", "2.10"),
        "distilled 3-layer student": (True, 3e-3, "", "2.17"),
    }
    table = tool.report_markdown(
        variants, timings, accuracies, serving, "settings", ["kbi-distill a"], "2.10"
    )
    assert (
        "| 3-layer student, labels only | 17.4 M | 0.9000 | 96.8% | as its distilled"
        in table
    )
    assert (
        "| distilled 3-layer student | 17.4 M | 0.9150 | 98.4% | 2.00x (1.90-2.10)"
        in table
    )
    assert "yes (2e-07)" in table
    assert "yes, TF Serving ≥ 2.17 (0.003)" in table
    assert "**distilled 3-layer student + bfloat16**" in table
    assert "- `kbi-distill a`" in table


class _Flags:
    teacher = "teacher.keras"
    train_file = "train.tsv"
    eval_file = "dev.tsv"
    distill_examples = 100
    temperature = 2.0
    augment_copies = 1
    learning_rate = 5e-5

    def __init__(self, work_dir):
        self.work_dir = str(work_dir)


def test_a_student_is_reused_only_with_the_same_settings(tmp_path, monkeypatch):
    from keras_bert_impl.cli import distill

    calls = []
    monkeypatch.setattr(distill, "run", calls.append)
    out = tmp_path / "student_3_kd"
    out.mkdir()
    (out / "model.keras").write_bytes(b"")
    report = {
        "alpha": 0.5,
        "train_examples": 100,
        "student_layers": 3,
        "temperature": 2.0,
        "augment_copies": 1,
    }
    (out / "eval_results.json").write_text(json.dumps(report))
    path, command = tool.student(_Flags(tmp_path), "0,2,4", 0.5)
    assert path == str(out) and not calls
    assert "--student_layers=0,2,4" in command and "--alpha=0.5" in command
    assert "--augment_copies=1" in command
    for key, other in (("train_examples", 50), ("augment_copies", None)):
        changed = dict(report, **{key: other})
        if other is None:  # a report written before copies existed
            del changed[key]
        (out / "eval_results.json").write_text(json.dumps(changed))
        tool.student(_Flags(tmp_path), "0,2,4", 0.5)
        assert f"--output_dir={out}" in calls[-1]
    assert len(calls) == 2
    # A labels-only twin never gets copies, so an older report still matches.
    twin = tmp_path / "student_3_labels"
    twin.mkdir()
    (twin / "model.keras").write_bytes(b"")
    old = {k: v for k, v in report.items() if k != "augment_copies"}
    (twin / "eval_results.json").write_text(json.dumps(dict(old, alpha=0.0)))
    path, command = tool.student(_Flags(tmp_path), "0,2,4", 0.0)
    assert path == str(twin) and len(calls) == 2
    assert "--augment_copies" not in command


def test_bad_flags_are_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tool.run(
            [
                "compression_tradeoff",
                f"--teacher={tmp_path}/missing.keras",
                f"--train_file={tmp_path}/t.tsv",
                f"--eval_file={tmp_path}/d.tsv",
                f"--work_dir={tmp_path}/w",
            ]
        )
    assert exit_info.value.code == 1
    assert "--teacher=" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.run(
            [
                "compression_tradeoff",
                "--batch_sizes=1,x",
                "--teacher=a",
                "--train_file=b",
                "--eval_file=c",
                "--work_dir=d",
            ]
        )
    assert "--batch_sizes=1,x" in capsys.readouterr().err


def test_servability_tolerance_follows_the_precision():
    from keras_bert_impl.compression import with_precision
    from model_helpers import tiny_text_model

    model = tiny_text_model()
    assert tool.servable_tolerance(model) == 1e-4
    assert tool.servable_tolerance(with_precision(model, "bfloat16")) == 1e-2


def test_distilled_students_are_compared_with_their_twins_sentence_by_sentence():
    assert tool.mcnemar_p_value(10, 2) == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert tool.mcnemar_p_value(0, 0) == 1.0 and tool.mcnemar_p_value(3, 3) == 1.0
    variants = [
        tool.Variant("distilled 2-layer student", None),
        tool.Variant("2-layer student, labels only", None, False),
        tool.Variant("distilled 2-layer student + bfloat16", None),
    ]
    kd = np.array([True] * 10 + [False] * 2 + [True] * 5)
    twin = np.array([False] * 10 + [True] * 2 + [True] * 5)
    hits = {variants[0].name: kd, variants[1].name: twin, variants[2].name: kd}
    (line,) = tool.twin_comparisons(variants, hits)
    assert line.startswith(
        "- distilled 2-layer student vs its labels-only twin: +47.06 pt"
    )
    assert "wrong on 10 sentences, wrong where it is right on 2" in line
    assert "p = 0.039" in line
