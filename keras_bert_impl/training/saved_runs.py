"""What a fine-tuning run takes from models saved before it.

A `model.keras` written by `kbi-finetune` (or `kbi-pretrain --vocab_file`)
holds its preprocessor: the vocabulary, casing and sequence length it was
trained with, and a task model also its label names. A later run that starts
from it, or evaluates it, takes them from there instead of asking for them
again, and a flag that contradicts them is an error naming both.
"""

import dataclasses
import os

import tensorflow as tf

from keras_bert_impl.training import checkpoints
from keras_bert_impl.training.model_loading import saved_model_config
from keras_bert_impl.training.model_loading import saved_preprocessor

DEFAULT_SEQUENCE_LENGTH = 128


def keras_file(path):
    """`path` when it names an existing `.keras` file, else None."""
    if path and os.fspath(path).endswith(".keras") and tf.io.gfile.exists(path):
        return os.fspath(path)
    return None


def latest_step(output_dir):
    """(newest checkpoint path, its step) of a run's output dir, or (None, 0)."""
    latest = tf.train.latest_checkpoint(checkpoints.checkpoint_directory(output_dir))
    return (latest, int(latest.rsplit("-", 1)[1])) if latest else (None, 0)


def evaluated_file(settings, model_path, task_class):
    """Without `--do_train`, the `.keras` file to evaluate: the output dir's
    finished model, else (when no checkpoint of a run is there either) a
    `task_class` model given as `--init_checkpoint`. None: the newest
    checkpoint, or nothing to evaluate."""
    if tf.io.gfile.exists(model_path):
        return model_path
    if latest_step(settings.output_dir)[0] is not None:
        return None
    source = keras_file(settings.init_checkpoint)
    if source is None:
        return None
    name, _ = saved_model_config(source)
    if name != task_class:
        raise ValueError(
            f"Neither {model_path} nor a checkpoint under {settings.output_dir}, "
            f"and --init_checkpoint={source} holds a {name}, not the {task_class} "
            f"that --task_name={settings.task_name} evaluates: run with --do_train "
            "first."
        )
    return source


def _or(value, default):
    """`value` unless it is unset (None); a given 0 stays, to be refused."""
    return default if value is None else value


def with_saved_preprocessor(settings, source):
    """(settings, tokenizer): the settings completed from the preprocessor
    saved in the `.keras` file `source` (casing, and the sequence length when
    unset), and its tokenizer; (settings with the defaults, None) when
    `source` holds no preprocessor.

    Raises:
        ValueError: `--vocab_file` or `--do_lower_case` contradicts the
            saved model, naming both.
    """
    preprocessor = saved_preprocessor(source) if source else None
    if preprocessor is None:
        return (
            dataclasses.replace(
                settings,
                do_lower_case=_or(settings.do_lower_case, True),
                max_seq_length=_or(settings.max_seq_length, DEFAULT_SEQUENCE_LENGTH),
            ),
            None,
        )
    from keras_bert_impl.text.vocab_file import load_vocabulary

    tokenizer = preprocessor.tokenizer
    if settings.vocab_file:
        if not tf.io.gfile.exists(settings.vocab_file):
            raise ValueError(f"--vocab_file={settings.vocab_file} does not exist.")
        given = load_vocabulary(settings.vocab_file)
        if list(given) != list(tokenizer.vocabulary):
            raise ValueError(
                f"--vocab_file={settings.vocab_file} ({len(given)} tokens) is not the "
                f"vocabulary saved in {source} ({len(tokenizer.vocabulary)} tokens): "
                "leave --vocab_file out to use the model's."
            )
    if settings.do_lower_case not in (None, tokenizer.lowercase):
        raise ValueError(
            f"--do_lower_case={settings.do_lower_case} contradicts {source}, whose "
            f"tokenizer has lowercase={tokenizer.lowercase}: leave --do_lower_case "
            "out to use the model's."
        )
    settings = dataclasses.replace(
        settings,
        do_lower_case=tokenizer.lowercase,
        max_seq_length=_or(
            settings.max_seq_length,
            _or(preprocessor.sequence_length, DEFAULT_SEQUENCE_LENGTH),
        ),
    )
    return settings, tokenizer


def saved_label_names(path):
    """The label names saved in a task model's `.keras` file, or None."""
    names = saved_model_config(path)[1].get("label_names") if path else None
    return list(names) if names else None


def rerun_note(output_dir, model_path, steps):
    """One line saying what `--do_train` does in an output dir that holds a
    run already; None for a fresh one."""
    checkpoint_dir = checkpoints.checkpoint_directory(output_dir)
    anew = (
        f"to train anew, give a fresh --output_dir or delete {checkpoint_dir} "
        f"and {model_path}."
    )
    latest, done = latest_step(output_dir)
    if latest is not None and done >= steps:
        return (
            f"{output_dir} already holds a run trained to step {done} (this run "
            f"asks for {steps}): training is skipped and {model_path} is written "
            f"from its last checkpoint; {anew}"
        )
    if latest is not None:
        return (
            f"Resuming the run in {output_dir} from its checkpoint at step {done} "
            f"of {steps}; {anew}"
        )
    if tf.io.gfile.exists(model_path):
        return (
            f"Training anew into {output_dir}: its {model_path} (no checkpoint "
            "beside it) will be replaced."
        )
    return None
