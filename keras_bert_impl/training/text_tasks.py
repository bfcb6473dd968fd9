"""Sentence (pair) classification and regression tasks of `kbi-finetune`.

One `TextTask` says where a task's files keep their texts and labels. A GLUE
task is a preset (`GLUE_TASKS`: TSV files under `--data_dir`, fixed columns);
`text_classification` / `text_regression` take the files and columns from
the flags, as transformers' `run_glue.py` does for a user's own data. Both
go through the one reader, `keras_bert_impl.data.tasks.read_text_examples`.
"""

import csv
import dataclasses
import io
import os

import numpy as np
import tensorflow as tf

from keras_bert_impl.data.table_files import FORMATS, file_format


@dataclasses.dataclass(frozen=True)
class TextTask:
    """Where a task's files keep their texts and labels.

    Attributes:
        text_columns: one or two text columns (names, or indices without a
            header).
        label_column: the label column.
        metric: the `evaluation.glue_metrics` family.
        header: whether the first line names the columns.
        regression: float labels, one output.
        dev_file: a GLUE task's dev file name under `--data_dir`.
        test_text_columns: the test file's text columns, when they differ.
        test_labels: a test file that has the label column is checked against
            the training labels (GLUE's test files have none).
    """

    text_columns: tuple
    label_column: object
    metric: str = "accuracy"
    header: bool = True
    regression: bool = False
    dev_file: str = "dev.tsv"
    test_text_columns: tuple | None = None
    test_labels: bool = False


GLUE_TASKS = {
    "cola": TextTask((3,), 1, "mcc", header=False, test_text_columns=("sentence",)),
    "sst2": TextTask(("sentence",), "label"),
    "mrpc": TextTask(("#1 String", "#2 String"), "Quality", "accuracy_f1"),
    "qqp": TextTask(("question1", "question2"), "is_duplicate", "accuracy_f1"),
    "stsb": TextTask(
        ("sentence1", "sentence2"), "score", "pearson_spearman", regression=True
    ),
    "mnli": TextTask(
        ("sentence1", "sentence2"), "gold_label", dev_file="dev_matched.tsv"
    ),
    "qnli": TextTask(("question", "sentence"), "label"),
    "rte": TextTask(("sentence1", "sentence2"), "label"),
    "wnli": TextTask(("sentence1", "sentence2"), "label"),
}
OWN_DATA_TASKS = ("text_classification", "text_regression")
DEFAULT_TEXT_COLUMN = "sentence"
DEFAULT_LABEL_COLUMN = "label"
# The flags that say where a user's own files and columns are.
OWN_DATA_FLAGS = (
    "train_file",
    "validation_file",
    "test_file",
    "text_column",
    "text_pair_column",
    "label_column",
)
_SPLIT_FLAGS = {"train": "train_file", "dev": "validation_file", "test": "test_file"}
_ACTION_OF_SPLIT = {"train": "do_train", "dev": "do_eval", "test": "do_predict"}


def text_task(settings):
    """The `TextTask` of a GLUE preset or of the user's own data flags."""
    if settings.task_name in GLUE_TASKS:
        return GLUE_TASKS[settings.task_name]
    pair = (settings.text_pair_column,) if settings.text_pair_column else ()
    regression = settings.task_name == "text_regression"
    return TextTask(
        (settings.text_column or DEFAULT_TEXT_COLUMN,) + pair,
        settings.label_column or DEFAULT_LABEL_COLUMN,
        "regression" if regression else "accuracy",
        regression=regression,
        test_labels=True,
    )


def check_own_data_files(settings):
    """Each split a run needs has a file of a known format that exists."""
    for split, flag in _SPLIT_FLAGS.items():
        path = getattr(settings, flag)
        if getattr(settings, _ACTION_OF_SPLIT[split]) and not path:
            raise ValueError(
                f"--{_ACTION_OF_SPLIT[split]} for --task_name={settings.task_name} "
                f"needs --{flag} (a {', '.join(FORMATS)} file)."
            )
        if path:
            try:
                file_format(path)
            except ValueError as error:
                raise ValueError(f"--{flag}={error}") from None
            if not tf.io.gfile.exists(path):
                raise ValueError(f"--{flag}={path} does not exist.")


def text_file(settings, task, split):
    """The file of `split` (train, dev or test) and its format (None: by
    extension)."""
    if settings.task_name in OWN_DATA_TASKS:
        return getattr(settings, _SPLIT_FLAGS[split]), None
    name = {"train": "train.tsv", "dev": task.dev_file, "test": "test.tsv"}[split]
    return data_dir_file(settings, name), "tsv"


def data_dir_file(settings, name):
    """`name` under `--data_dir`, which must have it."""
    path = os.path.join(settings.data_dir, name)
    if not tf.io.gfile.exists(path):
        raise ValueError(f"{path} not found (--data_dir={settings.data_dir}).")
    return path


def read_split(settings, task, split, label_vocabulary):
    """`TextExamples` of one split, labels indexed by `label_vocabulary`."""
    from keras_bert_impl.data import tasks

    path, format_name = text_file(settings, task, split)
    columns, label_column = task.text_columns, task.label_column
    if split == "test":
        columns = task.test_text_columns or columns
        label_column = label_column if task.test_labels else None
    return tasks.read_text_examples(
        path,
        text_columns=columns,
        label_column=label_column,
        header=task.header or split == "test",
        regression=task.regression,
        label_vocabulary=label_vocabulary,
        file_format=format_name,
        labels_optional=split == "test",
    )


def predictions_tsv(outputs, label_vocabulary, regression):
    """`test_results.tsv`: a header, then per example one probability column
    per class (named by its label) and the predicted label under
    `prediction`; a regression's score under `prediction`."""
    if regression:
        header = ["prediction"]
        rows = [[f"{value:.6f}"] for value in outputs[:, 0]]
    else:
        shifted = outputs - outputs.max(-1, keepdims=True)
        probabilities = np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)
        header = [*label_vocabulary, "prediction"]
        rows = [
            [f"{p:.6f}" for p in row] + [label_vocabulary[int(row.argmax())]]
            for row in probabilities
        ]
    text = io.StringIO()
    writer = csv.writer(text, dialect="excel-tab", lineterminator="\n")
    writer.writerows([header, *rows])
    return text.getvalue()
