"""Fine-tuning on sentence (pair) classification/regression (GLUE presets or
a user's own TSV/CSV/JSON lines files), CoNLL NER and SQuAD: the pure
function behind `kbi-finetune` (google-research/bert's `run_classifier.py`
and `run_squad.py`, transformers' `run_glue.py` for own files, plus NER).

Outputs in `output_dir`: `checkpoints/`, `tensorboard/`, `metrics.{json,csv,png}`
(training curves), `model.keras` (the trained model), `labels.json`,
`eval_results.txt` (`key = value` lines) and `eval_results.json`, and for
`do_predict` `test_results.tsv` (a header, one probability column per label,
then `prediction`: the label, or a regression's score),
`test_predictions.json` (NER: each test sentence's words, their tags and its first line) or `predictions.json` /
`nbest_predictions.json` (SQuAD).
"""

import dataclasses
import functools
import json
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from keras_bert_impl.text.packer import parse_bucket_lengths
from keras_bert_impl.training import evaluation, saved_runs, text_tasks
from keras_bert_impl.training.history import write_atomically
from keras_bert_impl.training.model_loading import default_vocab_file, load_model
from keras_bert_impl.training.optimization import create_optimizer
from keras_bert_impl.training.strategy import get_strategy, is_chief
from keras_bert_impl.training.text_tasks import (
    GLUE_TASKS,
    OWN_DATA_FLAGS,
    OWN_DATA_TASKS,
)
from keras_bert_impl.training.trainer import Trainer, TrainerSettings


NER_TASKS = ("conll2003", "ner")
SQUAD_TASKS = ("squad", "squad_v2")
TASK_NAMES = tuple(GLUE_TASKS) + OWN_DATA_TASKS + NER_TASKS + SQUAD_TASKS
# The file and column flags each kind of task reads.
INPUT_FLAGS = {
    "text": OWN_DATA_FLAGS,
    "glue": ("data_dir",),
    "ner": ("data_dir",),
    "squad": ("train_file", "predict_file"),
}


@dataclasses.dataclass(frozen=True)
class FinetuneSettings:
    """Settings of a fine-tuning run (google-research/bert flag names)."""

    task_name: str
    output_dir: str
    data_dir: str | None = None
    train_file: str | None = None
    predict_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    init_checkpoint: str | None = None
    bert_config_file: str | None = None
    config: str | None = None
    vocab_file: str | None = None
    do_lower_case: bool | None = None  # None: the saved model's, else True
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False
    max_seq_length: int | None = None  # None: the saved model's, else 128
    train_batch_size: int = 32
    eval_batch_size: int = 64
    predict_batch_size: int = 64
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    warmup_proportion: float = 0.1
    weight_decay: float = 0.01
    optimizer: str = "adamw"
    strategy: str = "default"
    tpu: str | None = None
    mixed_precision: str | None = None
    jit_compile: bool = False
    steps_per_execution: int = 1
    save_checkpoints_steps: int = 1000
    seed: int = 12345
    max_train_examples: int | None = None
    bucket_lengths: str | None = None
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0
    verbose: int = 1


MIXED_PRECISION = (None, "mixed_bfloat16", "mixed_float16")


def check_settings(s):
    if s.task_name not in TASK_NAMES:
        raise ValueError(
            f"Unknown --task_name={s.task_name!r}; valid tasks are {list(TASK_NAMES)}."
        )
    if not (s.do_train or s.do_eval or s.do_predict):
        raise ValueError(
            "At least one of --do_train, --do_eval, --do_predict is needed."
        )
    if s.mixed_precision not in MIXED_PRECISION:
        raise ValueError(
            f"Unknown --mixed_precision={s.mixed_precision!r}; valid values are "
            "'', 'mixed_bfloat16', 'mixed_float16'."
        )
    _check_input_flags(s)
    if s.task_name in SQUAD_TASKS:
        if s.do_train and not s.train_file:
            raise ValueError("--do_train for SQuAD needs --train_file.")
        if (s.do_eval or s.do_predict) and not s.predict_file:
            raise ValueError("--do_eval/--do_predict for SQuAD needs --predict_file.")
    elif s.task_name in OWN_DATA_TASKS:
        text_tasks.check_own_data_files(s)
    elif not s.data_dir:
        raise ValueError(f"--task_name={s.task_name} needs --data_dir.")
    if s.bucket_lengths not in (None, "none") and _kind(s.task_name) != "text":
        raise ValueError(
            "--bucket_lengths applies to sentence (pair) classification and "
            "regression only."
        )
    if s.bucket_lengths not in (None, "none") and s.strategy == "tpu":
        raise ValueError("--bucket_lengths varies shapes; TPUs need static ones.")
    if not 0.0 <= s.warmup_proportion <= 1.0:
        raise ValueError(
            f"--warmup_proportion must be in [0, 1], got {s.warmup_proportion}."
        )


