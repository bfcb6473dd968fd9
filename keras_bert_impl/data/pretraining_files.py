"""Text files in, pretraining TFRecord files out: the whole job.

1. Open the output files (an unwritable output fails before any work).
2. Read and tokenize the input in large batches (`corpus.build_corpus`).
3. Cut the work into units, one per pass (`dupe_factor` passes) and block of
   documents; each unit has its own random stream derived from the seed, so
   the files are byte-identical whatever the number of worker processes.
   Workers create the instances (`pretraining.create_instances`) and
   serialize them (`example_encoder.serialize_examples`).
4. Shuffle all instances with one more seeded stream and write them
   round-robin over the output files, as the reference does.
5. Return (and optionally write as JSON) the statistics.

Like the reference, all serialized instances are held in memory until the
final shuffle (about 0.7 KB each at length 128): split a large corpus into
several input shards and run once per shard.
"""

import dataclasses
import json
import multiprocessing
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging

from keras_bert_impl.data import pretraining, recipe_masking
from keras_bert_impl.data.corpus import build_corpus, usable_cores
from keras_bert_impl.data.example_encoder import serialize_examples
from keras_bert_impl.data.tfrecord import ShardedRecordWriter

# Documents are grouped into blocks of at least this many tokens; one block
# for one pass is one unit of work.
BLOCK_TOKENS = 1 << 16

# Set in each worker process by `_start_worker`.
_worker_job = None


def _start_worker(corpus, recipe, vocab, random_seed):
    global _worker_job
    _worker_job = (corpus, recipe, vocab, random_seed)


def _run_unit(unit):
    """Creates and serializes the instances of one (pass, block) unit."""
    corpus, recipe, vocab, random_seed = _worker_job
    pass_index, block_index, first_document, end_document = unit
    batch = pretraining.create_instances(
        corpus,
        range(first_document, end_document),
        recipe,
        vocab,
        pretraining.unit_seed_sequence(random_seed, pass_index, block_index),
    )
    counts = pretraining.count_instance_statistics(batch, vocab.mask_id)
    return serialize_examples(batch.features()), counts


def _process_context():
    # Worker processes only run NumPy. Forking shares the corpus without a
    # copy and skips re-importing TensorFlow (seconds per worker); spawn is
    # the fallback where fork does not exist.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _run_units(units, job, workers, dupe_factor):
    """Runs all units, in order, on `workers` processes; logs progress."""
    results = []
    started = time.perf_counter()
    units_per_pass = len(units) // dupe_factor

    def log_progress():
        if len(results) % units_per_pass == 0:
            logging.info(
                "Pass %d/%d done: %d instances so far (%.1f s).",
                len(results) // units_per_pass,
                dupe_factor,
                sum(counts["instances"] for _, counts in results),
                time.perf_counter() - started,
            )

    if workers == 1:
        _start_worker(*job)
        for unit in units:
            results.append(_run_unit(unit))
            log_progress()
        return results
    with _process_context().Pool(
        workers, initializer=_start_worker, initargs=job
    ) as pool:
        for result in pool.imap(_run_unit, units):
            results.append(result)
            log_progress()
    return results


