"""Checks of pretraining TFRecord files before a run reads them: whole records
(TensorFlow's reader stops early at a truncated one, silently) and token ids
within the vocabulary (ids past the embedding table go unnoticed on
accelerators)."""

import struct

import tensorflow as tf

from keras_bert_impl.text.file_patterns import expand_file_patterns

# Records of each file whose token ids are checked before training: enough to
# catch records made with another vocabulary, without reading a whole corpus.
CHECKED_RECORDS = 10_000


def check_record_files(file_patterns):
    """Walks every record header of every file: a truncated file (a record
    whose length runs past the end) is an error naming the file, where
    TensorFlow's reader would silently stop early.

    Returns:
        The number of records per file.
    """
    counts = {}
    for path in expand_file_patterns(file_patterns):
        size = tf.io.gfile.stat(path).length
        offset, records = 0, 0
        with tf.io.gfile.GFile(path, "rb") as f:
            while offset < size:
                header = f.read(12) if offset + 12 <= size else b""
                if len(header) < 12:
                    raise ValueError(
                        f"{path}: truncated TFRecord file: {size - offset} stray "
                        f"byte(s) after record {records} (byte {offset})."
                    )
                (length,) = struct.unpack("<Q", header[:8])
                end = offset + 12 + length + 4
                if end > size:
                    raise ValueError(
                        f"{path}: truncated TFRecord file: record {records} at byte "
                        f"{offset} needs {length} bytes, the file ends {size - offset - 12} "
                        "bytes later."
                    )
                f.seek(end)
                offset, records = end, records + 1
        counts[path] = records
    return counts


def check_record_ids(file_patterns, vocab_size, vocabulary, limit=None):
    """The token ids of the first `limit` (default `CHECKED_RECORDS`)
    records of every file must be below `vocab_size`: records made with
    another vocabulary would index past the embedding table (silently, on
    accelerators).

    Raises:
        ValueError: naming the file, the id and `vocabulary` (its source).
    """
    spec = {
        name: tf.io.VarLenFeature(tf.int64) for name in ("input_ids", "masked_lm_ids")
    }
    records = CHECKED_RECORDS if limit is None else limit
    for path in expand_file_patterns(file_patterns):
        try:
            batches = [
                tf.io.parse_example(batch, spec)
                for batch in tf.data.TFRecordDataset(path).take(records).batch(1000)
            ]
        except tf.errors.OpError as e:
            raise ValueError(
                f"{path}: unreadable record: {e.message.strip().splitlines()[0]}"
            ) from None
        for parsed in batches:
            for name, ids in parsed.items():
                largest = int(tf.reduce_max(ids.values)) if tf.size(ids.values) else 0
                if largest >= vocab_size:
                    raise ValueError(
                        f"{path}: {name} holds token id {largest}, past the "
                        f"{vocab_size} tokens of {vocabulary}: the records were "
                        "made with another vocabulary; make them again with "
                        "kbi-create-pretraining-data --vocab_file=<this vocabulary>."
                    )
