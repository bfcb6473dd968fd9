"""tf.data pipelines over pretraining TFRecords.

The files hold `tf.train.Example`s with google-research/bert's features:
`input_ids`, `input_mask`, `segment_ids` (int64 `[seq_length]`),
`masked_lm_positions`, `masked_lm_ids` (int64 `[max_predictions_per_seq]`),
`masked_lm_weights` (float `[max_predictions_per_seq]`) and
`next_sentence_labels` (int64 `[1]`, 1 = random next).

Both pipelines yield `(x, y)` batches in the layout the pretrainer trains on:
`x = {token_ids, segment_ids, padding_mask, mask_positions}` (int32) and
`y = {masked_lm_ids (int32), masked_lm_weights (float32),
next_sentence_labels (int32 [batch])}`. Batches always have the full batch
size (`drop_remainder=True`) so every shape is static, as TPUs need.
"""

import logging

import tensorflow as tf

from keras_bert_impl.data.masking import MaskedLMMasker
from keras_bert_impl.data.tfrecord import check_tfrecord_file
from keras_bert_impl.text.file_patterns import expand_file_patterns

SEQUENCE_FEATURES = ("input_ids", "input_mask", "segment_ids")
PREDICTION_FEATURES = ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights")
LABEL_FEATURE = "next_sentence_labels"
_FLOAT_FEATURES = ("masked_lm_weights",)

_LOGGER = logging.getLogger(__name__)

DEFAULT_SHUFFLE_BUFFER_SIZE = 10_000
# Files read at once: enough to mix documents across shards and to keep the
# readers busy, without one open file (and read buffer) per shard.
DEFAULT_CYCLE_LENGTH = 8


def _check_record_files(files):
    for path in files:
        check_tfrecord_file(path)
    # Reading nothing forever (repeat over empty files) would hang training.
    for path in files:
        if tf.io.gfile.stat(path).length > 0:
            return
    raise ValueError(
        f"Every input file is empty: {files[:5]}{'...' if len(files) > 5 else ''}."
    )


def _as_model_dtype(value):
    return value if value.dtype == tf.float32 else tf.cast(value, tf.int32)


def _parse_batch(serialized, file_index, files, expected_lengths, optional=()):
    """Parses a batch of records, checking every record's feature lengths.

    Features are parsed as ragged so that a record of the wrong length can be
    reported with its file (a fixed-length spec would fail inside the parser
    without saying where). Once every length is right, the flat values are
    the dense batch, so the check costs no padding. Optional features come
    back dense, zero-padded to the longest record of the batch.

    Args:
        serialized: tf.string `[batch]` records.
        file_index: int32 `[batch]`, each record's index into `files`.
        files: the list of input files.
        expected_lengths: feature name → required length.
        optional: further features, any length.
    """
    spec = {
        name: tf.io.RaggedFeature(
            tf.float32 if name in _FLOAT_FEATURES else tf.int64,
            row_splits_dtype=tf.int32,
        )
        for name in tuple(expected_lengths) + tuple(optional)
    }
    parsed = tf.io.parse_example(serialized, spec)
    names = list(expected_lengths)
    # One check for all features: [num_features, batch] actual vs expected.
    actual = tf.stack([parsed[name].row_lengths() for name in names])
    expected = tf.constant([expected_lengths[name] for name in names], tf.int32)
    wrong = tf.not_equal(actual, expected[:, tf.newaxis])
    first_wrong = tf.argmax(
        tf.reshape(tf.cast(wrong, tf.int32), [-1]), output_type=tf.int32
    )
    feature, row = first_wrong // tf.shape(actual)[1], first_wrong % tf.shape(actual)[1]
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(wrong)),
        [
            "Pretraining record in",
            tf.gather(tf.constant(files), file_index[row]),
            "has feature",
            tf.gather(tf.constant(names), feature),
            "of length",
            actual[feature, row],
            "but",
            expected[feature],
            (
                "was expected (check seq_length / max_predictions_per_seq against the "
                "flags that wrote the file)."
            ),
        ],
    )
    static_batch = serialized.shape[0] if serialized.shape[0] is not None else -1
    features = {}
    with tf.control_dependencies([check]):
        for name in names:
            dense = tf.reshape(
                parsed[name].values, [static_batch, expected_lengths[name]]
            )
            features[name] = _as_model_dtype(dense)
    for name in optional:
        features[name] = _as_model_dtype(parsed[name].to_tensor())
    return features


