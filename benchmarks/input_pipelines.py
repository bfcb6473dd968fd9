"""Throughput of the pretraining input pipelines against a reference-style peer.

Writes synthetic pretraining TFRecords (google-research/bert features), then
times, alternating in one process:
- `reference`: what google-research/bert's `run_pretraining.input_fn_builder`
  does: `parse_single_example` of each record with a fixed-length spec,
  int64 → int32, then batch (same interleave, shuffle and batch settings);
- the same records batched first and parsed once per batch without length
  checks (the fastest layout, which cannot name a bad file);
- `pretraining_dataset`: this package's reader (length checks naming the file);
- `dynamic_masking_dataset`: the same records masked in the pipeline, per-piece
  and whole-word.

Prints a markdown table of records per CPU second and per wall-clock second
(medians over repeats) and the ratios to the reference; with --benchmarks_file
it also replaces its own section there.

    python -m benchmarks.input_pipelines --records=20000 --repeats=5
"""

import os
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import flags

from benchmarks import benchmarks_file
from keras_bert_impl.cli import command

from keras_bert_impl.data.masking import MaskedLMMasker
from keras_bert_impl.data.pretraining_reader import (
    dynamic_masking_dataset,
    pretraining_dataset,
)


def define_flags(f):
    """Defined when the tool runs, so importing this module adds no flags."""
    flags.DEFINE_integer(
        "records", 20_000, "Synthetic records to write (4 files).", flag_values=f
    )
    flags.DEFINE_integer("seq_length", 128, "Sequence length.", flag_values=f)
    flags.DEFINE_integer("max_predictions", 20, "Prediction slots.", flag_values=f)
    flags.DEFINE_integer("batch_size", 32, "Batch size.", flag_values=f)
    flags.DEFINE_integer("repeats", 5, "Timed passes per pipeline.", flag_values=f)
    benchmarks_file.define_flag(f)


_VOCAB_SIZE = 30522
_SHUFFLE_BUFFER = 1000
_CYCLE_LENGTH = 4
_SECTION = "## Input pipelines (pretraining TFRecords)"


