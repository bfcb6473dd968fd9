r"""kbi-distill: trains a smaller student from a fine-tuned teacher.

  kbi-distill --teacher=runs/sst2/model.keras --student_layers=0,2,4 \
      --train_file=../shared/data/sst2/train.tsv --eval_file=../shared/data/sst2/dev.tsv \
      --output_dir=runs/sst2_student_3

The teacher is a `.keras` classifier or token classifier with its preprocessor
(as `kbi-finetune` writes it). The student is the teacher with only the encoder
blocks `--student_layers` (initialised from them), or `--student_checkpoint`
(any checkpoint `from_preset` reads, with the teacher's head size and
preprocessor). The loss is `--alpha` × T² × KL(teacher ‖ student) at temperature
`--temperature` plus (1 − alpha) × the hard-label loss; `--alpha=0` trains the
same student on the labels alone, the baseline to compare with.

Data: GLUE-style TSV files (`--text_columns`, a `label` column) for a
classifier, CoNLL files for a token classifier. The teacher's logits on the
training data are cached in `--teacher_logits_cache` (default: in the output
directory), so a second student does not run the teacher again.

Writes `model.keras` (the student, with its preprocessor) and
`eval_results.json` (student and teacher on `--eval_file`).
"""

import json
import os
import time

from absl import flags

from keras_bert_impl.cli import command


def define_flags(registry):
    def string(name, default, help_text):
        flags.DEFINE_string(name, default, help_text, flag_values=registry)

    string(
        "teacher", None, "The fine-tuned teacher, a .keras file with its preprocessor."
    )
    flags.DEFINE_list(
        "student_layers",
        [],
        "Teacher encoder blocks the student keeps, e.g. 0,2,4 (default: every "
        "other block).",
        flag_values=registry,
    )
    string(
        "student_checkpoint",
        None,
        "Instead of --student_layers: a preset name, Hugging Face / Google "
        "checkpoint directory or .keras file to start the student from.",
    )
    string("train_file", None, "Training data: a GLUE-style TSV or a CoNLL file.")
    string("eval_file", None, "Optional evaluation file of the same kind.")
    flags.DEFINE_list(
        "text_columns", ["sentence"], "TSV text column(s).", flag_values=registry
    )
    flags.DEFINE_float("temperature", 2.0, "Softmax temperature.", flag_values=registry)
    flags.DEFINE_float(
        "alpha",
        0.5,
        "Weight of the teacher's soft targets (0: labels only).",
        flag_values=registry,
    )
    flags.DEFINE_integer(
        "max_train_examples",
        0,
        "Use the first N training examples (0: all).",
        flag_values=registry,
    )
    flags.DEFINE_float("num_train_epochs", 1.0, "Epochs (whole).", flag_values=registry)
    flags.DEFINE_integer(
        "augment_copies",
        0,
        "Perturbed copies of each training text (masked words, n-gram cuts) the "
        "teacher labels and the student also trains on (single-text classifiers, "
        "alpha > 0).",
        flag_values=registry,
    )
    flags.DEFINE_float(
        "learning_rate", 5e-5, "Peak learning rate.", flag_values=registry
    )
    flags.DEFINE_float(
        "warmup_proportion", 0.1, "Share of steps warming up.", flag_values=registry
    )
    flags.DEFINE_integer("train_batch_size", 32, "Batch size.", flag_values=registry)
    string(
        "bucket_lengths",
        None,
        "Pad each batch only to its length bucket: auto, none or comma-separated "
        "lengths (classifier only; default: the teacher preprocessor's).",
    )
    string(
        "teacher_logits_cache", None, "Where the teacher's logits are cached (.npz)."
    )
    string("output_dir", None, "Where model.keras and eval_results.json go.")


def _load_teacher(path):
    import keras

    from keras_bert_impl import preprocessing  # noqa: F401 (registers classes)
    from keras_bert_impl.compression.student import TASKS

    if not path or not os.path.isfile(path):
        raise ValueError(f"--teacher={path} is not a file; give a .keras model.")
    teacher = keras.saving.load_model(path, compile=False)
    if not isinstance(teacher, TASKS):
        raise ValueError(
            f"--teacher={path} holds a {type(teacher).__name__}; distillation takes "
            "a BertClassifier or a BertTokenClassifier."
        )
    if teacher.preprocessor is None:
        raise ValueError(
            f"--teacher={path} has no preprocessor; load it with "
            "from_preset(..., preprocessor=BertTextClassifierPreprocessor.from_preset"
            "(checkpoint)) and save it again."
        )
    return teacher


