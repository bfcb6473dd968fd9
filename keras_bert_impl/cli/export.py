r"""kbi-export: writes a model as a raw-text SavedModel for TF Serving.

  kbi-export --init_checkpoint=runs/sst2/model.keras --export_dir=saved_models/sst2 [--version=N]
  kbi-export --init_checkpoint=$MINILM_DIR --task=embeddings --export_dir=saved_models/minilm
  kbi-export --init_checkpoint=runs/sst2/model.keras \
      --export_dir=saved_models/sst2_int8 --precision=int8
  kbi-export --init_checkpoint=runs/ner/model.keras --export_dir=saved_models/ner
  kbi-export --init_checkpoint=runs/squad/model.keras \
      --export_dir=saved_models/squad [--doc_stride=128 --max_answer_length=30]

A .keras model knows its task (a classifier exports as a classifier, a token classifier
as one, ...): --task may be left out, and one that contradicts the model is an error.
A checkpoint directory holds no head: --task (and --labels for a classifier) say what to
put on it.

Writes export_dir/VERSION/ (the next free version unless --version; an existing version is
never overwritten) with the SavedModel, assets.extra/tf_serving_warmup_requests and
assets.extra/model_card.json, then runs the servability op check.
"""

import os
import sys
import warnings

from absl import flags

from keras_bert_impl.cli import command


def define_flags(f):
    """Defined when the tool runs, so importing this module adds no flags."""
    from keras_bert_impl.tasks import EXPORT_TASKS

    flags.DEFINE_string(
        "init_checkpoint",
        None,
        "A .keras model saved by this package, or a Hugging Face / Google BERT checkpoint "
        "directory (with vocab.txt).",
        required=True,
        flag_values=f,
    )
    flags.DEFINE_enum(
        "task",
        None,
        list(EXPORT_TASKS),
        "What to export. Default: what a .keras model is (a classifier exports as "
        "classifier, a one-output classifier as regression, ...); required for a "
        "checkpoint directory. Any model also exports as embeddings.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "export_dir",
        None,
        "The model's base path, e.g. saved_models/sst2.",
        required=True,
        flag_values=f,
    )
    flags.DEFINE_integer(
        "version", None, "Version to write (default: the next free one).", flag_values=f
    )
    flags.DEFINE_list(
        "labels",
        None,
        "Class (or tag) names in index order (default: the model's label names).",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "max_seq_length",
        None,
        "Longest packed sequence (default: the model's, else 128).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "bucket_lengths",
        "auto",
        'Length buckets: "auto" (8, 16, 24, ... max_seq_length), "none" (fixed padding) or '
        "comma-separated lengths.",
        flag_values=f,
    )
    flags.DEFINE_boolean(
        "normalize_embeddings",
        True,
        "L2-normalise the embeddings task's `embedding`.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "top_k", 5, "fill_mask: tokens returned per [MASK].", flag_values=f
    )
    flags.DEFINE_integer(
        "doc_stride",
        None,
        "question_answerer: pieces between context windows (default: the model's "
        "preprocessor's).",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "max_query_length",
        None,
        "question_answerer: question pieces kept (default: the model's preprocessor's).",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "max_answer_length",
        30,
        "question_answerer: longest answer, in word pieces.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "n_best_size",
        20,
        "question_answerer: candidate starts and ends per window.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "warmup_file",
        None,
        "UTF-8 text file, one example text per line, for warmup.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "precision",
        None,
        "Inference precision: float32, bfloat16 (mixed_bfloat16 compute), int8 "
        "(Keras int8 quantization: int8 weights and activations), int8_weight_only "
        "(int8 weights, float matmul) or int8_onednn (oneDNN's uint8 x int8 matmul, "
        "needs --calibration_file), see keras_bert_impl.compression "
        "(default: the model's own).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "calibration_file",
        None,
        "--precision=int8_onednn: UTF-8 text file, one training text per line (a few "
        "hundred), whose activations set each int8 layer's input range.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "max_batch_size",
        None,
        "Server-side batching: max_batch_size of the batching parameters written with "
        "the export (default: 4096 tokens of max_seq_length, a power of two in 8..64).",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "batch_timeout_micros",
        1000,
        "Server-side batching: how long a partial batch waits for more requests.",
        flag_values=f,
    )


def read_text_lines(path, flag, limit=None):
    """The non-empty lines of the UTF-8 file named by --`flag` (the first `limit`)."""
    try:
        with open(path, encoding="utf-8") as f:
            texts = [line.rstrip("\n") for line in f if line.strip()][:limit]
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"--{flag}={path}: {error}") from None
    if not texts:
        raise ValueError(f"--{flag}={path} has no non-empty line")
    return texts


