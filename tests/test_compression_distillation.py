"""Knowledge distillation: the loss against a numpy reference, students cut from
a teacher's blocks, the cached teacher logits, training that moves a student
toward its teacher, token classification, `kbi-distill`, and its bad inputs."""

import json
import os

import keras
import numpy as np
import pytest

from keras_bert_impl import BertClassifier, BertTokenClassifier
from keras_bert_impl.compression import (
    DistillationLoss,
    distill,
    student_from_teacher,
    teacher_logits,
)
from keras_bert_impl.constants import IGNORE_LABEL
from keras_bert_impl.training.run_outputs import save_model
from keras_bert_impl.cli import distill as distill_tool
from model_helpers import tiny_config, tiny_inputs, tiny_text_model

TEXTS = ["good film", "bad film bad", "w1 w2 good", "w3 bad w4", "good good", "bad"] * 4
LABELS = [1, 0, 1, 0, 1, 0] * 4


def _classifier(num_layers=3, seed=0):
    keras.utils.set_random_seed(seed)
    return tiny_text_model(num_layers=num_layers, sequence_length=12)


@pytest.fixture(scope="module")
def teacher():
    return _classifier()


def _reference_loss(labels, teacher, student, temperature, alpha):
    def log_softmax(z):
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    hard = -np.take_along_axis(log_softmax(student), labels[:, None], -1)[:, 0]
    t_log = log_softmax(teacher / temperature)
    kl = (np.exp(t_log) * (t_log - log_softmax(student / temperature))).sum(-1)
    return np.mean(alpha * temperature**2 * kl + (1 - alpha) * hard)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_loss_is_hinton_kl_plus_hard_cross_entropy(alpha):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 8)
    teacher, student = rng.normal(size=(8, 3)) * 3, rng.normal(size=(8, 3)) * 3
    y_true = np.concatenate([labels[:, None], teacher], -1).astype("float32")
    got = float(DistillationLoss(2.5, alpha)(y_true, student.astype("float32")))
    assert got == pytest.approx(
        _reference_loss(labels, teacher, student, 2.5, alpha), rel=1e-5
    )


def test_loss_averages_over_labelled_positions_only():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, (2, 5))
    labels[:, 3:] = IGNORE_LABEL
    teacher, student = rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 4))
    y_true = np.concatenate([labels[..., None], teacher], -1).astype("float32")
    got = float(DistillationLoss(2.0, 0.5)(y_true, student.astype("float32")))
    kept = labels != IGNORE_LABEL
    expected = _reference_loss(labels[kept], teacher[kept], student[kept], 2.0, 0.5)
    assert got == pytest.approx(expected, rel=1e-5)


def test_student_runs_the_teachers_chosen_blocks(teacher):
    student = student_from_teacher(teacher, [2, 0])
    assert student.config.num_layers == 2 and student.config.hidden_size == 32
    assert student.preprocessor is teacher.preprocessor or (
        student.preprocessor.get_config() == teacher.preprocessor.get_config()
    )
    inputs = tiny_inputs()
    backbone = teacher.backbone
    x = backbone.embeddings(inputs["token_ids"], inputs["segment_ids"])
    for index in (2, 0):
        x = backbone.transformer_layers[index](x, inputs["padding_mask"])
    expected = teacher.head(backbone.pooled_dense(x[:, 0, :]))
    np.testing.assert_allclose(student(inputs), expected, atol=1e-5)
    assert student.label_names == teacher.label_names


def test_teacher_logits_are_cached_for_the_same_inputs(teacher, tmp_path, monkeypatch):
    cache = str(tmp_path / "logits.npz")
    first = teacher_logits(teacher, TEXTS, cache_file=cache)
    np.testing.assert_allclose(first, teacher.predict(TEXTS, verbose=0), atol=1e-6)

    def refuse(*args, **kwargs):
        raise AssertionError("the teacher ran again")

    monkeypatch.setattr(teacher, "predict", refuse)
    np.testing.assert_array_equal(
        teacher_logits(teacher, TEXTS, cache_file=cache), first
    )
    with pytest.raises(AssertionError, match="ran again"):
        teacher_logits(teacher, TEXTS[:-1] + ["other text"], cache_file=cache)


