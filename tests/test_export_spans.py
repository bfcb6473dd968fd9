"""The graph code the token-classifier and question-answerer exports answer with:
entity decoding by conlleval's rules and byte → character offsets."""

import numpy as np
import tensorflow as tf

from keras_bert_impl.export.char_offsets import char_offsets
from keras_bert_impl.export.entity_spans import TagScheme
from keras_bert_impl.training.evaluation import entity_spans

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-MISC", "ORG"]


def _graph_spans(scheme, rows):
    """Rows of tag names (None: no tag) → per row [(type, first, last)]."""
    width = max((len(row) for row in rows), default=0)
    ids = np.full((len(rows), width), -1, np.int32)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = [-1 if tag is None else LABELS.index(tag) for tag in row]
    spans = {k: v.numpy() for k, v in scheme.spans(tf.constant(ids)).items()}
    names = scheme.type_names(tf.constant(spans["type_id"])).numpy()
    found = [[] for _ in rows]
    for row, first, last, name in zip(
        spans["row"], spans["first"], spans["last"], names
    ):
        found[row].append((name.decode(), int(first), int(last)))
    return found


def test_entities_follow_conlleval_on_hand_cases():
    scheme = TagScheme(LABELS)
    rows = [
        # An I- after O starts an entity; one after another type starts a new one.
        ["O", "I-PER", "I-PER", "I-LOC", "O", "I-LOC"],
        # B- always starts one, even after the same type.
        ["B-PER", "B-PER", "I-PER", "O"],
        # IOBES: E- ends, S- is one word, a bare type reads as I-.
        ["B-LOC", "E-LOC", "I-LOC", "S-MISC", "S-MISC", "ORG", "ORG", "B-PER"],
        # A word without a tag (-1) is outside.
        ["B-PER", None, "I-PER"],
        [],
    ]
    assert _graph_spans(scheme, rows) == [
        [("PER", 1, 2), ("LOC", 3, 3), ("LOC", 5, 5)],
        [("PER", 0, 0), ("PER", 1, 2)],
        [
            ("LOC", 0, 1),
            ("LOC", 2, 2),
            ("MISC", 3, 3),
            ("MISC", 4, 4),
            ("ORG", 5, 6),
            ("PER", 7, 7),
        ],
        [("PER", 0, 0), ("PER", 2, 2)],
        [],
    ]


def test_entities_equal_the_conlleval_port_on_random_tags():
    scheme = TagScheme(LABELS)
    rng = np.random.default_rng(0)
    rows = [
        [LABELS[i] for i in rng.integers(0, len(LABELS), rng.integers(0, 12))]
        for _ in range(300)
    ]
    assert _graph_spans(scheme, rows) == [entity_spans(row) for row in rows]


def test_char_offsets_count_characters_not_bytes():
    texts = ["naïve café 北京 👍!", "", "plain ascii", "e\u0301 \u00a0x"]
    width = max(len(t.encode()) for t in texts) + 1
    byte_offsets = np.full((len(texts), width + 1), -1, np.int64)
    want = np.full(byte_offsets.shape, -1, np.int32)
    for row, text in enumerate(texts):
        position = 0
        for index, char in enumerate(text + "\0"):
            byte_offsets[row, index] = position
            want[row, index] = index
            position += len(char.encode())
    got = char_offsets(tf.constant([t.encode() for t in texts]), byte_offsets).numpy()
    np.testing.assert_array_equal(got, want)
