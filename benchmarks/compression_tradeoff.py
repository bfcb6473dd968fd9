r"""benchmarks.compression_tradeoff: a fine-tuned classifier's smaller variants, their speed,
accuracy and servability, in one run.

  python -m benchmarks.compression_tradeoff --teacher=runs/sst2/model.keras \
      --train_file=../shared/data/sst2/train.tsv --eval_file=../shared/data/sst2/dev.tsv \
      --work_dir=runs/compression --write_to=BENCHMARKS.md

From the teacher it makes:
- bfloat16, int8, int8_weight_only and int8_onednn copies (`compression.with_precision`);
- distilled students with the teacher blocks `--student_layers` (`kbi-distill`), and
  the same students trained on the labels alone, the baseline distillation must beat;
- the teacher with `--head_fraction` of its attention heads pruned and a short
  recovery fine-tune (`kbi-prune`);
- each smaller model in bfloat16 ("combinations");
- the ONNX Runtime peer: the same classifier through transformers and torch.onnx, in
  float32 and in ONNX Runtime's dynamic int8 quantization.

A student or pruned model already in `--work_dir` with the same settings is reused, so
a rerun (or a run after the training steps were run separately) only measures.

Then, in one process: dev accuracy of every variant on `--eval_file`; throughput at
each of `--batch_sizes` on its first `--sentences` sentences in interleaved rounds
(`python -m benchmarks.precision`'s timing: each batch cut to its longest sentence, rotating
order, the median of per-round ratios to the float32 teacher); every Keras variant
exported as a SavedModel that takes raw strings, checked with `check_servables` for
`--server_version`, and served by one `kbi-serve` whose gRPC answers are compared with
the variant's own `predict_text`.
"""

import dataclasses
import json
import math
import os
import shlex
import statistics
import sys

import numpy as np
from absl import flags

from benchmarks import benchmarks_file
from keras_bert_impl.cli import command

SECTION_HEADING = "## Compression trade-off: precision, distillation, pruning (CPU)"
TEACHER = "float32 (teacher)"
# Each smaller model also runs in these, for the best combination.
COMBINED_PRECISIONS = ("bfloat16", "int8_onednn")
KEEP_SHARE = 0.97  # of the teacher's accuracy, for the best combination


def define_flags(registry):
    def string(name, default, help_text):
        flags.DEFINE_string(name, default, help_text, flag_values=registry)

    string(
        "teacher",
        None,
        "A fine-tuned BertClassifier .keras file with its preprocessor.",
    )
    string("train_file", None, "GLUE-style TSV the students and the pruning train on.")
    string("eval_file", None, "GLUE-style TSV for accuracy and timing sentences.")
    string("work_dir", None, "Where students, pruned models and exports go.")
    flags.DEFINE_multi_string(
        "student_layers",
        ["0,2,4", "0,3"],
        "Teacher blocks of one student (repeat the flag for more students).",
        flag_values=registry,
    )
    flags.DEFINE_integer(
        "distill_examples",
        0,
        "Training sentences per student (0: all of --train_file).",
        flag_values=registry,
    )
    flags.DEFINE_float("alpha", 0.5, "kbi-distill --alpha.", flag_values=registry)
    flags.DEFINE_integer(
        "calibration_examples",
        512,
        "Training sentences (a seeded sample) that set the int8_onednn activation "
        "ranges.",
        flag_values=registry,
    )
    flags.DEFINE_integer(
        "augment_copies",
        1,
        "kbi-distill --augment_copies of the distilled students (their "
        "labels-only twins cannot use them: only the teacher labels the copies).",
        flag_values=registry,
    )
    flags.DEFINE_float(
        "temperature", 2.0, "kbi-distill --temperature.", flag_values=registry
    )
    flags.DEFINE_float(
        "learning_rate", 5e-5, "Students' peak learning rate.", flag_values=registry
    )
    flags.DEFINE_float(
        "head_fraction", 0.5, "Share of attention heads pruned.", flag_values=registry
    )
    flags.DEFINE_integer(
        "importance_examples",
        2000,
        "kbi-prune --importance_examples.",
        flag_values=registry,
    )
    flags.DEFINE_integer(
        "recovery_examples",
        4000,
        "kbi-prune --recovery_examples.",
        flag_values=registry,
    )
    flags.DEFINE_float(
        "recovery_learning_rate",
        3e-5,
        "kbi-prune --learning_rate.",
        flag_values=registry,
    )
    flags.DEFINE_list(
        "batch_sizes", ["1", "32"], "Batch sizes timed.", flag_values=registry
    )
    flags.DEFINE_integer(
        "sentences",
        128,
        "Sentences (top of --eval_file) each timed round runs.",
        flag_values=registry,
    )
    flags.DEFINE_integer("rounds", 5, "Timed rounds.", flag_values=registry)
    flags.DEFINE_bool(
        "onnx", True, "Include the ONNX Runtime peer.", flag_values=registry
    )
    flags.DEFINE_bool(
        "serve",
        True,
        "Export, check and serve every Keras variant.",
        flag_values=registry,
    )
    string("server_version", "2.10", "TF Serving release the exports must load on.")
    benchmarks_file.define_flag(registry)