def _write_files(folder, num_records, seq_length, max_predictions):
    rng = np.random.default_rng(0)
    paths = [os.path.join(folder, f"bench-{i}.tfrecord") for i in range(4)]
    for shard, path in enumerate(paths):
        with tf.io.TFRecordWriter(path) as writer:
            for _ in range(num_records // len(paths)):
                length = int(rng.integers(seq_length // 2, seq_length + 1))
                ids = np.zeros(seq_length, np.int64)
                ids[:length] = rng.integers(1000, _VOCAB_SIZE, size=length)
                ids[0], ids[length - 1] = 101, 102
                mask = (np.arange(seq_length) < length).astype(np.int64)
                positions = np.sort(
                    rng.choice(np.arange(1, length - 1), max_predictions, False)
                )
                feature = {
                    "input_ids": ids,
                    "input_mask": mask,
                    "segment_ids": np.zeros(seq_length, np.int64),
                    "masked_lm_positions": positions,
                    "masked_lm_ids": ids[positions],
                    "next_sentence_labels": [shard % 2],
                }
                example = {
                    k: tf.train.Feature(int64_list=tf.train.Int64List(value=list(v)))
                    for k, v in feature.items()
                }
                example["masked_lm_weights"] = tf.train.Feature(
                    float_list=tf.train.FloatList(value=[1.0] * max_predictions)
                )
                writer.write(
                    tf.train.Example(
                        features=tf.train.Features(feature=example)
                    ).SerializeToString()
                )
    return paths


def _fixed_length_spec(seq_length, max_predictions):
    spec = {
        name: tf.io.FixedLenFeature([seq_length], tf.int64)
        for name in ("input_ids", "input_mask", "segment_ids")
    }
    for name in ("masked_lm_positions", "masked_lm_ids"):
        spec[name] = tf.io.FixedLenFeature([max_predictions], tf.int64)
    spec["masked_lm_weights"] = tf.io.FixedLenFeature([max_predictions], tf.float32)
    spec["next_sentence_labels"] = tf.io.FixedLenFeature([1], tf.int64)
    return spec


def _to_int32(features):
    return {
        k: v if v.dtype == tf.float32 else tf.cast(v, tf.int32)
        for k, v in features.items()
    }


def _shuffled_records(paths):
    files = tf.data.Dataset.from_tensor_slices(paths).shuffle(len(paths))
    records = files.interleave(
        tf.data.TFRecordDataset,
        cycle_length=_CYCLE_LENGTH,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )
    return records.shuffle(_SHUFFLE_BUFFER)


def _reference_dataset(paths, batch_size, seq_length, max_predictions):
    """google-research/bert's input_fn: parse each record, then batch."""
    spec = _fixed_length_spec(seq_length, max_predictions)
    dataset = _shuffled_records(paths).map(
        lambda record: _to_int32(tf.io.parse_single_example(record, spec)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _unchecked_batched_dataset(paths, batch_size, seq_length, max_predictions):
    """Batch first, then one fixed-length parse per batch (no file names)."""
    spec = _fixed_length_spec(seq_length, max_predictions)
    dataset = _shuffled_records(paths).batch(batch_size, drop_remainder=True)
    dataset = dataset.map(
        lambda records: _to_int32(tf.io.parse_example(records, spec)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def _records_per_second(dataset, batch_size):
    """(records per wall-clock second, records per CPU second of the process).

    CPU time counts every tf.data thread and is far less disturbed than wall
    time by other processes on a shared machine.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    records = batch_size * sum(1 for _ in dataset)
    return (
        records / (time.perf_counter() - wall),
        records / (time.process_time() - cpu),
    )


def main(flag_values):
    machine = benchmarks_file.machine_line()
    seq_length, max_predictions = flag_values.seq_length, flag_values.max_predictions
    batch_size = flag_values.batch_size
    with tempfile.TemporaryDirectory() as folder:
        paths = _write_files(folder, flag_values.records, seq_length, max_predictions)
        pattern = os.path.join(folder, "bench-*.tfrecord")
        common = {
            "repeat": False,
            "shuffle_buffer_size": _SHUFFLE_BUFFER,
            "cycle_length": _CYCLE_LENGTH,
        }
        vocabulary = [f"w{i}" for i in range(_VOCAB_SIZE)]
        vocabulary[:5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        vocabulary[5:3000] = [f"##p{i}" for i in range(5, 3000)]
        maskers = {
            wwm: MaskedLMMasker.from_vocabulary(
                vocabulary, max_predictions, whole_word_mask=wwm
            )
            for wwm in (False, True)
        }
        pipelines = {
            "reference (FixedLenFeature parse)": lambda: _reference_dataset(
                paths, batch_size, seq_length, max_predictions
            ),
            "batched FixedLenFeature parse, no length check": lambda: (
                _unchecked_batched_dataset(
                    paths, batch_size, seq_length, max_predictions
                )
            ),
            "pretraining_dataset": lambda: pretraining_dataset(
                pattern, batch_size, seq_length, max_predictions, **common
            ),
            "dynamic_masking_dataset": lambda: dynamic_masking_dataset(
                pattern, batch_size, seq_length, maskers[False], **common
            ),
            "dynamic_masking_dataset, whole-word": lambda: dynamic_masking_dataset(
                pattern, batch_size, seq_length, maskers[True], **common
            ),
        }
        rates = {name: [] for name in pipelines}
        for make in pipelines.values():
            _records_per_second(make().take(20), batch_size)  # warm-up
        for _ in range(flag_values.repeats):
            for name, make in pipelines.items():
                rates[name].append(_records_per_second(make(), batch_size))
    medians = {
        name: [statistics.median(v[i] for v in values) for i in (0, 1)]
        for name, values in rates.items()
    }
    reference = medians["reference (FixedLenFeature parse)"]
    lines = [
        (
            f"Synthetic records: {flag_values.records}, seq {seq_length}, "
            f"{max_predictions} predictions, batch {batch_size}, shuffle buffer "
            f"{_SHUFFLE_BUFFER}, {os.cpu_count()} CPU cores; median of "
            f"{flag_values.repeats} alternating passes in one process. Records per CPU "
            "second (all threads of the process) is the steadier figure on a "
            "shared machine."
        ),
        "",
        "| pipeline | records/CPU-s | vs reference | records/s (wall) | vs reference |",
        "|---|---|---|---|---|",
    ]
    for name, (wall, cpu) in medians.items():
        lines.append(
            f"| {name} | {cpu:,.0f} | {cpu / reference[1]:.2f}x "
            f"| {wall:,.0f} | {wall / reference[0]:.2f}x |"
        )
    command_line = (
        "python -m benchmarks.input_pipelines "
        f"--records={flag_values.records} --repeats={flag_values.repeats}"
    )
    if flag_values.benchmarks_file:
        command_line += f" --benchmarks_file={flag_values.benchmarks_file}"
    lines += [
        "",
        (
            "The per-record length check and the file index carried with each "
            "record (so that a bad record is reported with its file) are what "
            "separate the reader from the unchecked batch-first parse; masking in "
            "the pipeline then costs about as much as reading."
        ),
        "",
        f"Command: `{command_line}`",
    ]
    body = "\n".join(lines) + "\n"
    benchmarks_file.publish(flag_values.benchmarks_file, _SECTION, body, machine)


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)


if __name__ == "__main__":
    raise SystemExit(run())
