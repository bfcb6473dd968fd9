"""Per-word tags → entity spans inside an exported graph, by conlleval's rules.

A tag is `O`, `PREFIX-TYPE` with PREFIX one of B, I, E, S (IOB1, IOB2 and
IOBES), or a bare `TYPE`, read as `I-TYPE` (as `training.evaluation` reads
CoNLL files). An entity starts at B- or S-, and at an I- or E- that follows O,
an E-, an S- or a tag of another type (so an I- after O starts a new entity,
as conlleval counts it); it goes on over the following I-/E- words of its type
until one of those starts a new one. Tags with another prefix, and words
without a tag (-1, padding), are outside every
entity. The decoding works on tag ids, with the prefix and type of every label
worked out once, in Python, at export time.
"""

import tensorflow as tf

OUTSIDE, BEGIN, INSIDE, END, SINGLE = range(5)
_PREFIX_CODES = {"B": BEGIN, "I": INSIDE, "E": END, "S": SINGLE}


def split_tag(tag):
    """(prefix code, entity type) of one label; ("", OUTSIDE) for O."""
    if tag == "O" or not tag:
        return OUTSIDE, ""
    prefix, _, entity = tag.partition("-")
    if not entity:  # a bare type
        return INSIDE, prefix
    return _PREFIX_CODES.get(prefix, OUTSIDE), entity


def _shifted(values, fill):
    """Each row moved one word right, `fill` first (also for rows of no words)."""
    edge = tf.fill([tf.shape(values)[0], 1], tf.constant(fill, values.dtype))
    return tf.concat([edge, values], axis=1)[:, :-1]


class TagScheme:
    """The prefix code and type of every label, as graph constants.

    Args:
        labels: the tag names, index = tag id.

    Attributes:
        types: entity types in order of first appearance among the labels.
    """

    def __init__(self, labels):
        codes, type_ids, self.types = [], [], []
        for label in labels:
            code, entity = split_tag(label)
            if code != OUTSIDE and entity not in self.types:
                self.types.append(entity)
            codes.append(code)
            type_ids.append(self.types.index(entity) if code != OUTSIDE else -1)
        self._codes = tf.constant(codes, tf.int32)
        self._type_ids = tf.constant(type_ids, tf.int32)
        self._type_names = tf.constant(self.types + [""], tf.string)

    def type_names(self, type_ids):
        """tf.string names of type ids (-1 → "")."""
        count = len(self.types)
        return tf.gather(self._type_names, tf.where(type_ids >= 0, type_ids, count))

    def spans(self, tag_ids):
        """Entities of every row of `tag_ids` (int32 `[batch, words]`, -1: none).

        Returns:
            dict of int32 `[entities]`, in row order then word order: `row`,
            `first` and `last` (the entity's first and last word), `type_id`.
        """
        tag_ids = tf.convert_to_tensor(tag_ids, tf.int32)
        has_tag = tag_ids >= 0
        safe = tf.where(has_tag, tag_ids, 0)
        code = tf.where(has_tag, tf.gather(self._codes, safe), OUTSIDE)
        entity = tf.where(has_tag, tf.gather(self._type_ids, safe), -1)
        previous_code = _shifted(code, OUTSIDE)
        previous_entity = _shifted(entity, -1)
        inside = code != OUTSIDE
        starts = inside & (
            (code == BEGIN)
            | (code == SINGLE)
            | (previous_code == OUTSIDE)
            | (previous_code == END)
            | (previous_code == SINGLE)
            | (entity != previous_entity)
        )
        # Every inside word that starts none continues the entity of the word
        # before it, so an entity is a start and the inside words up to the next.
        start_at = tf.cast(tf.where(starts), tf.int32)  # [entities, 2], row-major
        per_row = tf.reduce_sum(tf.cast(starts, tf.int32), axis=1)
        row_offset = tf.cumsum(per_row, exclusive=True)
        number = tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1 + row_offset[:, None]
        member_at = tf.cast(tf.where(inside), tf.int32)
        last = tf.math.unsorted_segment_max(
            member_at[:, 1],
            tf.gather_nd(number, member_at),
            tf.shape(start_at)[0],
        )
        return {
            "row": start_at[:, 0],
            "first": start_at[:, 1],
            "last": last,
            "type_id": tf.gather_nd(entity, start_at),
        }
