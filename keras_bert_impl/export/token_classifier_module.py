"""Serving signatures of a `BertTokenClassifier`: raw text → a tag per word and entities.

The words are the basic-tokenizer words of the text, split and packed by the
same graph code as the model's preprocessor (`data.word_alignment`), so the
tags equal `BertTokenClassifier.predict_text`'s: a word's tag is its first
piece's, and a text longer than the sequence length is tagged in consecutive
windows of whole words, each window on its own (`text.word_windows`, the
windows the CoNLL reader trains on).
"""

import tensorflow as tf

from keras_bert_impl.data.word_alignment import pack_word_windows, text_word_pieces
from keras_bert_impl.export.char_offsets import char_offsets
from keras_bert_impl.export.entity_spans import TagScheme
from keras_bert_impl.export.serving_modules import (
    TEXT_SPEC,
    ServingModule,
    ids_signature,
)
from keras_bert_impl.text.model_inputs import model_inputs


def _dense(ragged, default):
    return ragged.to_tensor(default_value=default)


class TokenClassifierModule(ServingModule):
    """A `BertTokenClassifier` (NER, tagging).

    `serving_default` (`text`, `[batch]` strings) returns, per word (`[batch,
    words]`, words = the most words of any text in the batch; "" / -1 / 0 past a
    text's own `num_words`):
        `words` (the word as written), `tags` (tag name), `tag_scores` (the tag's probability on the
        word's first piece), `word_start` / `word_end` (character offsets:
        `text[word_start:word_end] == word`), `num_words` `[batch]`;
    and per entity (`[batch, entities]`, decoded from the tags by conlleval's
    rules, see `entity_spans`; "" / -1 past a text's own `num_entities`):
        `entity_label` (the type, e.g. "PER"), `entity_text`, `entity_start` /
        `entity_end` (character offsets into the text), `num_entities` `[batch]`.

    `predict_ids` (token_ids, segment_ids, padding_mask) returns per position
    `probabilities` `[batch, seq, tags]`, `tag_ids` and `tags` (-1 / "" on
    padding).
    """

    task = "token_classifier"

    def __init__(self, model, text_inputs, labels=None, name=None):
        super().__init__(model, text_inputs, name=name)
        if labels is None:
            labels = model.names_of(range(model.num_classes))
        labels = [str(label) for label in labels]
        if len(labels) != model.num_classes:
            raise ValueError(
                f"{len(labels)} labels given for a token classifier with "
                f"num_classes={model.num_classes}."
            )
        self.labels = labels
        self._label_strings = tf.constant(labels + [""])
        self._scheme = TagScheme(labels)

        @tf.function(input_signature=[TEXT_SPEC], autograph=False)
        def serving_default(text):
            return self.text_outputs(text)

        self.serving_default = serving_default
        self.predict_ids = ids_signature(self.model_outputs)
        self.serving_signatures.update(
            serving_default=serving_default, predict_ids=self.predict_ids
        )

    def card(self):
        return {"labels": self.labels, "entity_types": self._scheme.types}

    @classmethod
    def from_card(cls, model, text_inputs, card):
        return cls(model, text_inputs, labels=card.get("labels"))

    def _tag_names(self, tag_ids):
        count = len(self.labels)
        return tf.gather(self._label_strings, tf.where(tag_ids >= 0, tag_ids, count))

    def _probabilities(self, inputs):
        logits = self.model(inputs, training=False)
        return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)

    def model_outputs(self, inputs):
        probabilities = self._probabilities(inputs)
        real = tf.cast(inputs["padding_mask"], tf.bool)
        tag_ids = tf.where(
            real, tf.argmax(probabilities, axis=-1, output_type=tf.int32), -1
        )
        return {
            "probabilities": probabilities,
            "tag_ids": tag_ids,
            "tags": self._tag_names(tag_ids),
        }

    def text_outputs(self, text):
        tokenizer = self.text_inputs.tokenizer
        pieces, byte_starts, byte_ends = text_word_pieces(tokenizer, text)
        packed = pack_word_windows(pieces, self.text_inputs.packer)
        inputs = model_inputs(packed)
        probabilities = self._probabilities(inputs)

        # Positions that start a word → that word's slot in its text.
        word_index = packed["word_index"]
        at = tf.where(word_index >= 0)  # [starts, 2] int64: (window, position)
        slots = tf.stack(
            [
                tf.cast(tf.gather(packed["example_index"], at[:, 0]), tf.int64),
                tf.cast(tf.gather_nd(word_index, at), tf.int64),
            ],
            1,
        )
        num_words = tf.cast(pieces.row_lengths(), tf.int32)
        width = tf.reduce_max(tf.concat([num_words, [0]], 0))
        shape = tf.cast(tf.stack([tf.shape(text)[0], width]), tf.int64)
        tag_at = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        tag_ids = tf.scatter_nd(slots, tf.gather_nd(tag_at, at) + 1, shape) - 1
        tag_scores = tf.scatter_nd(
            slots, tf.gather_nd(tf.reduce_max(probabilities, axis=-1), at), shape
        )

        starts = _dense(byte_starts, -1)
        ends = _dense(byte_ends, -1)
        word_start = char_offsets(text, starts)
        word_end = char_offsets(text, ends)
        word_text = tf.gather(text, byte_starts.value_rowids())
        words = byte_starts.with_values(
            tf.strings.substr(
                word_text, byte_starts.values, byte_ends.values - byte_starts.values
            )
        )

        entities = self._scheme.spans(tag_ids)
        first = tf.stack([entities["row"], entities["first"]], 1)
        last = tf.stack([entities["row"], entities["last"]], 1)
        entity_byte_start = tf.gather_nd(starts, first)
        entity_text = tf.strings.substr(
            tf.gather(text, entities["row"]),
            entity_byte_start,
            tf.gather_nd(ends, last) - entity_byte_start,
        )
        rows = entities["row"]
        batch = tf.shape(text)[0]

        def per_text(values, default):
            return _dense(
                tf.RaggedTensor.from_value_rowids(values, rows, nrows=batch), default
            )

        return {
            "words": _dense(words, ""),
            "tags": self._tag_names(tag_ids),
            "tag_scores": tag_scores,
            "word_start": word_start,
            "word_end": word_end,
            "num_words": num_words,
            "entity_label": per_text(self._scheme.type_names(entities["type_id"]), ""),
            "entity_text": per_text(entity_text, ""),
            "entity_start": per_text(tf.gather_nd(word_start, first), -1),
            "entity_end": per_text(tf.gather_nd(word_end, last), -1),
            "num_entities": tf.math.unsorted_segment_sum(
                tf.ones_like(rows), rows, batch
            ),
        }