def _kind(task_name):
    if task_name in GLUE_TASKS or task_name in OWN_DATA_TASKS:
        return "text"
    return "ner" if task_name in NER_TASKS else "squad"


def _check_input_flags(s):
    """A file or column flag the task does not read is an error, not ignored."""
    kind = "glue" if s.task_name in GLUE_TASKS else _kind(s.task_name)
    reads = INPUT_FLAGS[kind]
    for flag in sorted({f for flags in INPUT_FLAGS.values() for f in flags}):
        if getattr(s, flag) and flag not in reads:
            hint = ""
            if kind == "glue":
                hint = (
                    " (a GLUE task's files and columns are fixed; "
                    "--task_name=text_classification reads your own)"
                )
            raise ValueError(
                f"--{flag} does not apply to --task_name={s.task_name}{hint}; "
                f"it reads {', '.join('--' + f for f in reads)}."
            )


def _head(examples, limit):
    """The first `limit` rows of a reader's result (for quick runs)."""
    if not limit or limit >= len(examples):
        return examples
    fields = {}
    for field in dataclasses.fields(examples):
        value = getattr(examples, field.name)
        if field.name == "texts":
            value = tuple(column[:limit] for column in value)
        elif field.name in ("labels", "words", "tags", "first_lines") and value:
            value = value[:limit]
        fields[field.name] = value
    return type(examples)(**fields)


class _TaskData:
    """Reads one task's files and makes its datasets, model and metrics."""

    def __init__(self, settings, tokenizer, label_vocabulary=None):
        self.settings = settings
        self.tokenizer = tokenizer
        self.label_vocabulary = label_vocabulary
        self.kind = _kind(settings.task_name)
        self.text_task = text_tasks.text_task(settings) if self.kind == "text" else None
        self.regression = bool(self.text_task and self.text_task.regression)

    @property
    def needs_labels(self):
        """Whether the model's outputs are named by labels read in training."""
        return self.kind == "ner" or (self.kind == "text" and not self.regression)

    # --- reading ------------------------------------------------------------

    def read(self, split):
        from keras_bert_impl.data import tasks

        s = self.settings
        if self.kind == "text":
            examples = text_tasks.read_split(
                s, self.text_task, split, self.label_vocabulary
            )
            if self.label_vocabulary is None:
                self.label_vocabulary = examples.label_vocabulary
            return examples
        if self.kind == "ner":
            file_name = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}
            sentences = tasks.read_conll(
                text_tasks.data_dir_file(s, file_name[split]),
                label_vocabulary=self.label_vocabulary,
            )
            if self.label_vocabulary is None:
                self.label_vocabulary = sentences.label_vocabulary
            return sentences
        return tasks.read_squad(s.train_file if split == "train" else s.predict_file)

    def features(self, examples):
        from keras_bert_impl.data import tasks

        s = self.settings
        if self.kind == "ner":
            return tasks.conll_features(examples, self.tokenizer, s.max_seq_length)
        if self.kind == "squad":
            return tasks.squad_features(
                examples,
                self.tokenizer,
                max_seq_length=s.max_seq_length,
                doc_stride=s.doc_stride,
                max_query_length=s.max_query_length,
            )
        return examples

    def dataset(self, features, batch_size, training, with_labels=True):
        from keras_bert_impl.data import tasks
        from keras_bert_impl.text import Packer

        s = self.settings
        options = dict(
            shuffle=training, seed=s.seed, repeat=training, drop_remainder=training
        )
        if self.kind == "text":
            packer = Packer.from_tokenizer(
                self.tokenizer,
                s.max_seq_length,
                bucket_lengths=parse_bucket_lengths(s.bucket_lengths),
            )
            return tasks.text_classification_dataset(
                features, self.tokenizer, packer, batch_size, **options
            )
        if self.kind == "squad":
            return features.dataset(batch_size, with_labels=with_labels, **options)
        return features.dataset(batch_size, **options)

    # --- model --------------------------------------------------------------

    def model(self, dtype):
        """The task model, holding a preprocessor built from this run's
        tokenizer and sequence length and the label names: the saved
        `model.keras` then predicts on raw text and exports without being
        told its vocabulary or labels again."""
        from keras_bert_impl import models
        from keras_bert_impl import preprocessing

        s = self.settings
        kwargs = {"dtype": dtype} if dtype else {}
        if self.kind == "text":
            cls = models.BertClassifier
            kwargs["num_classes"] = 1 if self.regression else len(self.label_vocabulary)
            if not self.regression:
                kwargs["label_names"] = self.label_vocabulary
            preprocessor = preprocessing.BertTextClassifierPreprocessor
        elif self.kind == "ner":
            cls = models.BertTokenClassifier
            kwargs["label_names"] = self.label_vocabulary
            preprocessor = preprocessing.BertTokenClassifierPreprocessor
        else:
            cls = models.BertQuestionAnswerer
            preprocessor = functools.partial(
                preprocessing.BertQuestionAnswererPreprocessor,
                doc_stride=s.doc_stride,
                max_query_length=s.max_query_length,
            )
        kwargs["preprocessor"] = preprocessor(
            tokenizer=self.tokenizer, sequence_length=s.max_seq_length
        )
        return load_model(
            cls, s.init_checkpoint, s.bert_config_file, s.config, **kwargs
        )

    # --- evaluation ---------------------------------------------------------

    def evaluate(self, outputs, examples, features):
        if self.kind == "text":
            predictions = outputs[:, 0] if self.regression else outputs.argmax(-1)
            return evaluation.glue_metrics(
                self.text_task.metric, features.labels, predictions
            )
        if self.kind == "ner":
            predicted = features_for_ner_words(features, outputs)
            return evaluation.entity_f1(examples.tags, predicted)
        from keras_bert_impl.data import tasks

        answers = self.squad_answers(outputs, features).answers
        return tasks.squad_metrics(features.examples, answers)

    def squad_answers(self, outputs, features):
        from keras_bert_impl.data import tasks

        s = self.settings
        return tasks.squad_predictions(
            features,
            outputs["start_logits"],
            outputs["end_logits"],
            n_best_size=s.n_best_size,
            max_answer_length=s.max_answer_length,
            version_2_with_negative=s.task_name == "squad_v2",
            null_score_diff_threshold=s.null_score_diff_threshold,
        )


