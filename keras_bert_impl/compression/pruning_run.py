"""Prune a fine-tuned classifier on a GLUE-style TSV file, then recover: the pure
function behind `kbi-prune`.

1. Head (and optionally feed-forward) importance on the first `importance_examples`
   training examples; the least important removed (`pruning.prune`).
2. A short recovery fine-tune: one pass of plain `fit` on hard labels over the first
   `recovery_examples` training examples, with the model's own preprocessor.
3. `model.keras` and `pruning_report.json` written into `output_dir` atomically; with
   an `eval_file`, the report also holds accuracy before pruning, after pruning and
   after recovery.
"""

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_bert_impl.compression import pruning
from keras_bert_impl.data.glue import read_tsv_examples
from keras_bert_impl.models import BertClassifier
from keras_bert_impl.optimizers import FusedAdamW
from keras_bert_impl.text.packer import parse_bucket_lengths
from keras_bert_impl.training.run_outputs import save_model
from keras_bert_impl.training.history import write_atomically

REPORT_FILE = "pruning_report.json"


def _check_file(flag, path):
    if not path:
        raise ValueError(f"--{flag} is required.")
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise ValueError(f"--{flag}={path}: no such file.")


def check_settings(s):
    """Raises ValueError naming the first bad setting (as its flag)."""
    _check_file("init_checkpoint", s.init_checkpoint)
    if not s.init_checkpoint.endswith(".keras"):
        raise ValueError(
            f"--init_checkpoint={s.init_checkpoint}: expected a fine-tuned "
            "classifier saved as .keras (kbi-finetune's model.keras)."
        )
    _check_file("train_file", s.train_file)
    if s.vocab_file:
        _check_file("vocab_file", s.vocab_file)
    if s.eval_file:
        _check_file("eval_file", s.eval_file)
    if not s.output_dir:
        raise ValueError("--output_dir is required.")
    for name in ("head_fraction", "ffn_fraction"):
        value = getattr(s, name)
        if not 0.0 <= value < 1.0:
            raise ValueError(f"--{name}={value}: must be in [0, 1).")
    if s.importance_examples < 1:
        raise ValueError(
            f"--importance_examples={s.importance_examples}: must be at least 1."
        )
    if s.recovery_examples < 0:
        raise ValueError(
            f"--recovery_examples={s.recovery_examples}: must be 0 (no recovery) "
            "or more."
        )
    if s.train_batch_size < 1:
        raise ValueError(f"--train_batch_size={s.train_batch_size}: must be >= 1.")
    if s.learning_rate <= 0:
        raise ValueError(f"--learning_rate={s.learning_rate}: must be positive.")
    if s.max_seq_length is not None and s.max_seq_length < 3:
        raise ValueError(f"--max_seq_length={s.max_seq_length}: must be at least 3.")
    parse_bucket_lengths(s.bucket_lengths)  # raises on a malformed --bucket_lengths


def _load_classifier(settings):
    import keras_bert_impl.preprocessing  # noqa: F401  registers the preprocessors

    path = settings.init_checkpoint
    model = keras.saving.load_model(path, compile=False)
    if not isinstance(model, BertClassifier) or model.num_classes == 1:
        raise ValueError(
            f"--init_checkpoint={path} holds a {type(model).__name__}"
            + (" (regression)" if isinstance(model, BertClassifier) else "")
            + "; kbi-prune takes a BertClassifier of classes."
        )
    if model.preprocessor is None and not settings.vocab_file:
        raise ValueError(
            f"--init_checkpoint={path} has no preprocessor; give --vocab_file "
            "(and --do_lower_case, --max_seq_length) to build one."
        )
    return model


def _preprocessor_config(model, settings):
    """The serialised preprocessor `model` should have, or None to keep its own."""
    from keras_bert_impl.preprocessing import BertTextClassifierPreprocessor
    from keras_bert_impl.text import Tokenizer

    old = model.preprocessor
    changes = {}
    if settings.max_seq_length is not None:
        changes["sequence_length"] = settings.max_seq_length
    if settings.bucket_lengths is not None:
        changes["bucket_lengths"] = parse_bucket_lengths(settings.bucket_lengths)
    if settings.vocab_file:
        tokenizer = Tokenizer(settings.vocab_file, lowercase=settings.do_lower_case)
        changes.setdefault("sequence_length", old.sequence_length if old else 128)
        new = BertTextClassifierPreprocessor(tokenizer, **changes)
        return keras.saving.serialize_keras_object(new)
    values = keras.saving.serialize_keras_object(old)
    if all(values["config"].get(k) == v for k, v in changes.items()):
        return None
    values["config"] = dict(values["config"], **changes)
    return values