def _read(path, teacher, text_columns, flag, limit=None):
    """(inputs, labels) of the first `limit` (default all) examples of a TSV
    (classifier) or CoNLL file (token classifier)."""
    from keras_bert_impl import BertTokenClassifier
    from keras_bert_impl.data.conll import read_conll
    from keras_bert_impl.data.glue import read_tsv_examples

    if not os.path.isfile(path):
        raise ValueError(f"--{flag}={path} does not exist.")
    if isinstance(teacher, BertTokenClassifier):
        if teacher.label_names is None:
            raise ValueError(
                f"--teacher has no label_names; a CoNLL file's tags cannot be "
                f"matched to its {teacher.num_classes} classes."
            )
        sentences = read_conll(path, label_vocabulary=teacher.label_names)
        return (
            [list(w) for w in sentences.words[:limit]],
            [list(t) for t in sentences.tags[:limit]],
        )
    examples = read_tsv_examples(
        path, text_columns=text_columns, label_vocabulary=teacher.label_names
    )
    return examples.model_inputs(limit), list(examples.labels[:limit])


def _student(teacher, registry):
    from keras_bert_impl.compression.student import student_from_teacher

    preprocessor = _preprocessor(teacher, registry.bucket_lengths)
    if registry.student_checkpoint:
        if registry.student_layers:
            raise ValueError("Give --student_layers or --student_checkpoint, not both.")
        kwargs = {"preprocessor": preprocessor}
        if teacher.label_names:
            kwargs["label_names"] = teacher.label_names
        else:
            kwargs["num_classes"] = teacher.num_classes
        return type(teacher).from_preset(registry.student_checkpoint, **kwargs)
    layers = registry.student_layers or list(range(0, teacher.config.num_layers, 2))
    try:
        layers = [int(i) for i in layers]
    except ValueError:
        raise ValueError(
            f"--student_layers={','.join(registry.student_layers)} must be "
            "comma-separated block indices."
        ) from None
    return student_from_teacher(teacher, layers, preprocessor)


def _preprocessor(teacher, bucket_lengths):
    """The teacher's preprocessor, with `--bucket_lengths` when given."""
    from keras_bert_impl import BertClassifier
    from keras_bert_impl.text.packer import parse_bucket_lengths

    if bucket_lengths is None:
        return teacher.preprocessor
    if not isinstance(teacher, BertClassifier):
        raise ValueError("--bucket_lengths applies to classifiers only.")
    return teacher.preprocessor.with_bucket_lengths(
        parse_bucket_lengths(bucket_lengths)
    )


def main(registry):
    from keras_bert_impl.compression.distillation import distill
    from keras_bert_impl.training.run_outputs import save_model

    command.require_flags(registry, "teacher", "train_file", "output_dir")
    epochs = registry.num_train_epochs
    if epochs < 1 or epochs != int(epochs):
        raise ValueError(f"--num_train_epochs={epochs} must be a whole number >= 1.")
    if registry.augment_copies < 0:
        raise ValueError(
            f"--augment_copies={registry.augment_copies} must be 0 (none) or more."
        )
    teacher = _load_teacher(registry.teacher)
    texts, labels = _read(
        registry.train_file,
        teacher,
        registry.text_columns,
        "train_file",
        registry.max_train_examples or None,
    )
    evaluation = None
    if registry.eval_file:
        evaluation = _read(
            registry.eval_file, teacher, registry.text_columns, "eval_file"
        )
    student = _student(teacher, registry)
    os.makedirs(registry.output_dir, exist_ok=True)
    cache = registry.teacher_logits_cache or os.path.join(
        registry.output_dir, "teacher_logits.npz"
    )
    start = time.time()
    history, student_eval = distill(
        student,
        texts,
        labels,
        teacher=teacher if registry.alpha else None,
        temperature=registry.temperature,
        alpha=registry.alpha,
        epochs=int(epochs),
        batch_size=registry.train_batch_size,
        learning_rate=registry.learning_rate,
        warmup_fraction=registry.warmup_proportion,
        validation_data=evaluation,
        cache_file=cache if registry.alpha else None,
        augment_copies=registry.augment_copies,
    )
    seconds = time.time() - start
    save_model(student, os.path.join(registry.output_dir, "model.keras"))
    results = {
        "student_layers": student.config.num_layers,
        "teacher_layers": teacher.config.num_layers,
        "student_parameters": student.count_params(),
        "teacher_parameters": teacher.count_params(),
        "alpha": registry.alpha,
        "temperature": registry.temperature,
        "train_examples": len(labels),
        "max_train_examples": registry.max_train_examples,
        "augment_copies": registry.augment_copies,
        "epochs": int(epochs),
        "learning_rate": registry.learning_rate,
        "train_seconds": round(seconds, 1),
        "final_train_loss": history.history["loss"][-1],
    }
    if evaluation is not None:
        teacher.compile()
        results["student"] = student_eval
        results["teacher"] = teacher.evaluate(
            *evaluation,
            batch_size=registry.train_batch_size,
            return_dict=True,
            verbose=0,
        )
    path = os.path.join(registry.output_dir, "eval_results.json")
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(path + ".tmp", path)
    print(json.dumps(results, indent=1))
    return results


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)
