"""`BertMaskedLMPreprocessor`: raw text → pretrainer inputs with fresh masks."""

import keras
import tensorflow as tf

from keras_bert_impl.text.model_inputs import encode_texts
from keras_bert_impl.data.masking import MaskedLMMasker
from keras_bert_impl.preprocessing.base import to_backend
from keras_bert_impl.preprocessing.text_classifier_preprocessor import (
    BertTextClassifierPreprocessor,
)

_MAX_SEED = 2**31 - 1


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertMaskedLMPreprocessor(BertTextClassifierPreprocessor):
    """Tokenizes, packs and masks text for masked-LM pretraining.

    Dynamic masking (as in RoBERTa): every call draws new masks with
    `data.MaskedLMMasker`, google-research/bert's recipe (80% [MASK], 10%
    random id, 10% unchanged; [CLS]/[SEP]/padding never masked), so each
    epoch of a `tf.data` pipeline sees different masks.

    Call args:
        x: text, or a `(text_a, text_b)` tuple (see
            `BertTextClassifierPreprocessor`).
        y: optional next-sentence labels `[batch]` (1 = B is a random
            sentence), needed by `BertPretrainer`'s next-sentence loss.
        sample_weight: passed through.
        seed: optional int `[2]` that fixes this batch's masks (e.g. one per
            element from `tf.data.Dataset.random`, for a reproducible
            pipeline); None draws fresh ones.

    Returns:
        `(x, y)` or `(x, y, sample_weight)`: `x` holds int32 `token_ids`
        (masked), `segment_ids`, `padding_mask` and `mask_positions`
        `[batch, max_predictions_per_seq]`; `y` holds `masked_lm_ids`,
        `masked_lm_weights` and, when given, `next_sentence_labels`: the
        layout `BertPretrainer` trains on.

    Args:
        max_predictions_per_seq: prediction slots per sequence.
        masked_lm_prob, mask_token_rate, random_token_rate: the recipe.
        whole_word_mask: mask all pieces of a word together.
        seed: op-level seed: with it, a fresh pipeline draws the same masks.
        Other arguments: see `BertTextClassifierPreprocessor`.
    """

    def __init__(
        self,
        tokenizer=None,
        sequence_length=128,
        truncation="longest_first",
        max_predictions_per_seq=20,
        masked_lm_prob=0.15,
        mask_token_rate=0.8,
        random_token_rate=0.1,
        whole_word_mask=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(tokenizer, sequence_length, truncation, **kwargs)
        self.masker = MaskedLMMasker.from_tokenizer(
            self.tokenizer,
            max_predictions_per_seq,
            whole_word_mask=whole_word_mask,
            masked_lm_prob=masked_lm_prob,
            mask_token_rate=mask_token_rate,
            random_token_rate=random_token_rate,
        )
        self.whole_word_mask = whole_word_mask
        self.seed = seed

    def batch_seed(self):
        """A fresh `[2]` seed for this batch's stateless draws (op-level
        seeded by `seed`, so a fresh pipeline repeats its draws)."""
        return tf.random.uniform([2], maxval=_MAX_SEED, dtype=tf.int64, seed=self.seed)

    def mask(self, inputs, seed, next_sentence_labels=None):
        """Masks packed inputs: `(x, y)` dicts in `BertPretrainer`'s layout."""
        masked = self.masker(
            inputs["token_ids"], seed, padding_mask=inputs["padding_mask"]
        )
        inputs = dict(
            inputs,
            token_ids=masked["token_ids"],
            mask_positions=masked["mask_positions"],
        )
        targets = {
            "masked_lm_ids": masked["masked_lm_ids"],
            "masked_lm_weights": masked["masked_lm_weights"],
        }
        if next_sentence_labels is not None:
            targets["next_sentence_labels"] = tf.cast(
                tf.reshape(next_sentence_labels, [-1]), tf.int32
            )
        return inputs, targets

    def pack_and_mask(self, x, y=None, seed=None):
        """Packs and masks a batch: `(inputs, targets, whether x was one
        example)`; subclasses change how text becomes packed inputs.

        `seed` (int `[2]`) fixes the batch's draws; None draws a fresh one.
        """
        segments = self.segments(x)
        scalar = segments[0].shape.rank == 0
        if scalar:
            segments = tuple(tf.expand_dims(s, 0) for s in segments)
        inputs = encode_texts(self.tokenizer, self.packer, segments)
        if seed is None:
            seed = self.batch_seed()
        inputs, targets = self.mask(inputs, seed, y)
        return inputs, targets, scalar

    @property
    def independent_rows(self):
        # Each batch draws its masks from one seed: splitting a block of
        # batches would change which positions a given seed masks.
        return False

    def call(self, x, y=None, sample_weight=None, seed=None):
        with tf.device("cpu"):
            inputs, targets, scalar = self.pack_and_mask(x, y, seed)
            if scalar:
                inputs, targets = tf.nest.map_structure(
                    lambda t: t[0], (inputs, targets)
                )
        return keras.utils.pack_x_y_sample_weight(
            to_backend(inputs), to_backend(targets), sample_weight
        )

    def get_config(self):
        config = super().get_config()
        masker = self.masker
        config.update(
            {
                "max_predictions_per_seq": masker.max_predictions_per_seq,
                "masked_lm_prob": masker.masked_lm_prob,
                "mask_token_rate": masker.mask_token_rate,
                "random_token_rate": masker.random_token_rate,
                "whole_word_mask": self.whole_word_mask,
                "seed": self.seed,
            }
        )
        return config
