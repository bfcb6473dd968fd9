"""Fine-tuning any `FinetuningTask` (sentence (pair) classification and
regression on GLUE presets or a user's own TSV/CSV/JSON lines files, CoNLL
NER, SQuAD): the pure function behind `kbi-finetune` (google-research/bert's
`run_classifier.py` and `run_squad.py`, transformers' `run_glue.py` for own
files, plus NER). The task reads, builds, scores and writes; this runs it.

Outputs in `output_dir`: `checkpoints/`, `tensorboard/`, `metrics.{json,csv,png}`
(training curves), `model.keras` (the trained model), `labels.json`,
`eval_results.txt` (`key = value` lines) and `eval_results.json`, and for
`do_predict` `test_results.tsv` (a header, one probability column per label,
then `prediction`: the label, or a regression's score),
`test_predictions.json` (NER: each test sentence's words, their tags and its
first line) or `predictions.json` / `nbest_predictions.json` (SQuAD).
"""

import dataclasses
import json
import os
import time

import numpy as np
import tensorflow as tf

from keras_bert_impl.tasks import FINETUNING_TASKS
from keras_bert_impl.training import saved_runs
from keras_bert_impl.training.history import write_atomically
from keras_bert_impl.training.model_loading import default_vocab_file
from keras_bert_impl.training.optimization import create_optimizer
from keras_bert_impl.training.settings import check_mixed_precision
from keras_bert_impl.training.run_outputs import predict_outputs, save_model
from keras_bert_impl.training.run_outputs import write_eval_results
from keras_bert_impl.training.strategy import get_strategy, is_chief
from keras_bert_impl.training.trainer import Trainer, TrainerSettings

TASK_NAMES = tuple(FINETUNING_TASKS)


def check_settings(s):
    if s.task_name not in TASK_NAMES:
        raise ValueError(
            f"Unknown --task_name={s.task_name!r}; valid tasks are {list(TASK_NAMES)}."
        )
    if not (s.do_train or s.do_eval or s.do_predict):
        raise ValueError(
            "At least one of --do_train, --do_eval, --do_predict is needed."
        )
    check_mixed_precision(s.mixed_precision)
    task_class = FINETUNING_TASKS[s.task_name]
    task_class.check_inputs(s)
    if s.bucket_lengths not in (None, "none") and not task_class.varies_batch_shapes:
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
    task_class = FINETUNING_TASKS[settings.task_name]
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
            settings, model_path, task_class.model_class_name
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
    task = task_class(settings, tokenizer, label_vocabulary)
    result = {}

    train_features = None
    if settings.do_train:
        train_examples = _head(task.read("train"), settings.max_train_examples)
        train_features = task.features(train_examples)
    if settings.do_eval:
        eval_examples = task.read("dev")
        eval_features = task.features(eval_examples)
    if settings.do_predict:
        # Read before training: a bad test file is reported at once.
        test_examples = task.read("test")
        test_features = task.features(test_examples)
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
            lambda: task.build_model(settings.mixed_precision),
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
        outputs = predict_outputs(
            model, task.dataset(test_features, settings.predict_batch_size, False)
        )
        result["predictions_path"] = task.write_predictions(
            outputs, test_examples, test_features, settings.output_dir
        )
    return result


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
    model = task.build_model(settings.mixed_precision)
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


def num_train_steps_for(num_examples, batch_size, epochs):
    """google-research/bert's count: int(examples / batch * epochs)."""
    return max(1, int(num_examples / batch_size * epochs))


__all__ = [
    "TASK_NAMES",
    "run_finetuning",
]