@dataclasses.dataclass
class Variant:
    """One row of the table.

    Attributes:
        name: the row's name.
        model: a Keras classifier, or an ONNX Runtime peer.
        timed: whether the speed columns are measured (a baseline student runs
            exactly as fast as its distilled twin, so it is not timed again).
        command: how it was made, when a tool made it.
    """

    name: str
    model: object
    timed: bool = True
    command: str = ""


def _load(path):
    import keras

    # Registers the model and preprocessor classes the file names.
    from keras_bert_impl import BertClassifier, preprocessing  # noqa: F401

    return keras.saving.load_model(path, compile=False)


def _model_file(directory):
    return os.path.join(directory, "model.keras")


# Report keys older reports lack, with the value they had then.
_REPORT_DEFAULTS = {"augment_copies": 0}


def _previous(path, expected):
    """The JSON report at `path` if every `expected` item matches it, else None."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        report = json.load(f)
    if any(
        report.get(key, _REPORT_DEFAULTS.get(key)) != value
        for key, value in expected.items()
    ):
        return None
    return report


def student(registry, layers, alpha):
    """(directory, command) of a student, trained by kbi-distill unless already there."""
    from keras_bert_impl.cli import distill

    kind = "kd" if alpha else "labels"
    out = os.path.join(registry.work_dir, f"student_{len(layers.split(','))}_{kind}")
    argv = [
        "kbi-distill",
        f"--teacher={registry.teacher}",
        f"--train_file={registry.train_file}",
        f"--eval_file={registry.eval_file}",
        f"--max_train_examples={registry.distill_examples}",
        f"--student_layers={layers}",
        f"--alpha={alpha}",
        f"--temperature={registry.temperature}",
        f"--learning_rate={registry.learning_rate}",
        "--bucket_lengths=auto",
        f"--teacher_logits_cache={registry.work_dir}/teacher_logits.npz",
        f"--output_dir={out}",
    ]
    copies = registry.augment_copies if alpha else 0
    if copies:
        argv.insert(-2, f"--augment_copies={copies}")
    expected = {
        "alpha": alpha,
        "student_layers": len(layers.split(",")),
        "temperature": registry.temperature,
        "augment_copies": copies,
    }
    if registry.distill_examples:
        expected["train_examples"] = registry.distill_examples
    else:
        expected["max_train_examples"] = 0
    if not (
        _previous(os.path.join(out, "eval_results.json"), expected)
        and os.path.exists(os.path.join(out, "model.keras"))
    ):
        print(f"Training {out}: {shlex.join(argv)}", flush=True)
        distill.run(argv)
    return out, shlex.join(argv)


def pruned(registry):
    """(directory, command) of the pruned teacher, made by kbi-prune unless there."""
    from keras_bert_impl.cli import prune

    out = os.path.join(
        registry.work_dir, f"pruned_{round(registry.head_fraction * 100)}"
    )
    argv = [
        "kbi-prune",
        f"--init_checkpoint={registry.teacher}",
        f"--train_file={registry.train_file}",
        f"--eval_file={registry.eval_file}",
        f"--head_fraction={registry.head_fraction}",
        f"--importance_examples={registry.importance_examples}",
        f"--recovery_examples={registry.recovery_examples}",
        f"--learning_rate={registry.recovery_learning_rate}",
        "--bucket_lengths=auto",
        f"--output_dir={out}",
    ]
    expected = {
        "head_fraction": registry.head_fraction,
        "importance_examples": registry.importance_examples,
        "recovery_examples": registry.recovery_examples,
    }
    if not (
        _previous(os.path.join(out, "pruning_report.json"), expected)
        and os.path.exists(os.path.join(out, "model.keras"))
    ):
        print(f"Pruning: {shlex.join(argv)}", flush=True)
        prune.run(argv)
    return out, shlex.join(argv)


def make_variants(registry, teacher, calibration):
    """Every row: Keras variants first (the teacher first), then the peers.
    `calibration`: training sentences for the int8_onednn ranges."""
    from keras_bert_impl.compression import with_precision

    def lower(model, precision):
        if precision == "int8_onednn":
            return with_precision(model, precision, calibration=calibration)
        return with_precision(model, precision)

    variants = [Variant(TEACHER, teacher)]
    for precision in ("bfloat16", "int8", "int8_weight_only", "int8_onednn"):
        variants.append(Variant(precision, lower(teacher, precision)))
    smaller = []
    for layers in registry.student_layers:
        n = len(layers.split(","))
        path, command = student(registry, layers, registry.alpha)
        smaller.append(
            Variant(
                f"distilled {n}-layer student", _load(_model_file(path)), True, command
            )
        )
        path, command = student(registry, layers, 0.0)
        variants.append(
            Variant(
                f"{n}-layer student, labels only",
                _load(_model_file(path)),
                False,
                command,
            )
        )
    path, command = pruned(registry)
    share = f"{round(registry.head_fraction * 100)}% heads pruned"
    smaller.append(Variant(share, _load(_model_file(path)), True, command))
    variants += smaller
    for variant in smaller:
        for precision in COMBINED_PRECISIONS:
            variants.append(
                Variant(
                    f"{variant.name} + {precision}",
                    lower(variant.model, precision),
                )
            )
    return variants


def onnx_variants(teacher, work_dir):
    from benchmarks.precision import onnx_runtime_peers

    peers = onnx_runtime_peers(teacher, os.path.join(work_dir, "onnx"))
    return [Variant(name, peer) for name, peer in peers.items()]


def _slug(name):
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


# Largest |SavedModel - Keras| output difference the servability check allows. The
# export pads each batch to its length bucket, Keras to the preprocessor's length, and
# the matmul kernels then add in another order: invisible in float32 (and in int8
# weights cast to float), but bfloat16 keeps 8 bits of mantissa (measured up to 3e-3
# on probabilities), int8 activations are re-quantized per row (up to 2e-4), and in
# int8_onednn a float difference of 1e-7 can move an activation across a uint8 step
# (up to 2.5e-3 with padding to 64 against none).
SERVABLE_ATOL = {
    "float32": 1e-4,
    "int8_onednn": 1e-2,
    "int8_weight_only": 1e-4,
    "int8": 1e-3,
    "bfloat16": 1e-2,
}


def servable_tolerance(model):
    from keras_bert_impl.compression import model_precision

    return SERVABLE_ATOL[model_precision(model)]


def server_version_for(model, server_version):
    """The TF Serving release `model`'s export is checked for: `server_version`, or
    the first release with the ops its precision needs, if newer."""
    from keras_bert_impl.compression import model_precision
    from keras_bert_impl.export.servability import (
        CORE_OPS_BY_SERVER_VERSION,
        parse_version,
    )

    if model_precision(model) != "int8_onednn":
        return server_version
    return max(
        server_version,
        CORE_OPS_BY_SERVER_VERSION["_QuantizedMatMul"],
        key=parse_version,
    )


def serve_variants(variants, texts, work_dir, server_version):
    """{name: (servable, max |gRPC - predict_text| probability, problem, TF Serving
    release checked)} of every Keras variant: exported, checked in one clean process,
    served by one kbi-serve."""
    import keras

    from keras_bert_impl.export.check import check_servables
    from keras_bert_impl.export.exporter import export_classifier
    from keras_bert_impl.serving import Client
    from keras_bert_impl.serving.local_process import local_server, wait_until_available

    keras_variants = [
        v for v in variants if isinstance(v.model, keras.Model) and v.timed
    ]
    exports = {}
    for variant in keras_variants:
        base = os.path.join(work_dir, "saved_models", _slug(variant.name))
        print(f"Exporting {variant.name} to {base}", flush=True)
        exports[variant.name] = (
            base,
            export_classifier(variant.model, base, warmup_texts=texts[:4]),
        )

    # One clean process per tolerance and server release (check_servables takes one
    # of each).
    def key(variant):
        return (
            servable_tolerance(variant.model),
            server_version_for(variant.model, server_version),
        )

    reports = {}
    for atol, version in sorted({key(v) for v in keras_variants}):
        group = [v for v in keras_variants if key(v) == (atol, version)]
        checked = check_servables(
            [(exports[v.name][1], v.model) for v in group],
            server_version=version,
            atol=atol,
        )
        reports.update(zip([v.name for v in group], checked))
    reports = [reports[v.name] for v in keras_variants]
    config = os.path.join(work_dir, "saved_models", "models.config")
    with open(config, "w") as f:
        f.write("model_config_list {\n")
        for name, (base, _) in exports.items():
            f.write(
                f'  config {{ name: "{_slug(name)}" base_path: "{os.path.abspath(base)}" '
                'model_platform: "tensorflow" }\n'
            )
        f.write("}\n")
    results = {}
    with local_server(f"--model_config_file={config}") as server:
        for variant, report in zip(keras_variants, reports):
            with Client(server.target, _slug(variant.name), timeout=120) as client:
                wait_until_available(client)
                served = np.asarray(client.predict({"text": texts})["probabilities"])
            local = variant.model.predict_text(texts).probabilities
            results[variant.name] = (
                report.ok,
                float(np.abs(served - local).max()),
                "" if report.ok else report.summary(),
                report.server_version,
            )
    return results


def _median(values):
    return statistics.median(values) if values else float("nan")


def report_markdown(
    variants, timings, accuracies, serving, settings, commands, server_version=None
):
    batch_sizes = sorted({r.batch_size for r in timings})
    by_key = {(r.precision, r.batch_size): r for r in timings}
    teacher_accuracy = accuracies[TEACHER]
    speed_columns = " | ".join(f"speed vs teacher, batch {b}" for b in batch_sizes)
    lines = [
        settings,
        "",
        f"| variant | parameters | dev accuracy | share of teacher's | {speed_columns} "
        "| servable (gRPC vs Keras) |",
        "|---|---|---|---|" + "---|" * len(batch_sizes) + "---|",
    ]
    for v in variants:
        params = (
            f"{v.model.count_params() / 1e6:.1f} M"
            if hasattr(v.model, "count_params")
            else "-"
        )
        speeds = []
        for b in batch_sizes:
            r = by_key.get((v.name, b))
            speeds.append(
                f"{_median(r.speedups):.2f}x ({min(r.speedups):.2f}-{max(r.speedups):.2f})"
                if r
                else "as its distilled twin"
            )
        if v.name in serving:
            ok, diff, _, version = serving[v.name]
            served = "yes" if ok else "NO"
            if version != server_version:
                served += f", TF Serving ≥ {version}"
            served += f" ({diff:.1g})"
        else:
            served = "-"
        lines.append(
            f"| {v.name} | {params} | {accuracies[v.name]:.4f} | "
            f"{accuracies[v.name] / teacher_accuracy:.1%} | {' | '.join(speeds)} | {served} |"
        )
    best = best_combination(variants, timings, accuracies, batch_sizes[-1])
    if best:
        lines += [
            "",
            f"Best combination (fastest at batch {batch_sizes[-1]} keeping "
            f"≥ {KEEP_SHARE:.0%} of the teacher's accuracy): **{best}**.",
        ]
    lines += ["", "Made with:", ""] + [f"- `{c}`" for c in commands]
    return "\n".join(lines) + "\n"


def mcnemar_p_value(wins, losses):
    """Exact two-sided McNemar test: the chance of a split of the discordant
    pairs at least this uneven if both models were equally good."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(
        math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1))
        for k in range(min(wins, losses) + 1)
    )
    return min(1.0, 2 * tail / 2.0**n)


