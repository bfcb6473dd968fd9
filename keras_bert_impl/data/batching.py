"""Batches of examples already held in memory, as every task reader yields them."""

import tensorflow as tf

# Training batches of length-bucketed text are grouped in windows of this many
# batches: each window of shuffled texts is sorted by length and cut into
# batches, whose order is shuffled again (Hugging Face's `group_by_length`).
# Random batches of short texts almost always hold one long text and pad to the
# top bucket; sorted, most batches fit a small one. The window is small beside
# an epoch, so batches still mix the whole dataset from epoch to epoch.
BATCHES_PER_LENGTH_GROUP = 8


def batched_examples(
    elements,
    num_examples,
    batch_size,
    *,
    shuffle,
    seed,
    repeat,
    drop_remainder,
    group_by_length=False,
):
    """`from_tensor_slices(elements)` → optional full shuffle → repeat → batch.

    Args:
        elements: a nest of arrays/tensors with `num_examples` rows.
        num_examples: rows in `elements` (the shuffle buffer holds them all).
        batch_size: rows per batch.
        shuffle: reshuffle all rows every epoch.
        seed: makes the shuffle reproducible.
        repeat: repeat forever.
        drop_remainder: drop a last, smaller batch (static batch size).
        group_by_length: batches of texts of similar length
            (`length_grouped`); `elements` are text examples.

    Returns:
        The batched, unprefetched `tf.data.Dataset`.
    """
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        dataset = dataset.shuffle(
            num_examples, seed=seed, reshuffle_each_iteration=True
        )
    if repeat:
        dataset = dataset.repeat()
    if group_by_length:
        return length_grouped(dataset, batch_size, drop_remainder, seed)
    return dataset.batch(batch_size, drop_remainder=drop_remainder)


def length_grouped(examples, batch_size, drop_remainder=False, seed=None):
    """Shuffled, unbatched text examples in batches of similar length (see
    `BATCHES_PER_LENGTH_GROUP`), every example once per pass.

    Args:
        examples: elements `text`, `(text, text_pair)`, or those followed by
            labels (and weights).
    """
    windows = examples.batch(batch_size * BATCHES_PER_LENGTH_GROUP)
    return (
        windows.map(sorted_by_length, tf.data.AUTOTUNE)
        .rebatch(batch_size, drop_remainder=drop_remainder)
        .shuffle(BATCHES_PER_LENGTH_GROUP, seed=seed)
    )


def sorted_by_length(*element):
    """A window's examples in order of text length (bytes; text pairs summed),
    a cheap stand-in for token counts that needs no tokenization."""
    texts = element[0] if isinstance(element[0], tuple) else (element[0],)
    length = tf.add_n([tf.strings.length(text) for text in texts])
    order = tf.argsort(length, stable=True)
    return tf.nest.map_structure(lambda part: tf.gather(part, order), element)
