"""Knowledge distillation: a smaller student learns from a fine-tuned teacher.

The loss is Hinton et al.'s: `alpha` × T² × KL(teacher ‖ student) on logits
divided by the temperature T, plus (1 − `alpha`) × cross-entropy on the hard
labels (DistilBERT, TinyBERT's prediction layer). Training runs on plain
`model.fit`: the targets are the hard label and the teacher's logits packed
in one tensor, `[..., 1 + num_classes]`, so the student's own text pipeline
(tokenization in `tf.data`, length buckets, shuffling) carries them along.

The student starts as a shallower copy of its teacher (`compression.student`).
The teacher runs once over the training data; its logits can be cached in a
file, so a second student (or a rerun) does not run the teacher again
(`compression.teacher`). It can
also label perturbed copies of the training texts (`augment_copies`), text
only a teacher can label, which a student trained on the labels alone never
sees.

Classification (`BertClassifier`) keeps the texts: the student's
preprocessor tokenizes them every epoch, and the teacher's logits are one row
per text. Token classification (`BertTokenClassifier`) tokenizes once into
fixed-length token dicts, because the teacher's logits are one row per token
and must line up with the student's tokens.
"""

import keras
import numpy as np
from keras import ops

from keras_bert_impl.constants import IGNORE_LABEL
from keras_bert_impl.data.text_augmentation import perturbed_copies
from keras_bert_impl.models import BertClassifier
from keras_bert_impl.models import text_datasets
from keras_bert_impl.models.token_classifier import LabelledTokenAccuracy
from keras_bert_impl.compression.student import check_task
from keras_bert_impl.compression.teacher import teacher_logits
from keras_bert_impl.training.optimization import create_optimizer

@keras.saving.register_keras_serializable(package="keras_bert_impl")
class DistillationLoss(keras.losses.Loss):
    """Soft (teacher) plus hard (label) loss on packed targets.

    Args:
        temperature: divides both logits before the softmax; the soft term
            is multiplied by its square so its gradients keep their scale.
        alpha: weight of the soft term; `1 - alpha` weighs the hard labels.
            0 trains on the labels alone (the teacher's logits are unused).

    Call args:
        y_true: `[..., 1 + num_classes]`: the class index, then the
            teacher's logits. Positions labelled `IGNORE_LABEL` (token
            classification: padding, [CLS]/[SEP], later word pieces) add
            nothing, and the mean is over the labelled positions.
        y_pred: the student's logits `[..., num_classes]`.
    """

    def __init__(self, temperature=2.0, alpha=0.5, name="distillation_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        check_distillation_settings(temperature, alpha)
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        labels = ops.cast(y_true[..., 0], "int32")
        labelled = ops.cast(ops.not_equal(labels, IGNORE_LABEL), "float32")
        hard = keras.losses.sparse_categorical_crossentropy(
            ops.where(labelled > 0, labels, 0), y_pred, from_logits=True
        )
        loss = (1.0 - self.alpha) * hard
        if self.alpha:
            t = self.temperature
            teacher_log_probs = ops.log_softmax(y_true[..., 1:] / t, axis=-1)
            student_log_probs = ops.log_softmax(y_pred / t, axis=-1)
            kl = ops.sum(
                ops.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs),
                axis=-1,
            )
            loss = loss + self.alpha * t * t * kl
        # Keras averages over every position; rescale so the mean is over the
        # labelled ones, as the task models' own losses do.
        fraction = ops.maximum(ops.mean(labelled), 1e-9)
        return loss * labelled / fraction

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature, "alpha": self.alpha})
        return config


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class HardLabelAccuracy(LabelledTokenAccuracy):
    """Accuracy on the hard labels of packed distillation targets (positions
    labelled `IGNORE_LABEL` do not count)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(y_true[..., 0], y_pred, sample_weight)


def check_distillation_settings(temperature, alpha):
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}.")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}.")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}.")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}.")


def _token_dicts(model, x, y):
    """Words / raw text and tags → fixed-length token dicts and per-token
    labels (numpy), with the model's preprocessor; token dicts pass."""
    if isinstance(x, dict):
        return x, np.asarray(y)
    if model.preprocessor is None:
        raise ValueError(
            f"{type(model).__name__} got text but has no preprocessor; give token "
            "dicts and per-token labels instead."
        )
    x, y, _ = model.prepare_text(x, y, None)
    dataset = text_datasets.batched_text(x, y, batch_size=256).map(model.preprocessor)
    features, labels = [], []
    for batch_x, batch_y in dataset:
        features.append({k: np.asarray(v) for k, v in batch_x.items()})
        labels.append(np.asarray(batch_y))
    keys = features[0]
    return (
        {k: np.concatenate([f[k] for f in features]) for k in keys},
        np.concatenate(labels),
    )