def features_for_ner_words(features, logits):
    return features.word_predictions(logits)


def predict_outputs(model, dataset):
    """Model outputs over a dataset (numpy, concatenated; dicts kept)."""
    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    chunks = []
    for batch in dataset:
        x = batch[0] if isinstance(batch, tuple) else batch
        chunks.append(tf.nest.map_structure(lambda t: t.numpy(), call(x)))
    if isinstance(chunks[0], dict):
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    return np.concatenate(chunks)


def save_model(model, path):
    """Writes `model` as `.keras` at `path` (any file system), atomically: config,
    weights, preprocessor and compile settings, but not the optimizer's slots — two
    more copies of the weights, which predicting, evaluating and exporting never
    read (a run resumes from its checkpoints, which keep them)."""
    optimizer = getattr(model, "optimizer", None)
    with tempfile.TemporaryDirectory() as local:
        local_path = os.path.join(local, "model.keras")
        if optimizer is not None and optimizer.built:
            model.optimizer = type(optimizer).from_config(optimizer.get_config())
        try:
            model.save(local_path)
        finally:
            if optimizer is not None:
                model.optimizer = optimizer
        temporary = path + ".tmp"
        tf.io.gfile.copy(local_path, temporary, overwrite=True)
        tf.io.gfile.rename(temporary, path, overwrite=True)


def write_eval_results(output_dir, results, name="eval_results"):
    lines = "".join(f"{key} = {value}\n" for key, value in sorted(results.items()))
    write_atomically(os.path.join(output_dir, name + ".txt"), lines)
    write_atomically(
        os.path.join(output_dir, name + ".json"),
        json.dumps(results, indent=1, sort_keys=True) + "\n",
    )


def _tokenizer(settings, saved=None):
    """The saved model's tokenizer (`saved`), else one from `--vocab_file` or
    the checkpoint's `vocab.txt`."""
    from keras_bert_impl.text import Tokenizer

    if saved is not None:
        return saved
    vocab_file = settings.vocab_file or default_vocab_file(settings.init_checkpoint)
    if not vocab_file:
        where = (
            f"--init_checkpoint={settings.init_checkpoint} holds no vocabulary (no "
            "preprocessor in it, no vocab.txt beside it)"
            if settings.init_checkpoint
            else "no --init_checkpoint gives one"
        )
        raise ValueError(f"--vocab_file is needed: {where}.")
    if not tf.io.gfile.exists(vocab_file):
        raise ValueError(f"--vocab_file={vocab_file} does not exist.")
    return Tokenizer(vocab_file, lowercase=settings.do_lower_case)