def _record_batches(
    file_patterns,
    batch_size,
    *,
    shuffle,
    seed,
    repeat,
    input_context,
    shuffle_buffer_size,
    cycle_length,
):
    """Batches of (serialized record, index of its file), and the file list.

    Records are parsed after batching, one vectorised parse per batch; the
    file index travels with each record so that a bad record can be named.
    """
    files = expand_file_patterns(file_patterns)
    _check_record_files(files)
    batch_size = _batch_size_for(batch_size, input_context)
    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    shard_files = num_pipelines > 1 and len(files) >= num_pipelines
    if num_pipelines > 1 and not shard_files:
        _LOGGER.warning(
            "%d input pipelines but only %d files: every pipeline reads all files "
            "and keeps one record in %d. Write at least one shard per pipeline.",
            num_pipelines,
            len(files),
            num_pipelines,
        )
    dataset = tf.data.Dataset.from_tensor_slices((files, tf.range(len(files))))
    files_here = len(files)
    if shard_files:
        # Shard the sorted list before shuffling so the shares are disjoint.
        dataset = dataset.shard(num_pipelines, pipeline_id)
        files_here = len(files[pipeline_id::num_pipelines])
    if shuffle:
        dataset = dataset.shuffle(files_here, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.interleave(
        # Zipping with the repeated index is cheaper than a per-record map,
        # and an int is cheaper to carry through the shuffle than a string.
        lambda filename, index: tf.data.Dataset.zip(
            (
                tf.data.TFRecordDataset(filename),
                tf.data.Dataset.from_tensors(index).repeat(),
            )
        ),
        cycle_length=min(files_here, cycle_length),
        num_parallel_calls=tf.data.AUTOTUNE,
        # Sloppy (faster) ordering unless a seed asks for reproducibility.
        deterministic=(not shuffle) or seed is not None,
    )
    if num_pipelines > 1 and not shard_files:
        dataset = dataset.shard(num_pipelines, pipeline_id)
    if shuffle:
        dataset = dataset.shuffle(
            shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True
        )
    return dataset.batch(batch_size, drop_remainder=True), files


def _batch_size_for(batch_size, input_context):
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if input_context is None:
        return batch_size
    return input_context.get_per_replica_batch_size(batch_size)


def _check_lengths(seq_length, max_predictions_per_seq):
    if seq_length < 2:
        raise ValueError(
            f"seq_length must be >= 2 ([CLS] and [SEP]), got {seq_length}."
        )
    if not 1 <= max_predictions_per_seq <= seq_length:
        raise ValueError(
            f"max_predictions_per_seq must be in [1, seq_length={seq_length}], "
            f"got {max_predictions_per_seq}."
        )


def pretraining_dataset(
    file_patterns,
    batch_size,
    seq_length,
    max_predictions_per_seq,
    *,
    shuffle=True,
    seed=None,
    repeat=True,
    input_context=None,
    shuffle_buffer_size=DEFAULT_SHUFFLE_BUFFER_SIZE,
    cycle_length=DEFAULT_CYCLE_LENGTH,
):
    """Reads statically masked pretraining TFRecords.

    Args:
        file_patterns: a glob, comma-separated globs, or a list of globs.
        batch_size: global batch size; with `input_context` each pipeline
            yields `input_context.get_per_replica_batch_size(batch_size)`.
        seq_length: length of `input_ids` in the files.
        max_predictions_per_seq: length of the `masked_lm_*` features.
        shuffle: shuffle the file order (every epoch) and the records.
        seed: makes shuffling and interleaving reproducible.
        repeat: repeat forever (training); `False` reads one pass.
        input_context: a `tf.distribute.InputContext` (from
            `strategy.distribute_datasets_from_function`): files are split
            across its input pipelines (records, when there are fewer files
            than pipelines).
        shuffle_buffer_size: records held by the shuffle buffer.
        cycle_length: files read concurrently.

    Returns:
        A `tf.data.Dataset` of `(x, y)` batches, see the module docstring.
        A pass over fewer records than a batch yields nothing.

    Raises:
        FileNotFoundError: a pattern matches no file.
        ValueError: bad sizes, or all files are empty. A record whose lengths
            differ from `seq_length` / `max_predictions_per_seq` fails the
            iteration with an InvalidArgumentError naming its file.
    """
    _check_lengths(seq_length, max_predictions_per_seq)
    lengths = {name: seq_length for name in SEQUENCE_FEATURES}
    lengths.update({name: max_predictions_per_seq for name in PREDICTION_FEATURES})
    lengths[LABEL_FEATURE] = 1

    def parse(serialized, file_index):
        return _to_model_layout(_parse_batch(serialized, file_index, files, lengths))

    dataset, files = _record_batches(
        file_patterns,
        batch_size,
        shuffle=shuffle,
        seed=seed,
        repeat=repeat,
        input_context=input_context,
        shuffle_buffer_size=shuffle_buffer_size,
        cycle_length=cycle_length,
    )
    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _to_model_layout(features):
    x = {
        "token_ids": features["input_ids"],
        "segment_ids": features["segment_ids"],
        "padding_mask": features["input_mask"],
        "mask_positions": features["masked_lm_positions"],
    }
    y = {
        "masked_lm_ids": features["masked_lm_ids"],
        "masked_lm_weights": features["masked_lm_weights"],
        "next_sentence_labels": tf.squeeze(features[LABEL_FEATURE], axis=1),
    }
    return x, y


def _unmask(features, seq_length):
    """Puts the original ids back at the positions a file already masked.

    Files written without predictions have empty `masked_lm_*` features
    (zero columns here), which leaves `input_ids` as they are.
    """
    weights = features.pop("masked_lm_weights")
    positions = features.pop("masked_lm_positions")
    original_ids = features.pop("masked_lm_ids")
    slots = tf.where(weights > 0)  # [k, 2]: (row, slot)
    columns = tf.gather_nd(positions, slots)
    check = tf.debugging.assert_less(
        columns,
        seq_length,
        message="masked_lm_positions points past the end of input_ids.",
    )
    with tf.control_dependencies([check]):
        features["input_ids"] = tf.tensor_scatter_nd_update(
            features["input_ids"],
            tf.stack([tf.cast(slots[:, 0], tf.int32), columns], axis=1),
            tf.gather_nd(original_ids, slots),
        )
    return features


def dynamic_masking_dataset(
    file_patterns,
    batch_size,
    seq_length,
    masker,
    *,
    shuffle=True,
    seed=None,
    repeat=True,
    input_context=None,
    shuffle_buffer_size=DEFAULT_SHUFFLE_BUFFER_SIZE,
    cycle_length=DEFAULT_CYCLE_LENGTH,
):
    """Reads pretraining TFRecords and masks them afresh in every batch.

    The files need `input_ids`, `input_mask`, `segment_ids` and
    `next_sentence_labels`. Files that were already masked (any
    `max_predictions_per_seq`) have their original tokens restored from
    `masked_lm_positions`/`masked_lm_ids` first, so the usual static files
    work too. Masks come from stateless ops seeded by a
    `tf.data.Dataset.random` stream that is re-randomised every iteration, so
    each epoch sees new masks; with `seed` the sequence of epochs reproduces.

    Args:
        file_patterns: a glob, comma-separated globs, or a list of globs.
        batch_size: global batch size (see `pretraining_dataset`).
        seq_length: length of `input_ids` in the files.
        masker: a `MaskedLMMasker`; its `max_predictions_per_seq` sets the
            number of prediction slots.
        shuffle, seed, repeat, input_context, shuffle_buffer_size,
            cycle_length: as in `pretraining_dataset`.

    Returns:
        A `tf.data.Dataset` of `(x, y)` batches, as `pretraining_dataset`.
    """
    if not isinstance(masker, MaskedLMMasker):
        raise TypeError(
            f"masker must be a MaskedLMMasker, got {type(masker).__name__}."
        )
    _check_lengths(seq_length, masker.max_predictions_per_seq)
    lengths = {name: seq_length for name in SEQUENCE_FEATURES}
    lengths[LABEL_FEATURE] = 1
    dataset, files = _record_batches(
        file_patterns,
        batch_size,
        shuffle=shuffle,
        seed=seed,
        repeat=repeat,
        input_context=input_context,
        shuffle_buffer_size=shuffle_buffer_size,
        cycle_length=cycle_length,
    )
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    if input_context is not None:
        # Different pipelines must not draw the same masks.
        seeds = seeds.shard(
            input_context.num_input_pipelines, input_context.input_pipeline_id
        )
    dataset = tf.data.Dataset.zip((dataset, seeds.batch(2)))

    def mask(records, batch_seed):
        serialized, file_index = records
        features = _parse_batch(
            serialized, file_index, files, lengths, optional=PREDICTION_FEATURES
        )
        features = _unmask(features, seq_length)
        masked = masker(
            features["input_ids"], batch_seed, padding_mask=features["input_mask"]
        )
        return _to_model_layout(
            dict(
                features,
                input_ids=masked["token_ids"],
                masked_lm_positions=masked["mask_positions"],
                masked_lm_ids=masked["masked_lm_ids"],
                masked_lm_weights=masked["masked_lm_weights"],
            )
        )

    dataset = dataset.map(mask, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