def test_teacher_logits_pad_each_batch_to_its_length_bucket(monkeypatch):
    keras.utils.set_random_seed(0)
    teacher = tiny_text_model(num_layers=2, sequence_length=32)
    padded_to = []
    predict = teacher.predict

    def recording_predict(x, **kwargs):
        padded_to.extend(batch["token_ids"].shape[1] for batch in x)
        return predict(x, **kwargs)

    monkeypatch.setattr(teacher, "predict", recording_predict)
    texts = [" ".join(["good"] * n) for n in (20, 1, 9, 3, 14, 2, 6, 1, 11)] * 3
    logits = teacher_logits(teacher, texts, batch_size=9)
    # Shortest first: the short batches pad to a small bucket, not all to 32.
    assert sorted(padded_to) == [16, 16, 32]
    np.testing.assert_allclose(logits, predict(texts, verbose=0), atol=1e-5)
    pairs = (texts, texts[::-1])
    np.testing.assert_allclose(
        teacher_logits(teacher, pairs, batch_size=9),
        predict(pairs, verbose=0),
        atol=1e-5,
    )


def _kl_to_teacher(teacher, student):
    t = keras.ops.softmax(teacher.predict(TEXTS, verbose=0))
    s = keras.ops.log_softmax(student.predict(TEXTS, verbose=0))
    return float(np.mean(np.sum(t * (np.log(t) - s), -1)))


def test_distillation_moves_the_student_toward_the_teacher(teacher):
    student = _classifier(num_layers=1, seed=3)
    before = _kl_to_teacher(teacher, student)
    history, validation = distill(
        student,
        TEXTS,
        ["positive" if y else "negative" for y in LABELS],
        teacher=teacher,
        alpha=1.0,
        temperature=1.0,
        epochs=4,
        batch_size=8,
        learning_rate=1e-3,
        verbose=0,
    )
    assert _kl_to_teacher(teacher, student) < 0.5 * before
    assert history.history["loss"][-1] < history.history["loss"][0]
    # Back on its task's own loss and metrics, ready to save and evaluate.
    assert validation is None
    assert isinstance(student.loss, keras.losses.SparseCategoricalCrossentropy)


def test_perturbed_copies_train_on_the_teachers_answers(teacher, monkeypatch):
    student = _classifier(num_layers=1, seed=3)
    seen = {}
    fit = student.fit

    def recording_fit(x, y, **kwargs):
        seen["x"], seen["y"] = x, y
        return fit(x, y, **kwargs)

    monkeypatch.setattr(student, "fit", recording_fit)
    distill(
        student,
        TEXTS,
        LABELS,
        teacher=teacher,
        augment_copies=2,
        batch_size=8,
        verbose=0,
    )
    x, y = seen["x"], seen["y"]
    assert len(x) == len(y) == 3 * len(TEXTS) and x[: len(TEXTS)] == TEXTS
    np.testing.assert_array_equal(y[: len(TEXTS), 0], LABELS)
    np.testing.assert_allclose(y[:, 1:], teacher.predict(x, verbose=0), atol=1e-5)
    np.testing.assert_array_equal(
        y[len(TEXTS) :, 0], np.argmax(y[len(TEXTS) :, 1:], -1)
    )


@pytest.mark.parametrize(
    "x, alpha, message",
    [
        (TEXTS, 0.0, "it needs a teacher and alpha > 0"),
        ((TEXTS, TEXTS), 0.5, "not text pairs"),
    ],
)
def test_perturbed_copies_need_a_teacher_and_single_texts(teacher, x, alpha, message):
    with pytest.raises(ValueError, match=message):
        distill(
            _classifier(1),
            x,
            LABELS,
            teacher=teacher if alpha else None,
            alpha=alpha,
            augment_copies=1,
        )