def _targets(labels, logits):
    labels = np.asarray(labels, np.float32)[..., None]
    if logits is None:
        logits = np.zeros(labels.shape[:-1] + (0,), np.float32)
    return np.concatenate([labels, logits], axis=-1)


def _num_examples(x):
    if isinstance(x, dict):
        return len(next(iter(x.values())))
    if isinstance(x, tuple):
        return len(x[0])
    return len(x)


def _with_copies(student, texts, alpha, copies, seed):
    """The training texts followed by their perturbed copies."""
    if not alpha:
        raise ValueError(
            f"augment_copies={copies} adds texts only the teacher can label; "
            "it needs a teacher and alpha > 0."
        )
    if not isinstance(student, BertClassifier) or isinstance(texts, (dict, tuple)):
        raise ValueError(
            f"augment_copies={copies} applies to a classifier trained on single "
            "texts (not text pairs, token dicts or token classification)."
        )
    texts = [t.decode("utf-8") if isinstance(t, bytes) else t for t in texts]
    return texts + perturbed_copies(texts, copies, seed=seed)


def distill(
    student,
    x,
    y,
    *,
    teacher=None,
    temperature=2.0,
    alpha=0.5,
    epochs=1,
    batch_size=32,
    learning_rate=5e-5,
    warmup_fraction=0.1,
    validation_data=None,
    cache_file=None,
    augment_copies=0,
    augment_seed=0,
    verbose="auto",
):
    """Trains `student` on the teacher's logits and the hard labels.

    Args:
        student: the model to train (e.g. `student_from_teacher(...)`, or any
            task model of the teacher's class and number of classes).
        x: texts or `(texts, text_pairs)` (classifier), word lists or raw
            texts (token classifier, tokenized with the student's
            preprocessor), or token dicts.
        y: labels: class indices or names (classifier), tag indices or names
            per word (token classifier on words), or per-token labels with
            `IGNORE_LABEL` (token dicts).
        teacher: the fine-tuned model; None with `alpha=0` trains the same
            student on the labels alone (the baseline distillation must beat).
        temperature, alpha: see `DistillationLoss`.
        epochs, batch_size: passed to `fit`.
        learning_rate: peak rate of AdamW with linear warm-up and decay.
        warmup_fraction: share of the steps spent warming up.
        validation_data: optional `(x, y)` with plain labels, evaluated with
            the student's own loss and accuracy after training.
        cache_file: optional `.npz` file for the teacher's logits.
        augment_copies: perturbed copies of each training text
            (`data.text_augmentation.perturbed_copies`: masked words, n-gram
            cuts) added to the training set, labelled by the teacher: its
            logits for the soft term, its top class for the hard one. Single
            texts of a classifier only; needs the teacher (`alpha > 0`).
        augment_seed: seed of the copies.
        verbose: Keras' fit verbosity.

    Returns:
        `(history, validation)`: Keras' `History` of training, and the
        evaluation of `validation_data` (a dict, or None). The student comes
        back compiled with its task's default loss and metrics, ready to save.
    """
    check_task(student, "student")
    check_distillation_settings(temperature, alpha)
    if teacher is None and alpha:
        raise ValueError(
            f"alpha={alpha} weighs the teacher's logits but no teacher was given; "
            "pass teacher= or alpha=0."
        )
    if teacher is not None:
        check_task(teacher, "teacher")
        if type(teacher) is not type(student) or (
            teacher.num_classes != student.num_classes
        ):
            raise ValueError(
                f"Teacher {type(teacher).__name__} with {teacher.num_classes} classes "
                f"and student {type(student).__name__} with {student.num_classes} "
                "classes must be the same task with the same classes."
            )
    if isinstance(student, BertClassifier) and not isinstance(x, dict):
        x, y, _ = student.prepare_text(x, y, None)
        inputs, labels = x, np.asarray(y)
    else:
        inputs, labels = _token_dicts(student, x, y)
    if augment_copies:
        inputs = _with_copies(student, inputs, alpha, augment_copies, augment_seed)
    logits = None
    if alpha:
        logits = teacher_logits(
            teacher, inputs, batch_size=batch_size, cache_file=cache_file
        )
    if _num_examples(inputs) > len(labels):
        # The copies' hard labels are the teacher's answers.
        labels = np.concatenate([labels, np.argmax(logits[len(labels) :], -1)])
    steps = epochs * -(-_num_examples(inputs) // batch_size)
    student.compile(
        optimizer=create_optimizer(learning_rate, steps, int(warmup_fraction * steps)),
        loss=DistillationLoss(temperature, alpha),
        metrics=[HardLabelAccuracy()],
    )
    history = student.fit(
        inputs,
        _targets(labels, logits),
        batch_size=batch_size,
        epochs=epochs,
        verbose=verbose,
    )
    student.compile()
    validation = None
    if validation_data is not None:
        vx, vy = validation_data
        validation = student.evaluate(
            vx, vy, batch_size=batch_size, return_dict=True, verbose=0
        )
    return history, validation
