"""Pretraining TFRecord files: the feature spec and writing shards.

Files keep google-research/bert's feature names, dtypes and lengths, so they
interoperate with its `run_pretraining.py` and with every reader of that
format.
"""

import re
import struct

import tensorflow as tf

# `path@N` names N shards `path-00000-of-0000N` ... (the TFDS / Lingvo style).
_SHARD_SPEC = re.compile(r"^(?P<base>.+)@(?P<count>\d+)$")


def pretraining_feature_spec(max_seq_length, max_predictions_per_seq):
    """google-research/bert's `tf.io.parse_example` spec for pretraining records."""
    return {
        "input_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "masked_lm_positions": tf.io.FixedLenFeature(
            [max_predictions_per_seq], tf.int64
        ),
        "masked_lm_ids": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
        "masked_lm_weights": tf.io.FixedLenFeature(
            [max_predictions_per_seq], tf.float32
        ),
        "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
    }


def expand_output_files(spec):
    """Turns an `--output_file` value into the list of files to write.

    Args:
        spec: comma-separated paths; an item `PATH@N` stands for the N shards
            `PATH-00000-of-0000N` ... `PATH-0000(N-1)-of-0000N`.

    Returns:
        A list of distinct paths.

    Raises:
        ValueError: on an empty item, `@0`, or a path listed twice.
    """
    paths = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            raise ValueError(f"Output file list {spec!r} has an empty item.")
        match = _SHARD_SPEC.match(item)
        if match is None:
            paths.append(item)
            continue
        count = int(match["count"])
        if count < 1:
            raise ValueError(
                f"Output shard spec {item!r} asks for {count} shards; use @1 or more."
            )
        paths.extend(f"{match['base']}-{i:05d}-of-{count:05d}" for i in range(count))
    duplicates = sorted({p for p in paths if paths.count(p) > 1})
    if duplicates:
        raise ValueError(
            f"Output file(s) listed more than once: {', '.join(duplicates)}."
        )
    return paths


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def _masked_crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def check_tfrecord_file(path):
    """Raises ValueError naming `path` unless it is empty or starts like a TFRecord file.

    A TFRecord file starts with the first record's length (8 bytes) and its
    masked CRC-32C (4 bytes); a text or JSON file put among the shards fails
    this at once, instead of as an anonymous `DataLossError` mid-training.
    """
    with tf.io.gfile.GFile(path, "rb") as f:
        header = f.read(12)
    if not header:
        return
    if len(header) < 12 or struct.unpack("<I", header[8:])[0] != _masked_crc32c(
        header[:8]
    ):
        raise ValueError(
            f"{path} is not a TFRecord file (its first record header is invalid). "
            "Give only the record files, e.g. the shards 'train.tfrecord-*' of "
            "--output_file=train.tfrecord@N."
        )


def default_stats_file(spec):
    """Where the statistics of `--output_file=spec` go by default.

    Named after the first output item without its `@N` (`train.tfrecord@8` →
    `train.tfrecord.stats.json`), so the shards' glob (`train.tfrecord-*`)
    never matches it.
    """
    first = spec.split(",")[0].strip()
    match = _SHARD_SPEC.match(first)
    return (match["base"] if match else first) + ".stats.json"


class ShardedRecordWriter:
    """Writes records round-robin over several TFRecord files, like the reference.

    All files are opened (and parent directories created) on entry, so an
    unwritable output fails before any work is done. If the `with` block
    raises, the partly written files are removed.

    Args:
        paths: the output files.
    """

    def __init__(self, paths):
        self._paths = list(paths)
        self._writers = []
        self._next = 0

    def __enter__(self):
        for path in self._paths:
            try:
                directory = path.rsplit("/", 1)[0] if "/" in path else ""
                if directory:
                    tf.io.gfile.makedirs(directory)
                self._writers.append(tf.io.TFRecordWriter(path))
            except (tf.errors.OpError, OSError) as error:
                self._close(remove=True)
                raise OSError(f"Cannot write output file {path}: {error}") from error
        return self

    def write(self, record):
        self._writers[self._next].write(record)
        self._next = (self._next + 1) % len(self._writers)

    def __exit__(self, error_type, error, traceback):
        self._close(remove=error_type is not None)
        return False

    def _close(self, remove):
        for writer in self._writers:
            writer.close()
        if remove:
            for path in self._paths[: len(self._writers)]:
                if tf.io.gfile.exists(path):
                    tf.io.gfile.remove(path)
        self._writers = []