def test_token_classifier_distils_on_words():
    tags = ["O", "B-X", "I-X"]

    teacher = tiny_text_model(
        BertTokenClassifier, tags, sequence_length=12, initializer_range=0.02
    )
    student = student_from_teacher(teacher, [1])
    words = [["good", "film"], ["bad", "w1", "w2"], ["w3"]] * 4
    labels = [["B-X", "I-X"], ["O", "B-X", "O"], ["O"]] * 4
    before = [np.array(w) for w in student.get_weights()]
    history, _ = distill(
        student, words, labels, teacher=teacher, epochs=1, batch_size=6, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, student.get_weights()))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": 1.5}, "alpha must be in"),
        ({"temperature": 0}, "temperature must be > 0"),
        ({"teacher": None, "alpha": 0.5}, "no teacher was given"),
    ],
)
def test_bad_settings_are_named(teacher, kwargs, message):
    settings = {"teacher": teacher, **kwargs}
    with pytest.raises(ValueError, match=message):
        distill(_classifier(1), TEXTS, LABELS, **settings)


def test_bad_students_are_named(teacher):
    with pytest.raises(ValueError, match=r"indices in \[0, 2\]"):
        student_from_teacher(teacher, [0, 3])
    with pytest.raises(ValueError, match="same task with the same classes"):
        distill(
            BertClassifier(tiny_config(), num_classes=3), TEXTS, LABELS, teacher=teacher
        )
    with pytest.raises(ValueError, match="BertClassifier or a BertTokenClassifier"):
        student_from_teacher(teacher.backbone, [0])


def test_kbi_distill_writes_a_student_and_both_evaluations(teacher, tmp_path):
    teacher.compile()
    save_model(teacher, str(tmp_path / "teacher.keras"))
    data = tmp_path / "train.tsv"
    data.write_text(
        "sentence\tlabel\n"
        + "".join(
            f"{t}\t{'positive' if y else 'negative'}\n" for t, y in zip(TEXTS, LABELS)
        )
    )
    out = tmp_path / "student"
    args = [
        "kbi-distill",
        f"--teacher={tmp_path / 'teacher.keras'}",
        f"--train_file={data}",
        f"--eval_file={data}",
        "--student_layers=0,2",
        "--train_batch_size=12",
        "--augment_copies=1",
        f"--output_dir={out}",
    ]
    results = distill_tool.run(args)
    assert results["student_layers"] == 2 and results["train_examples"] == len(TEXTS)
    assert results["augment_copies"] == 1
    with np.load(out / "teacher_logits.npz") as cached:
        assert cached["logits"].shape == (2 * len(TEXTS), 2)
    assert set(results["student"]) >= {"accuracy"} and "teacher" in results
    assert json.loads((out / "eval_results.json").read_text())["alpha"] == 0.5
    assert os.path.exists(out / "teacher_logits.npz")
    student = keras.saving.load_model(out / "model.keras")
    assert student.config.num_layers == 2
    assert student.predict_text(["good film"]).labels[0] in ("negative", "positive")


def test_kbi_distill_bucket_lengths_reach_the_students_preprocessor(teacher):
    preprocessor = distill_tool._preprocessor(teacher, "auto")
    assert preprocessor.bucket_lengths == "auto"
    assert (
        preprocessor.tokenizer.vocabulary == teacher.preprocessor.tokenizer.vocabulary
    )
    assert distill_tool._preprocessor(teacher, None) is teacher.preprocessor


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--teacher=/no/such.keras", "is not a file"),
        ("--train_file=/no/such.tsv", "does not exist"),
        ("--student_layers=0,x", "comma-separated block indices"),
        ("--num_train_epochs=0.5", "whole number"),
        ("--augment_copies=-1", "must be 0 (none) or more"),
        ("--alpha=0", "needs a teacher and alpha > 0"),
    ],
)
def test_kbi_distill_names_bad_flags(teacher, tmp_path, capsys, flag, message):
    teacher.compile()
    save_model(teacher, str(tmp_path / "teacher.keras"))
    data = tmp_path / "train.tsv"
    data.write_text("sentence\tlabel\ngood\tpositive\nbad\tnegative\n")
    args = {
        "teacher": f"--teacher={tmp_path / 'teacher.keras'}",
        "train_file": f"--train_file={data}",
        "output_dir": f"--output_dir={tmp_path / 'out'}",
    }
    args[flag.split("=")[0][2:]] = flag
    if flag == "--alpha=0":
        args["augment_copies"] = "--augment_copies=1"
    with pytest.raises(SystemExit) as exit_info:
        distill_tool.run(["kbi-distill", *args.values()])
    assert exit_info.value.code == 1
    assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out" / "model.keras")
