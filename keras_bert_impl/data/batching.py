"""Batches of examples already held in memory, as every task reader yields them."""

import tensorflow as tf


def batched_examples(
    elements, num_examples, batch_size, *, shuffle, seed, repeat, drop_remainder
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
    return dataset.batch(batch_size, drop_remainder=drop_remainder)
