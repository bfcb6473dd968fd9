"""`BertPretrainingPreprocessor`: raw passages → MLM + NSP pretraining batches."""

import keras
import tensorflow as tf

from keras_bert_impl.data.next_sentence_pairs import next_sentence_pairs
from keras_bert_impl.data.next_sentence_pairs import passage_pieces
from keras_bert_impl.data.next_sentence_pairs import SENTENCE_END_TOKENS
from keras_bert_impl.preprocessing.base import ACCEPTED_TEXT
from keras_bert_impl.preprocessing.masked_lm_preprocessor import (
    BertMaskedLMPreprocessor,
)
from keras_bert_impl.text.packer import content_length


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertPretrainingPreprocessor(BertMaskedLMPreprocessor):
    """Turns raw passages into BERT pretraining batches, afresh every call.

    Each string of a batch is a passage (a document or a paragraph; line
    breaks end sentences). Every call forms one next-sentence pair per
    passage with google-research/bert's rules (`data.next_sentence_pairs`:
    A and B from the same passage for "is next", B from another passage of
    the same batch for "random next", 50/50, label 1 = random next), packs
    it as `[CLS] A [SEP] B [SEP]` with the reference's random-end truncation
    (`text.Packer`), and masks it with `data.MaskedLMMasker` (15%, 80/10/10,
    optionally whole words). So each epoch of a `tf.data` pipeline sees new
    pairs and new masks (dynamic masking). Pairs are drawn within a batch:
    shuffle the passages (as `fit` does) so that partners change.

    Text pairs with labels, `((text_a, text_b), labels)`, are packed and
    masked as given (`BertMaskedLMPreprocessor`).

    Call args:
        x: passages, `[batch]` strings (see `ACCEPTED_TEXT`), or a
            `(text_a, text_b)` tuple with `y`.
        y: next-sentence labels of given pairs; None for passages.
        sample_weight: passed through.
        seed: optional int `[2]`: the same seed, the same pairs, cuts and
            masks; None draws fresh ones.

    Returns:
        `(x, y)` or `(x, y, sample_weight)` in `BertPretrainer`'s layout:
        `x` = `token_ids` (masked), `segment_ids`, `padding_mask`,
        `mask_positions`; `y` = `masked_lm_ids`, `masked_lm_weights`,
        `next_sentence_labels`.

    Args:
        short_seq_prob: probability of a shorter target length (0.1 in the
            reference).
        sentence_end_tokens: tokens after which a sentence ends (line breaks
            always end one); `()` for text that has one sentence per line.
        truncation: "random" (the reference's pretraining rule) by default.
        Other arguments: see `BertMaskedLMPreprocessor`.
    """

    def __init__(
        self,
        tokenizer=None,
        sequence_length=128,
        truncation="random",
        short_seq_prob=0.1,
        sentence_end_tokens=SENTENCE_END_TOKENS,
        **kwargs,
    ):
        super().__init__(tokenizer, sequence_length, truncation, **kwargs)
        if self.sequence_length is None or self.sequence_length < 5:
            raise ValueError(
                f"{type(self).__name__} needs a sequence_length >= 5 ([CLS] A "
                f"[SEP] B [SEP]), got {self.sequence_length!r}."
            )
        if not 0.0 <= short_seq_prob <= 1.0:
            raise ValueError(f"short_seq_prob must be in [0, 1], got {short_seq_prob}.")
        self.short_seq_prob = float(short_seq_prob)
        self.sentence_end_tokens = tuple(sentence_end_tokens)
        known = set(self.tokenizer.vocabulary)
        self._end_ids = [
            self.tokenizer.token_to_id(token)
            for token in self.sentence_end_tokens
            if token in known
        ]

    def pack_and_mask(self, x, y=None, seed=None):
        if isinstance(x, tuple) or y is not None:
            return super().pack_and_mask(x, y, seed)
        passages = self.text_input(x, ACCEPTED_TEXT)
        scalar = passages.shape.rank == 0
        if scalar:
            passages = tf.expand_dims(passages, 0)
        if seed is None:
            seed = self.batch_seed()
        pair_seed, truncation_seed, mask_seed = tf.unstack(
            tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=3)
        )
        ids, ends = passage_pieces(self.tokenizer, passages, self._end_ids)
        segment_a, segment_b, labels = next_sentence_pairs(
            ids,
            ends,
            pair_seed,
            content_length(self.sequence_length, 2),
            short_seq_prob=self.short_seq_prob,
        )
        inputs = self.packer((segment_a, segment_b), seed=truncation_seed)
        inputs, targets = self.mask(inputs, mask_seed, labels)
        return inputs, targets, scalar

    def get_config(self):
        config = super().get_config()
        config["short_seq_prob"] = self.short_seq_prob
        config["sentence_end_tokens"] = list(self.sentence_end_tokens)
        return config
