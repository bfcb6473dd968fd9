"""Runs google-research/bert's `create_pretraining_data.py` under TensorFlow 2.

The reference is TensorFlow 1 code; this runner maps the few TF1 names it uses
(`tf.flags`, `tf.logging`, `tf.gfile`, `tf.python_io`, `tf.app`) onto their
TF2 equivalents, runs its `main`, and writes statistics in the same layout as
`kbi-create-pretraining-data` (read off the reference's own instances).

The reference code is not part of this package: point `--reference_dir` at a
checkout of https://github.com/google-research/bert (it needs `six`).

    python -m benchmarks.google_create_pretraining_data \\
        --reference_dir=/path/to/bert --stats_file=reference.json \\
        --input_file=corpus.txt --output_file=reference.tfrecord \\
        --vocab_file=vocab.txt --dupe_factor=5
"""

import json
import os
import sys
import time

# The reference defines its flags when imported, so its directory has to be
# known before absl parses the command line.
_OWN_FLAGS = ("--reference_dir=", "--stats_file=")


def _own_flag(prefix):
    values = [arg[len(prefix) :] for arg in sys.argv if arg.startswith(prefix)]
    return values[-1] if values else None


def _import_reference(reference_dir):
    import tensorflow as tf
    from absl import flags

    tf.flags = flags
    tf.logging = tf.compat.v1.logging
    tf.gfile = tf.compat.v1.gfile
    tf.python_io = tf.compat.v1.python_io
    tf.app = tf.compat.v1.app
    sys.path.insert(0, reference_dir)
    import create_pretraining_data

    return create_pretraining_data


def _statistics(captured, input_files, seconds, busy_seconds):
    instances = captured["instances"]
    documents = captured["documents"]
    tokens = sum(len(instance.tokens) for instance in instances)
    masked = as_mask = kept = 0
    for instance in instances:
        for position, label in zip(
            instance.masked_lm_positions, instance.masked_lm_labels
        ):
            shown = instance.tokens[position]
            masked += 1
            as_mask += shown == "[MASK]"
            kept += shown != "[MASK]" and shown == label
    input_megabytes = sum(os.path.getsize(path) for path in input_files) / 1e6
    return {
        "documents": len(documents),
        "sentences": sum(len(document) for document in documents),
        "corpus_tokens": sum(
            len(sentence) for document in documents for sentence in document
        ),
        "instances": len(instances),
        "tokens": tokens,
        "masked_tokens": masked,
        "masked_fraction": masked / tokens,
        "masked_lm_split": {
            "mask": as_mask / masked,
            "keep": kept / masked,
            "random": (masked - as_mask - kept) / masked,
        },
        "random_next_fraction": sum(i.is_random_next for i in instances)
        / len(instances),
        "seconds": seconds,
        "cpu_seconds": busy_seconds,
        "input_megabytes": input_megabytes,
        "megabytes_per_second": input_megabytes / seconds,
        "megabytes_per_second_per_core": input_megabytes / busy_seconds,
    }


def main():
    reference_dir = _own_flag("--reference_dir=")
    stats_file = _own_flag("--stats_file=")
    if not reference_dir or not os.path.exists(
        os.path.join(reference_dir, "create_pretraining_data.py")
    ):
        sys.exit(
            "--reference_dir must name a google-research/bert checkout holding "
            f"create_pretraining_data.py and tokenization.py (got {reference_dir!r})."
        )
    sys.argv = [arg for arg in sys.argv if not arg.startswith(_OWN_FLAGS)]
    reference = _import_reference(reference_dir)

    # Keep what the reference builds in memory to count it afterwards.
    captured = {}
    write_files = reference.write_instance_to_example_files
    from_document = reference.create_instances_from_document

    def write_and_capture(instances, *args):
        captured["instances"] = instances
        return write_files(instances, *args)

    def from_document_and_capture(all_documents, *args):
        captured.setdefault("documents", all_documents)
        return from_document(all_documents, *args)

    reference.write_instance_to_example_files = write_and_capture
    reference.create_instances_from_document = from_document_and_capture

    from absl import app

    def timed_main(argv):
        started, cpu_started = time.perf_counter(), sum(os.times()[:2])
        reference.main(argv)
        seconds, busy_seconds = (
            time.perf_counter() - started,
            sum(os.times()[:2]) - cpu_started,
        )
        input_files = reference.FLAGS.input_file.split(",")
        stats = _statistics(captured, input_files, seconds, busy_seconds)
        print(json.dumps(stats, indent=2))
        if stats_file:
            with open(stats_file, "w", encoding="utf-8") as f:
                json.dump(stats, f, indent=2)

    app.run(timed_main)


if __name__ == "__main__":
    main()