def _prepared(model, settings, label_names):
    """`model`, or a copy with the preprocessor the settings ask for and the
    label names of the training file when it has none (a built model takes no
    new preprocessor, so the copy comes from its config)."""
    preprocessor = _preprocessor_config(model, settings)
    if preprocessor is None and model.label_names is not None:
        return model
    values = model.get_config()
    if preprocessor is not None:
        values["preprocessor"] = preprocessor
    if model.label_names is None:
        values["label_names"] = list(label_names)
    copy = type(model).from_config(values)
    copy.build()
    copy.set_weights(model.get_weights())
    return copy


def _read(settings, path, model):
    examples = read_tsv_examples(
        path,
        text_columns=settings.text_columns,
        label_column=settings.label_column,
        label_vocabulary=model.label_names,
    )
    if examples.label_vocabulary and len(examples.label_vocabulary) != (
        model.num_classes
    ):
        raise ValueError(
            f"{path} has labels {list(examples.label_vocabulary)} but the "
            f"classifier has {model.num_classes} classes."
        )
    return examples


def _labels(examples, count=None):
    return np.asarray(examples.labels[:count], "int32")


def accuracy(model, examples, batch_size=64):
    """Accuracy of `model` on labelled `TextExamples`."""
    logits = model.predict(examples.model_inputs(), batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == _labels(examples)))


def _structure(model):
    config = model.config
    return {
        "heads_per_layer": [
            config.layer_num_heads(i) for i in range(config.num_layers)
        ],
        "intermediate_size": config.intermediate_size,
        "parameters": int(model.count_params()),
        "encoder_parameters": int(
            sum(layer.count_params() for layer in model.backbone.transformer_layers)
        ),
    }


def run_pruning(settings, verbose=1):
    """Prunes, optionally recovers and evaluates, and writes the results.

    Returns:
        The report (also written to `output_dir/pruning_report.json`): the
        pruned heads per layer (original indices), heads per layer, intermediate
        size and parameter counts before and after, examples used, seconds, and
        with an `eval_file` the accuracies.
    """
    check_settings(settings)
    keras.utils.set_random_seed(settings.seed)
    started = time.time()

    def progress(message):
        if verbose:
            print(f"[{time.time() - started:6.0f}s] {message}", flush=True)

    model = _load_classifier(settings)
    # Without label names, the classes are the file's sorted labels, as
    # kbi-finetune numbers them.
    train = _read(settings, settings.train_file, model)
    model = _prepared(model, settings, train.label_vocabulary)
    evaluation = None
    if settings.eval_file:
        evaluation = _read(settings, settings.eval_file, model)
    report = {
        "init_checkpoint": settings.init_checkpoint,
        "head_fraction": settings.head_fraction,
        "ffn_fraction": settings.ffn_fraction,
        "before": _structure(model),
    }
    if evaluation is not None:
        progress(f"evaluating on {len(evaluation)} examples of {settings.eval_file}")
        report["eval_accuracy_before"] = accuracy(model, evaluation)
        progress(f"accuracy before pruning {report['eval_accuracy_before']:.4f}")

    count = min(settings.importance_examples, len(train))
    progress(f"scoring heads and neurons on {count} examples")
    pruned = pruning.prune(
        model,
        train.model_inputs(count),
        _labels(train, count),
        head_fraction=settings.head_fraction,
        ffn_fraction=settings.ffn_fraction,
        batch_size=settings.train_batch_size,
    )
    report["importance_examples"] = count
    report["pruned_heads"] = {
        str(layer): list(heads) for layer, heads in pruned.config.pruned_heads.items()
    }
    report["after"] = _structure(pruned)
    progress(
        f"pruned heads {report['pruned_heads']}; heads per layer "
        f"{report['after']['heads_per_layer']}, intermediate size "
        f"{report['after']['intermediate_size']}"
    )
    if evaluation is not None:
        report["eval_accuracy_after_pruning"] = accuracy(pruned, evaluation)
        progress(f"accuracy after pruning {report['eval_accuracy_after_pruning']:.4f}")

    recovery = min(settings.recovery_examples, len(train))
    report["recovery_examples"] = recovery
    if recovery:
        progress(f"recovery fine-tune on {recovery} examples")
        pruned.compile(
            optimizer=FusedAdamW(settings.learning_rate, weight_decay=0.01),
            # As kbi-finetune's default: no XLA compile of the train step.
            jit_compile=False,
        )
        pruned.fit(
            train.model_inputs(recovery),
            _labels(train, recovery),
            batch_size=settings.train_batch_size,
            epochs=1,
            verbose=verbose,
        )
        if evaluation is not None:
            report["eval_accuracy_after_recovery"] = accuracy(pruned, evaluation)
            progress(
                f"accuracy after recovery {report['eval_accuracy_after_recovery']:.4f}"
            )
    report["seconds"] = round(time.time() - started, 1)

    tf.io.gfile.makedirs(settings.output_dir)
    save_model(pruned, os.path.join(settings.output_dir, "model.keras"))
    write_atomically(
        os.path.join(settings.output_dir, REPORT_FILE),
        json.dumps(report, indent=1, sort_keys=True) + "\n",
    )
    return report