def run_finetuning(settings, strategy=None):
    """Trains, evaluates and/or predicts as `settings` asks.

    Args:
        settings: `FinetuneSettings`.
        strategy: an already built strategy (else one is built from
            `settings.strategy`; build it before anything else in a process).

    Returns:
        dict with `eval_results` (when `do_eval`), `train_steps`,
        `train_seconds`, `examples_per_second` and the written paths.
    """
    import keras

    check_settings(settings)
    if strategy is None:
        strategy = get_strategy(settings.strategy, settings.tpu)
    keras.utils.set_random_seed(settings.seed)
    tf.io.gfile.makedirs(settings.output_dir)
    model_path = os.path.join(settings.output_dir, "model.keras")
    # Without --do_train: the finished model evaluated; with it, the .keras
    # model trained from. Either gives the vocabulary, casing and length.
    evaluated = None
    if not settings.do_train:
        evaluated = saved_runs.evaluated_file(
            settings, model_path, _task_class(settings.task_name)
        )
    source = evaluated or saved_runs.keras_file(settings.init_checkpoint)
    settings, saved_tokenizer = saved_runs.with_saved_preprocessor(settings, source)
    tokenizer = _tokenizer(settings, saved_tokenizer)
    labels_path = os.path.join(settings.output_dir, "labels.json")
    label_vocabulary = saved_runs.saved_label_names(evaluated)
    if label_vocabulary is None and not settings.do_train:
        if tf.io.gfile.exists(labels_path):
            with tf.io.gfile.GFile(labels_path) as f:
                label_vocabulary = json.load(f)
    task = _TaskData(settings, tokenizer, label_vocabulary)
    result = {}

    train_features = None
    if settings.do_train:
        train_examples = _head(task.read("train"), settings.max_train_examples)
        train_features = task.features(train_examples)
    if settings.do_eval:
        eval_examples = task.read("dev")
        eval_features = task.features(eval_examples)
    if settings.do_predict and task.kind == "text":
        # Read before training: a bad test file is reported at once.
        test_examples = task.read("test")
    if task.label_vocabulary is not None and settings.do_train and is_chief(strategy):
        write_atomically(labels_path, json.dumps(list(task.label_vocabulary)))

    if settings.do_train:
        num_examples = len(train_features)
        steps = num_train_steps_for(
            num_examples, settings.train_batch_size, settings.num_train_epochs
        )
        warmup = int(steps * settings.warmup_proportion)
        trainer = Trainer(
            strategy,
            lambda: task.model(settings.mixed_precision),
            lambda: create_optimizer(
                settings.learning_rate,
                steps,
                warmup,
                optimizer=settings.optimizer,
                weight_decay=settings.weight_decay,
            ),
            TrainerSettings(
                output_dir=settings.output_dir,
                num_train_steps=steps,
                global_batch_size=settings.train_batch_size,
                steps_per_execution=settings.steps_per_execution,
                save_checkpoints_steps=settings.save_checkpoints_steps,
                jit_compile=settings.jit_compile,
                verbose=settings.verbose,
            ),
        )
        note = saved_runs.rerun_note(settings.output_dir, model_path, steps)
        if note and is_chief(strategy):
            print(note)
        began = time.perf_counter()
        history = trainer.train(
            lambda: task.dataset(train_features, settings.train_batch_size, True)
        )
        seconds = time.perf_counter() - began
        model = trainer.model
        rates = [r["examples_per_second"] for r in history.rows[1:]]
        result.update(
            train_steps=steps,
            warmup_steps=warmup,
            train_seconds=seconds,
            examples_per_second=float(np.median(rates)) if rates else None,
            final_loss=history.rows[-1]["loss"] if history.rows else None,
        )
        if is_chief(strategy):
            save_model(model, model_path)
        result["model_path"] = model_path
    else:
        if task.label_vocabulary is None and task.needs_labels:
            raise ValueError(
                f"{labels_path} not found: run with --do_train into this --output_dir first."
            )
        model = _trained_model(settings, task, model_path, evaluated)

    if settings.do_eval:
        outputs = predict_outputs(
            model, task.dataset(eval_features, settings.eval_batch_size, False)
        )
        results = task.evaluate(outputs, eval_examples, eval_features)
        results["eval_examples"] = len(eval_features)
        checkpoint = getattr(model, "evaluated_checkpoint", None)
        if checkpoint:  # a run still going or stopped: say which step
            results["global_step"] = int(checkpoint.rsplit("-", 1)[1])
        if is_chief(strategy):
            write_eval_results(settings.output_dir, results)
        result["eval_results"] = results
    if settings.do_predict:
        if task.kind == "text":
            result["predictions_path"] = _predict_texts(
                settings, task, model, test_examples
            )
        else:
            result["predictions_path"] = _predict(settings, task, model)
    return result