def twin_comparisons(variants, hits):
    """One line per distilled student: against its labels-only twin, on the
    same sentences (a paired test, sharper than comparing two accuracies)."""
    lines = []
    for v in variants:
        if not v.name.startswith("distilled ") or " + " in v.name:
            continue
        twin = v.name.removeprefix("distilled ") + ", labels only"
        if twin not in hits:
            continue
        mine, theirs = hits[v.name], hits[twin]
        wins = int(np.sum(mine & ~theirs))
        losses = int(np.sum(~mine & theirs))
        gain = 100 * (np.mean(mine) - np.mean(theirs))
        lines.append(
            f"- {v.name} vs its labels-only twin: {gain:+.2f} pt; right where the twin "
            f"is wrong on {wins} sentences, wrong where it is right on {losses} "
            f"(exact McNemar p = {mcnemar_p_value(wins, losses):.2g})."
        )
    return lines


def best_combination(variants, timings, accuracies, batch_size):
    teacher_accuracy = accuracies[TEACHER]
    speeds = {
        r.precision: _median(r.speedups) for r in timings if r.batch_size == batch_size
    }
    candidates = [
        v.name
        for v in variants
        if " + " in v.name
        and v.name in speeds
        and accuracies[v.name] >= KEEP_SHARE * teacher_accuracy
    ]
    return max(candidates, key=speeds.get, default=None)


