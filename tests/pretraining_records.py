"""Writes tiny pretraining TFRecords with google-research/bert's feature spec."""

import numpy as np
import tensorflow as tf

# A tiny WordPiece vocabulary: specials, whole words, continuation pieces.
TINY_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + [f"word{i}" for i in range(40)]
    + [f"##piece{i}" for i in range(15)]
)
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)
FIRST_WORD_ID = 5
FIRST_PIECE_ID = 45


def _int64(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _float(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def packed_ids(rng, seq_length, num_real=None, piece_rate=0.0):
    """One `[CLS] A [SEP] B [SEP]` sequence of vocabulary ids, zero-padded.

    Returns (input_ids, input_mask, segment_ids) as int lists.
    """
    if num_real is None:
        num_real = int(rng.integers(5, seq_length + 1))
    body = num_real - 3
    split = int(rng.integers(1, body)) if body > 1 else body
    words = rng.integers(FIRST_WORD_ID, FIRST_PIECE_ID, size=body)
    pieces = rng.integers(FIRST_PIECE_ID, len(TINY_VOCAB), size=body)
    tokens = np.where(rng.random(body) < piece_rate, pieces, words).tolist()
    ids = [CLS_ID] + tokens[:split] + [SEP_ID] + tokens[split:] + [SEP_ID]
    segments = [0] * (split + 2) + [1] * (body - split + 1)
    padding = seq_length - len(ids)
    return (
        ids + [PAD_ID] * padding,
        [1] * len(ids) + [0] * padding,
        segments + [0] * padding,
    )


def make_example(
    input_ids,
    input_mask,
    segment_ids,
    masked_lm_positions,
    masked_lm_ids,
    masked_lm_weights,
    next_sentence_label,
):
    """A `tf.train.Example` with the reference feature names and dtypes."""
    features = {
        "input_ids": _int64(input_ids),
        "input_mask": _int64(input_mask),
        "segment_ids": _int64(segment_ids),
        "masked_lm_positions": _int64(masked_lm_positions),
        "masked_lm_ids": _int64(masked_lm_ids),
        "masked_lm_weights": _float(masked_lm_weights),
        "next_sentence_labels": _int64([next_sentence_label]),
    }
    return tf.train.Example(features=tf.train.Features(feature=features))


def write_records(path, num_records, seq_length, max_predictions, *, start_index=0):
    """Writes `num_records` masked records; record i has NSP label i % 2.

    Every record's first `masked_lm_ids` entry is its global index
    (`start_index + i`, which may lie outside `TINY_VOCAB`), so tests can tell
    records apart after shuffling. `input_ids` hold `[MASK]` at every masked
    position. Returns each record's input_ids before masking.
    """
    rng = np.random.default_rng(start_index)
    originals = []
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(num_records):
            ids, mask, segments = packed_ids(rng, seq_length)
            real = [p for p, t in enumerate(ids) if t not in (PAD_ID, CLS_ID, SEP_ID)]
            count = min(max_predictions, len(real))
            positions = sorted(rng.choice(real, size=count, replace=False).tolist())
            masked_ids = [ids[p] for p in positions]
            masked_ids[0] = start_index + i
            originals.append(list(ids))
            originals[-1][positions[0]] = start_index + i
            masked_input = list(originals[-1])
            for p in positions:
                masked_input[p] = MASK_ID
            padding = max_predictions - count
            example = make_example(
                masked_input,
                mask,
                segments,
                positions + [0] * padding,
                masked_ids + [0] * padding,
                [1.0] * count + [0.0] * padding,
                i % 2,
            )
            writer.write(example.SerializeToString())
    return originals