def load_saved_model(path, task):
    """(the model a .keras file holds, the task to export it as): a saved model knows
    its task, so `task` may be None; one that contradicts the model is refused."""
    from keras_bert_impl.models.task import load_saved

    model = load_saved(path)
    saved = model.serving_task
    if task in (None, saved):
        return model, saved
    if task == "embeddings":  # any model's encoder
        return model, task
    labels = getattr(model, "label_names", None)
    raise ValueError(
        f"--task={task} contradicts --init_checkpoint={path}: it holds a "
        f"{type(model).__name__}, which exports as --task={saved}"
        + (f" (labels {', '.join(labels)})" if labels else "")
        + f". Leave --task out (or give --task={saved} or --task=embeddings), or start "
        f"from a checkpoint directory to put a new {task} head on its encoder."
    )


def load_model(init_checkpoint, task, labels, max_seq_length):
    """(the Keras model to export, with its preprocessor (the tokenizer it was trained
    with), the task to export it as)."""
    from keras_bert_impl.tasks import EXPORT_TASKS

    if not os.path.exists(init_checkpoint):
        raise FileNotFoundError(f"--init_checkpoint={init_checkpoint} does not exist")
    if init_checkpoint.endswith(".keras"):
        return load_saved_model(init_checkpoint, task)
    if task is None:
        raise ValueError(
            f"--task is needed: --init_checkpoint={init_checkpoint} is a checkpoint "
            f"directory, which holds no task head; valid tasks are {', '.join(EXPORT_TASKS)}"
        )
    kwargs = {"sequence_length": max_seq_length} if max_seq_length else {}
    model = EXPORT_TASKS[task].model_from_directory(
        task, init_checkpoint, labels, **kwargs
    )
    return model, task


def main(flag_values):
    from keras_bert_impl.export import exporter
    from keras_bert_impl.tasks import EXPORT_TASKS
    from keras_bert_impl.text import packer

    try:
        bucket_lengths = packer.parse_bucket_lengths(flag_values.bucket_lengths)
        warmup = (
            {
                "warmup_texts": read_text_lines(
                    flag_values.warmup_file, "warmup_file", 32
                )
            }
            if flag_values.warmup_file
            else {}
        )
        from keras_bert_impl import compression

        if flag_values.precision is not None:
            try:
                compression.check_precision(flag_values.precision)
            except ValueError as error:
                raise ValueError(
                    f"--precision={flag_values.precision}: {error}"
                ) from None
        model, task = load_model(
            flag_values.init_checkpoint,
            flag_values.task,
            flag_values.labels,
            flag_values.max_seq_length,
        )
        precision = compression.model_precision(model)
        if flag_values.precision not in (None, precision):
            calibration = None
            if flag_values.precision == "int8_onednn":
                if not flag_values.calibration_file:
                    raise ValueError(
                        "--precision=int8_onednn needs --calibration_file (one "
                        "training text per line)"
                    )
                calibration = read_text_lines(
                    flag_values.calibration_file, "calibration_file"
                )
            # Its warnings (e.g. a CPU without native support for the precision)
            # as one line each, without Python's source line.
            with warnings.catch_warnings(record=True) as caught:
                model = compression.with_precision(
                    model, flag_values.precision, calibration=calibration
                )
            for warning in caught:
                print(f"kbi-export: warning: {warning.message}", file=sys.stderr)
            precision = flag_values.precision
        tokenizer = None
        if getattr(model, "preprocessor", None) is None:
            from keras_bert_impl.preprocessing import checkpoint_vocabulary
            from keras_bert_impl.text import Tokenizer

            vocabulary, lowercase = checkpoint_vocabulary.read(
                flag_values.init_checkpoint
            )
            tokenizer = Tokenizer(vocabulary, lowercase=lowercase)
        common = dict(
            tokenizer=tokenizer,
            max_seq_length=flag_values.max_seq_length,
            bucket_lengths=bucket_lengths,
            version=flag_values.version,
            source_checkpoint=os.path.abspath(flag_values.init_checkpoint),
            extra_card={"precision": precision},
            max_batch_size=flag_values.max_batch_size,
            batch_timeout_micros=flag_values.batch_timeout_micros,
            **warmup,
        )
        path = EXPORT_TASKS[task].export(
            model, flag_values.export_dir, task, flag_values, **common
        )
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"kbi-export: {error}", file=sys.stderr)
        return 1
    card = exporter.read_model_card(path)
    print(f"Exported {task} -> {path} (min TF Serving {card['MIN_SERVING_VERSION']})")
    return 0


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)