def main(registry):
    from keras_bert_impl.data.glue import read_tsv_examples
    from benchmarks.precision import (
        calibration_sample,
        correct,
        time_precisions,
    )
    from benchmarks import benchmarks_file

    machine = benchmarks_file.machine_line()
    command.require_flags(registry, "teacher", "train_file", "eval_file", "work_dir")
    try:
        batch_sizes = [int(b) for b in registry.batch_sizes]
    except ValueError:
        raise ValueError(
            f"--batch_sizes={','.join(registry.batch_sizes)}: expected comma-separated "
            "integers"
        ) from None
    for flag in ("teacher", "train_file", "eval_file"):
        if not os.path.isfile(registry[flag].value):
            raise ValueError(f"--{flag}={registry[flag].value} is not a file.")
    teacher = _load(registry.teacher)
    if teacher.preprocessor is None:
        raise ValueError(f"--teacher={registry.teacher} has no preprocessor.")
    examples = read_tsv_examples(
        registry.eval_file, label_vocabulary=teacher.label_names
    )
    texts, labels = list(examples.texts[0]), list(examples.labels)
    os.makedirs(registry.work_dir, exist_ok=True)

    calibration = calibration_sample(registry.train_file, registry.calibration_examples)
    variants = make_variants(registry, teacher, calibration)
    if registry.onnx:
        variants += onnx_variants(teacher, registry.work_dir)
    print(f"Accuracy of {len(variants)} variants on {len(texts)} sentences", flush=True)
    hits = {
        v.name: correct(v.model, texts, labels, preprocessed_by=teacher)
        for v in variants
    }
    accuracies = {name: float(np.mean(right)) for name, right in hits.items()}
    timed = {v.name: v.model for v in variants if v.timed}
    print(f"Timing {len(timed)} variants, batches {batch_sizes}", flush=True)
    timings = time_precisions(
        timed, texts[: registry.sentences], batch_sizes, registry.rounds
    )
    serving = {}
    if registry.serve:
        serving = serve_variants(
            variants, texts[:8], registry.work_dir, registry.server_version
        )
    settings = (
        f"`{shlex.join(['python', '-m', 'benchmarks.compression_tradeoff'] + sys.argv[1:])}`\n\n"
        f"Teacher {registry.teacher}; accuracy on all {len(texts)} sentences of "
        f"{registry.eval_file}; speed on its first {registry.sentences} sentences in "
        f"file order, each batch cut to its longest sentence, {registry.rounds} "
        f"interleaved rounds, median (min-max) of per-round ratios to the teacher; "
        f"{os.cpu_count()} CPU cores shared with other jobs. Servable: the SavedModel "
        f"passes check_servables for TF Serving {registry.server_version} (outputs equal "
        "to the Keras model's within 1e-4, 1e-3 for int8, 1e-2 for bfloat16 and "
        "int8_onednn; int8_onednn is checked for the first release with its op) and one "
        "kbi-serve answers over gRPC; in brackets the largest |probability| difference "
        "from the variant's own predict_text on 8 sentences."
    )
    commands = sorted({v.command for v in variants if v.command})
    report = report_markdown(
        variants,
        timings,
        accuracies,
        serving,
        settings,
        commands,
        registry.server_version,
    )
    report += "\n" + "\n".join(twin_comparisons(variants, hits)) + "\n"
    benchmarks_file.publish(registry.benchmarks_file, SECTION_HEADING, report, machine)
    problems = [name for name, (ok, *_) in serving.items() if not ok]
    if problems:
        for name in problems:
            print(f"{name} is not servable:\n{serving[name][2]}", file=sys.stderr)
        return 1
    return 0


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)


if __name__ == "__main__":
    raise SystemExit(run())
