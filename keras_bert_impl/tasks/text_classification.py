"""Sentence (pair) classification and regression: `TextClassificationTask`.

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

from keras_bert_impl.data.table_files import FORMATS, file_format
from keras_bert_impl.tasks.base import FinetuningTask, data_dir_file
from keras_bert_impl.tasks.base import SPLIT_FLAGS, check_split_files
from keras_bert_impl.tasks.base import refuse_unread_flags
from keras_bert_impl.training import evaluation


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
OWN_DATA_FLAGS = (*SPLIT_FLAGS.values(), "text_column", "text_pair_column", "label_column")


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


def text_file(settings, task, split):
    """The file of `split` (train, dev or test) and its format (None: by
    extension)."""
    if settings.task_name in OWN_DATA_TASKS:
        return getattr(settings, SPLIT_FLAGS[split]), None
    name = {"train": "train.tsv", "dev": task.dev_file, "test": "test.tsv"}[split]
    return data_dir_file(settings, name), "tsv"


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


class TextClassificationTask(FinetuningTask):
    """Sentence (pair) classification and regression: a GLUE preset or the
    user's own TSV/CSV/JSON lines files. Writes `test_results.tsv`."""

    task_names = tuple(GLUE_TASKS) + OWN_DATA_TASKS
    export_names = ("classifier", "regression")
    model_class_name = "BertClassifier"
    varies_batch_shapes = True

    def __init__(self, settings, tokenizer, label_vocabulary=None):
        super().__init__(settings, tokenizer, label_vocabulary)
        self.text_task = text_task(settings)
        self.regression = self.text_task.regression

    @classmethod
    def input_flags(cls, task_name):
        return ("data_dir",) if task_name in GLUE_TASKS else OWN_DATA_FLAGS

    @classmethod
    def check_inputs(cls, settings):
        if settings.task_name in GLUE_TASKS:
            refuse_unread_flags(
                settings,
                cls.input_flags(settings.task_name),
                " (a GLUE task's files and columns are fixed; "
                "--task_name=text_classification reads your own)",
            )
            super().check_inputs(settings)
            return
        refuse_unread_flags(settings, OWN_DATA_FLAGS)
        check_split_files(settings, f"a {', '.join(FORMATS)} file", file_format)

    @property
    def needs_labels(self):
        return not self.regression

    def read(self, split):
        examples = read_split(
            self.settings, self.text_task, split, self.label_vocabulary
        )
        if self.label_vocabulary is None:
            self.label_vocabulary = examples.label_vocabulary
        return examples

    def dataset(self, features, batch_size, training):
        from keras_bert_impl.data import tasks
        from keras_bert_impl.text import Packer
        from keras_bert_impl.text.packer import parse_bucket_lengths

        s = self.settings
        bucket_lengths = parse_bucket_lengths(s.bucket_lengths)
        packer = Packer.from_tokenizer(
            self.tokenizer, s.max_seq_length, bucket_lengths=bucket_lengths
        )
        # fit(texts)'s policy: with length buckets, training batches group
        # texts of similar length, so most pad to a small bucket.
        return tasks.text_classification_dataset(
            features,
            self.tokenizer,
            packer,
            batch_size,
            group_by_length=training and bucket_lengths is not None,
            **self.batching(training),
        )

    def build_model(self, dtype):
        from keras_bert_impl import models, preprocessing

        preprocessor = preprocessing.BertTextClassifierPreprocessor(
            tokenizer=self.tokenizer, sequence_length=self.settings.max_seq_length
        )
        if self.regression:
            head = {"num_classes": 1}
        else:
            head = {
                "num_classes": len(self.label_vocabulary),
                "label_names": self.label_vocabulary,
            }
        return self.model_with_head(models.BertClassifier, dtype, preprocessor, **head)

    def evaluate(self, outputs, examples, features):
        predictions = outputs[:, 0] if self.regression else outputs.argmax(-1)
        return evaluation.glue_metrics(
            self.text_task.metric, features.labels, predictions
        )

    def write_predictions(self, outputs, examples, features, output_dir):
        from keras_bert_impl.training.history import write_atomically

        path = os.path.join(output_dir, "test_results.tsv")
        write_atomically(
            path, predictions_tsv(outputs, self.label_vocabulary, self.regression)
        )
        return path

    @classmethod
    def model_from_directory(cls, export_name, init_checkpoint, labels, **kwargs):
        from keras_bert_impl.models import BertClassifier

        if export_name == "regression":
            kwargs["num_classes"] = 1
        elif labels:
            kwargs["label_names"] = labels
        else:
            raise ValueError(
                "--labels is required to export a classifier head from a checkpoint "
                "directory"
            )
        return BertClassifier.from_preset(init_checkpoint, **kwargs)

    @classmethod
    def export(cls, model, export_dir, export_name, options, **common):
        from keras_bert_impl.export import exporter

        return exporter.export_classifier(
            model, export_dir, labels=options.labels, **common
        )