def _task_class(task_name):
    """The class name of a finished model of `task_name`."""
    if task_name in GLUE_TASKS:
        return "BertClassifier"
    return "BertTokenClassifier" if task_name in NER_TASKS else "BertQuestionAnswerer"


def _trained_model(settings, task, model_path, evaluated=None):
    """The finished model (`evaluated`: the output dir's `model.keras`, else
    a task model given as `--init_checkpoint`), else the newest checkpoint of
    a run that is still going or was stopped (as run_classifier.py evaluates
    the latest checkpoint of its output_dir)."""
    import keras

    from keras_bert_impl.training import checkpoints

    if evaluated:
        print(f"Evaluating {evaluated} (no --do_train: the finished model).")
        return keras.saving.load_model(evaluated, compile=False)
    latest = tf.train.latest_checkpoint(
        checkpoints.checkpoint_directory(settings.output_dir)
    )
    if latest is None:
        raise ValueError(
            f"Neither {model_path} nor a checkpoint under {settings.output_dir}: "
            "run with --do_train first."
        )
    model = task.model(settings.mixed_precision)
    model.build()
    # The trainer's layout: the weights are reachable through the model's
    # variable list and through the optimizer's, so rebuild both.
    optimizer = create_optimizer(
        settings.learning_rate, 1, 0, optimizer=settings.optimizer
    )
    optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64)
    checkpoint = checkpoints.training_checkpoint(model, optimizer, step)
    try:
        checkpoint.restore(latest).expect_partial()
    except (tf.errors.OpError, ValueError, AssertionError) as e:
        raise ValueError(f"Checkpoint {latest} cannot be restored: {e}") from e
    print(f"Evaluating checkpoint {latest} ({model_path} not written yet).")
    model.evaluated_checkpoint = latest
    return model


def _predict(settings, task, model):
    out = settings.output_dir
    if task.kind == "squad":
        examples = task.read("test")
        features = task.features(examples)
        outputs = predict_outputs(
            model,
            task.dataset(
                features, settings.predict_batch_size, False, with_labels=False
            ),
        )
        predictions = task.squad_answers(outputs, features)
        path = os.path.join(out, "predictions.json")
        write_atomically(path, json.dumps(predictions.answers, indent=1) + "\n")
        write_atomically(
            os.path.join(out, "nbest_predictions.json"),
            json.dumps(predictions.nbest, indent=1) + "\n",
        )
        return path
    examples = task.read("test")
    features = task.features(examples)
    outputs = predict_outputs(
        model, task.dataset(features, settings.predict_batch_size, False)
    )
    path = os.path.join(out, "test_predictions.json")
    tags = features_for_ner_words(features, outputs)
    # Each sentence's words beside their tags, and where it starts in test.txt.
    sentences = [
        {"first_line": line, "words": list(words), "tags": sentence_tags}
        for words, line, sentence_tags in zip(
            examples.words, examples.first_lines, tags
        )
    ]
    write_atomically(path, json.dumps(sentences, indent=1) + "\n")
    return path


def _predict_texts(settings, task, model, examples):
    outputs = predict_outputs(
        model, task.dataset(examples, settings.predict_batch_size, False)
    )
    path = os.path.join(settings.output_dir, "test_results.tsv")
    text = text_tasks.predictions_tsv(outputs, task.label_vocabulary, task.regression)
    write_atomically(path, text)
    return path


def num_train_steps_for(num_examples, batch_size, epochs):
    """google-research/bert's count: int(examples / batch * epochs)."""
    return max(1, int(num_examples / batch_size * epochs))


__all__ = [
    "FinetuneSettings",
    "GLUE_TASKS",
    "TASK_NAMES",
    "run_finetuning",
]
