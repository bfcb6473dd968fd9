"""What a task provides: the one object `kbi-finetune` and `kbi-export` ask.

A `Task` knows how its model is exported (TF Serving signatures on raw text)
and how its head goes on a bare checkpoint directory. A `FinetuningTask` also
owns its training data (files and formats), its datasets, its model (head and
preprocessor), its metrics and its prediction files — TF Model Garden's
`build_inputs` / `build_model` / `build_metrics` split, one class per task.
"""

import abc
import os

# Every file and column flag some task reads; a task refuses the others.
INPUT_FLAGS = (
    "data_dir",
    "train_file",
    "validation_file",
    "test_file",
    "predict_file",
    "text_column",
    "text_pair_column",
    "label_column",
)


class Task(abc.ABC):
    """Export side of a task.

    Class attributes:
        export_names: the `kbi-export --task` values it writes (a model's
            `serving_task` is one of them).
    """

    export_names = ()

    @classmethod
    @abc.abstractmethod
    def model_from_directory(cls, export_name, init_checkpoint, labels, **kwargs):
        """The task model on a checkpoint directory's encoder (a new head).

        Args:
            export_name: one of `export_names`.
            init_checkpoint: a Hugging Face / Google BERT checkpoint directory.
            labels: `--labels` (class or tag names), or None.
            **kwargs: `from_preset` arguments (`sequence_length`).
        """

    @classmethod
    @abc.abstractmethod
    def export(cls, model, export_dir, export_name, options, **common):
        """Writes `model` as this task's SavedModel; returns the version dir.

        Args:
            options: the `kbi-export` flag values (the task reads its own).
            **common: `export.exporter` arguments every task takes.
        """


class FinetuningTask(Task):
    """A task `kbi-finetune` trains, evaluates and predicts.

    Class attributes:
        task_names: the `--task_name` values it serves.
        model_class_name: the class of its model (a finished run's
            `model.keras` must hold one).
        varies_batch_shapes: whether `--bucket_lengths` applies.

    An instance reads one run's files with the run's tokenizer; label names
    found in the training data are kept in `label_vocabulary`.
    """

    task_names = ()
    model_class_name = None
    varies_batch_shapes = False

    def __init__(self, settings, tokenizer, label_vocabulary=None):
        self.settings = settings
        self.tokenizer = tokenizer
        self.label_vocabulary = label_vocabulary

    # --- settings -----------------------------------------------------------

    @classmethod
    def input_flags(cls, task_name):
        """The file and column flags `task_name` reads."""
        return ("data_dir",)

    @classmethod
    def check_inputs(cls, settings):
        """Each file a run needs is named; flags the task does not read are
        refused (not ignored)."""
        refuse_unread_flags(settings, cls.input_flags(settings.task_name))
        if not settings.data_dir:
            raise ValueError(f"--task_name={settings.task_name} needs --data_dir.")

    @property
    def needs_labels(self):
        """Whether the model's outputs are named by labels read in training."""
        return True

    # --- inputs -------------------------------------------------------------

    @abc.abstractmethod
    def read(self, split):
        """The examples of `split` ("train", "dev" or "test")."""

    def features(self, examples):
        """What the datasets are made from (tokenized windows, ...)."""
        return examples

    @abc.abstractmethod
    def dataset(self, features, batch_size, training):
        """A `tf.data.Dataset` of (inputs, labels) batches."""

    def batching(self, training):
        """The dataset options every task shares: training batches are
        shuffled, endless and full; evaluation keeps every example in order."""
        return dict(
            shuffle=training,
            seed=self.settings.seed,
            repeat=training,
            drop_remainder=training,
        )

    # --- model, metrics, predictions ----------------------------------------

    def model_with_head(self, model_class, dtype, preprocessor, **head):
        """`model_class` (a task model) from the run's checkpoint or config,
        holding `preprocessor`; `head`: the class's head arguments."""
        from keras_bert_impl.training.model_loading import load_model

        s = self.settings
        if dtype:
            head["dtype"] = dtype
        return load_model(
            model_class,
            s.init_checkpoint,
            s.bert_config_file,
            s.config,
            preprocessor=preprocessor,
            **head,
        )

    @abc.abstractmethod
    def build_model(self, dtype):
        """The task model, holding a preprocessor built from this run's
        tokenizer and sequence length and the label names: the saved
        `model.keras` then predicts on raw text and exports without being
        told its vocabulary or labels again."""

    @abc.abstractmethod
    def evaluate(self, outputs, examples, features):
        """The metrics of `outputs` (the model's, over `dataset(features)`)."""

    @abc.abstractmethod
    def write_predictions(self, outputs, examples, features, output_dir):
        """Writes the prediction file(s) of the test split; returns the path."""


# The flag naming each split's own file, and the action that reads the split.
SPLIT_FLAGS = {"train": "train_file", "dev": "validation_file", "test": "test_file"}
ACTION_OF_SPLIT = {"train": "do_train", "dev": "do_eval", "test": "do_predict"}


def check_split_files(settings, valid, check_format=None):
    """Each split a run needs has its file flag, naming a file that exists.

    Args:
        valid: what the task takes instead, for the message (e.g. "a CoNLL
            file").
        check_format: called with a path; raises ValueError for a format the
            task does not read.
    """
    for split, flag in SPLIT_FLAGS.items():
        path = getattr(settings, flag)
        action = ACTION_OF_SPLIT[split]
        if getattr(settings, action) and not path:
            raise ValueError(
                f"--{action} for --task_name={settings.task_name} needs --{flag} "
                f"({valid})."
            )
        if path:
            if check_format is not None:
                try:
                    check_format(path)
                except ValueError as error:
                    raise ValueError(f"--{flag}={error}") from None
            import tensorflow as tf

            if not tf.io.gfile.exists(path):
                raise ValueError(f"--{flag}={path} does not exist.")


def refuse_unread_flags(settings, reads, hint=""):
    """A file or column flag outside `reads` is an error naming what is read."""
    for flag in sorted(INPUT_FLAGS):
        if getattr(settings, flag) and flag not in reads:
            raise ValueError(
                f"--{flag} does not apply to --task_name={settings.task_name}{hint}; "
                f"it reads {', '.join('--' + f for f in reads)}."
            )


def data_dir_file(settings, name):
    """`name` under `--data_dir`, which must have it."""
    import tensorflow as tf

    path = os.path.join(settings.data_dir, name)
    if not tf.io.gfile.exists(path):
        raise ValueError(f"{path} not found (--data_dir={settings.data_dir}).")
    return path