def cpu_seconds():
    """CPU time of this process and its finished children (user + system)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class _StageClock:
    """Wall and CPU seconds (this process and its workers) per named stage."""

    def __init__(self):
        self.wall = {}
        self.cpu = {}
        self._last = (time.perf_counter(), cpu_seconds())

    def mark(self, stage):
        """Ends `stage` now; the next stage starts."""
        now = (time.perf_counter(), cpu_seconds())
        self.wall[stage] = now[0] - self._last[0]
        self.cpu[stage] = now[1] - self._last[1]
        self._last = now


def create_pretraining_files(
    input_files,
    output_files,
    tokenizer,
    recipe,
    *,
    dupe_factor=10,
    random_seed=12345,
    input_format="sentences",
    invalid_utf8="replace",
    workers=None,
    stats_file=None,
):
    """Creates BERT pretraining TFRecords from text files.

    Args:
        input_files: list of text files (see `corpus` for the format).
        output_files: list of TFRecord files; instances go round-robin.
        tokenizer: a `keras_bert_impl.text.Tokenizer`.
        recipe: a `pretraining.PretrainingRecipe`.
        dupe_factor: passes over the corpus, each with different masks and
            pairings.
        random_seed: seeds everything; same seed and inputs, same bytes.
        input_format: "sentences" or "raw".
        invalid_utf8: "replace" (count and warn) or "error".
        workers: processes creating instances; default: the usable cores.
        stats_file: if given, the statistics are also written there as JSON.

    Returns:
        A dict of statistics (see `BENCHMARKS.md` for an example).
    """
    if dupe_factor < 1:
        raise ValueError(f"dupe_factor={dupe_factor}; it must be >= 1.")
    if not input_files:
        raise ValueError("No input file given.")
    vocab = recipe_masking.MaskingVocabulary.from_tokens(tokenizer.vocabulary)
    warnings = []
    capped = recipe.capped_mask_rate_warning()
    if capped:
        logging.warning(capped)
        warnings.append(capped)

    clock = _StageClock()
    with ShardedRecordWriter(output_files) as writer:
        corpus, reports = build_corpus(
            input_files, tokenizer, input_format, invalid_utf8
        )
        clock.mark("read_and_tokenize")
        warnings.extend(filter(None, (r.invalid_utf8_warning() for r in reports)))
        if corpus.num_documents == 1:
            message = "The input holds a single document: random-next segments come from it too."
            logging.warning(message)
            warnings.append(message)
        units = [
            (pass_index, block_index, first, end)
            for pass_index in range(dupe_factor)
            for block_index, (first, end) in enumerate(
                corpus.document_blocks(BLOCK_TOKENS)
            )
        ]
        workers = max(1, min(workers or usable_cores(), len(units)))
        logging.info(
            "Corpus: %d documents, %d sentences, %d tokens (read in %.1f s); %d units of work "
            "on %d process(es).",
            corpus.num_documents,
            corpus.num_sentences,
            corpus.num_tokens,
            clock.wall["read_and_tokenize"],
            len(units),
            workers,
        )
        results = _run_units(
            units, (corpus, recipe, vocab, random_seed), workers, dupe_factor
        )
        clock.mark("create_instances")

        records = [record for unit_records, _ in results for record in unit_records]
        order = np.random.default_rng(pretraining.shuffle_seed_sequence(random_seed))
        for index in order.permutation(len(records)):
            writer.write(records[index])
    clock.mark("shuffle_and_write")

    counts = {key: sum(c[key] for _, c in results) for key in results[0][1]}
    stats = {
        "input_files": [vars(r) for r in reports],
        "output_files": list(output_files),
        "recipe": {
            **dataclasses.asdict(recipe),
            "dupe_factor": dupe_factor,
            "random_seed": random_seed,
            "input_format": input_format,
        },
        "documents": corpus.num_documents,
        "sentences": corpus.num_sentences,
        "corpus_tokens": corpus.num_tokens,
        **counts,
        **_fractions(counts),
        "invalid_utf8_sequences": sum(r.invalid_utf8_sequences for r in reports),
        "warnings": warnings,
        "workers": workers,
        **_throughput(sum(r.bytes for r in reports), clock),
    }
    if stats_file:
        with tf.io.gfile.GFile(stats_file, "w") as f:
            json.dump(stats, f, indent=2)
            f.write("\n")
    return stats


def _fractions(counts):
    masked = max(counts["masked_tokens"], 1)
    return {
        "masked_fraction": counts["masked_tokens"] / max(counts["tokens"], 1),
        "masked_lm_split": {
            "mask": counts["replaced_by_mask"] / masked,
            "keep": counts["kept_original"] / masked,
            "random": counts["replaced_by_random"] / masked,
        },
        "random_next_fraction": counts["random_next"] / max(counts["instances"], 1),
    }


def _throughput(input_bytes, clock):
    seconds = sum(clock.wall.values())
    busy_seconds = sum(clock.cpu.values())
    return {
        "seconds": seconds,
        "cpu_seconds": busy_seconds,
        "stage_seconds": clock.wall,
        "stage_cpu_seconds": clock.cpu,
        "input_megabytes": input_bytes / 1e6,
        "megabytes_per_second": input_bytes / 1e6 / seconds,
        # Per core: MB per CPU-second of all processes, which stays meaningful
        # on a machine shared with other jobs.
        "megabytes_per_second_per_core": input_bytes / 1e6 / max(busy_seconds, 1e-9),
    }
