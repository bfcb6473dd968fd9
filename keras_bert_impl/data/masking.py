"""`MaskedLMMasker`: BERT's masked-LM recipe as TensorFlow ops.

Static pretraining files fix the masks once, when the files are written
(google-research/bert repeats each document `dupe_factor` times to vary them).
Masking inside the input pipeline instead draws fresh masks every epoch
(dynamic masking, as in RoBERTa) from packed but unmasked sequences. The recipe
is the one of google-research/bert's `create_masked_lm_predictions`:

- candidates are all real tokens except `[CLS]`, `[SEP]` (and padding);
- `num_to_predict = min(max_predictions_per_seq,
  max(1, round(num_real_tokens * masked_lm_prob)))`, where the real-token count
  includes `[CLS]` and `[SEP]` and `round` is round-half-to-even (Python's);
- candidates (or whole words) are visited in random order and taken while the
  total stays within `num_to_predict`; a whole word that would overflow it is
  skipped and the next one tried;
- each chosen token becomes `[MASK]` with probability 0.8, a token id drawn
  uniformly from the whole vocabulary with probability 0.1, and stays itself
  otherwise;
- positions are sorted and padded to `max_predictions_per_seq` with position 0,
  id 0 and weight 0.

Everything is vectorised over the batch and uses stateless random ops, so one
seed gives one set of masks, and a fresh seed per batch gives fresh masks.
"""

import numpy as np
import tensorflow as tf

from keras_bert_impl.constants import CLS, MASK, PAD, SEP
from keras_bert_impl.data.whole_words import continuation_flags

# Random selection keys leave this many low values for the position, which
# makes every key distinct (sequences are far shorter than 2**20).
_POSITION_SPAN = 2**20


def _check_probability(name, value):
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}.")


class MaskedLMMasker:
    """Masks batches of packed token ids for masked-LM pretraining.

    Args:
        vocab_size: number of ids; random replacements are drawn from
            `[0, vocab_size)` as in the reference.
        mask_id: id of `[MASK]`.
        cls_id: id of `[CLS]` (never masked).
        sep_id: id of `[SEP]` (never masked).
        pad_id: id of `[PAD]` (never masked; marks padding when no
            `padding_mask` is given).
        max_predictions_per_seq: number of prediction slots per sequence.
        masked_lm_prob: fraction of real tokens to predict.
        mask_token_rate: fraction of chosen tokens replaced by `[MASK]`.
        random_token_rate: fraction of chosen tokens replaced by a random id.
        continuation_ids: ids of word-continuation pieces (`##...`). When
            given, whole words are masked, words as `data.whole_words`
            defines them (the reference's, and the static recipe's): a
            word's first piece plus the continuation pieces after it, across
            `[CLS]`/`[SEP]`; only a continuation piece with no candidate
            before it in its sequence starts a word.
    """

    def __init__(
        self,
        *,
        vocab_size,
        mask_id,
        cls_id,
        sep_id,
        pad_id,
        max_predictions_per_seq,
        masked_lm_prob=0.15,
        mask_token_rate=0.8,
        random_token_rate=0.1,
        continuation_ids=None,
    ):
        if max_predictions_per_seq < 1:
            raise ValueError(
                f"max_predictions_per_seq must be >= 1, got {max_predictions_per_seq}."
            )
        for name, value in (
            ("masked_lm_prob", masked_lm_prob),
            ("mask_token_rate", mask_token_rate),
            ("random_token_rate", random_token_rate),
        ):
            _check_probability(name, value)
        if mask_token_rate + random_token_rate > 1.0:
            raise ValueError(
                "mask_token_rate + random_token_rate must be <= 1, got "
                f"{mask_token_rate} + {random_token_rate}."
            )
        special_ids = {
            "mask_id": mask_id,
            "cls_id": cls_id,
            "sep_id": sep_id,
            "pad_id": pad_id,
        }
        for name, value in special_ids.items():
            if not 0 <= value < vocab_size:
                raise ValueError(
                    f"{name}={value} is outside the vocabulary [0, {vocab_size})."
                )
        self.vocab_size = int(vocab_size)
        self.mask_id = int(mask_id)
        self.cls_id = int(cls_id)
        self.sep_id = int(sep_id)
        self.pad_id = int(pad_id)
        self.max_predictions_per_seq = int(max_predictions_per_seq)
        self.masked_lm_prob = float(masked_lm_prob)
        self.mask_token_rate = float(mask_token_rate)
        self.random_token_rate = float(random_token_rate)
        self.whole_word_mask = continuation_ids is not None
        self._is_continuation = None
        if self.whole_word_mask:
            flags = [False] * self.vocab_size
            for token_id in continuation_ids:
                flags[int(token_id)] = True
            self._is_continuation = tf.constant(flags, dtype=tf.bool)

    @classmethod
    def from_vocabulary(
        cls, vocabulary, max_predictions_per_seq, *, whole_word_mask=False, **rates
    ):
        """Builds a masker from a WordPiece vocabulary (a list of tokens).

        Args:
            vocabulary: list of token strings; index = id.
            max_predictions_per_seq: number of prediction slots per sequence.
            whole_word_mask: mask all pieces of a word together.
            **rates: `masked_lm_prob`, `mask_token_rate`, `random_token_rate`.
        """
        token_to_id = {token: index for index, token in enumerate(vocabulary)}
        missing = [t for t in (CLS, SEP, PAD, MASK) if t not in token_to_id]
        if missing:
            raise ValueError(
                f"The vocabulary lacks the special token(s) {missing}; masked-LM "
                "masking needs [CLS], [SEP], [PAD] and [MASK]."
            )
        continuation_ids = None
        if whole_word_mask:
            continuation_ids = np.flatnonzero(continuation_flags(vocabulary))
        return cls(
            vocab_size=len(vocabulary),
            mask_id=token_to_id[MASK],
            cls_id=token_to_id[CLS],
            sep_id=token_to_id[SEP],
            pad_id=token_to_id[PAD],
            max_predictions_per_seq=max_predictions_per_seq,
            continuation_ids=continuation_ids,
            **rates,
        )

    @classmethod
    def from_tokenizer(cls, tokenizer, max_predictions_per_seq, **kwargs):
        """Builds a masker from a `keras_bert_impl.text.Tokenizer`."""
        return cls.from_vocabulary(
            tokenizer.vocabulary, max_predictions_per_seq, **kwargs
        )

    def __call__(self, token_ids, seed, padding_mask=None):
        """Masks a batch.

        Args:
            token_ids: int tensor `[batch, seq]` of packed, unmasked ids.
            seed: int tensor of shape `[2]` for the stateless random ops.
            padding_mask: optional `[batch, seq]`, non-zero on real tokens;
                defaults to `token_ids != pad_id`.

        Returns:
            dict with `token_ids` (masked, int32 `[batch, seq]`),
            `mask_positions`, `masked_lm_ids` (int32 `[batch, max_predictions]`)
            and `masked_lm_weights` (float32 `[batch, max_predictions]`).
        """
        token_ids = tf.cast(token_ids, tf.int32)
        is_real, is_candidate = self._real_and_candidates(token_ids, padding_mask)
        select_seed, action_seed, random_id_seed = tf.unstack(
            tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=3)
        )
        num_real = tf.reduce_sum(tf.cast(is_real, tf.float32), axis=1)
        num_to_predict = tf.clip_by_value(
            tf.cast(tf.math.round(num_real * self.masked_lm_prob), tf.int32),
            1,
            self.max_predictions_per_seq,
        )
        is_selected = self._select(token_ids, is_candidate, num_to_predict, select_seed)
        masked_ids = self._replace(token_ids, is_selected, action_seed, random_id_seed)
        positions, weights = self._positions(is_selected)
        original_ids = tf.gather(token_ids, positions, batch_dims=1)
        return {
            "token_ids": masked_ids,
            "mask_positions": positions,
            "masked_lm_ids": tf.where(weights, original_ids, 0),
            "masked_lm_weights": tf.cast(weights, tf.float32),
        }

    def _word_starts(self, token_ids, is_candidate):
        """bool `[batch, seq]`: the first token of each word (`whole_words`)."""
        if not self.whole_word_mask:
            return is_candidate
        is_continuation = tf.gather(self._is_continuation, token_ids)
        earlier_candidates = tf.cumsum(
            tf.cast(is_candidate, tf.int32), axis=1, exclusive=True
        )
        return is_candidate & tf.logical_not(is_continuation & (earlier_candidates > 0))

    def word_index(self, token_ids, padding_mask=None):
        """The word of every candidate token, as `_select_words` groups them.

        Returns:
            int32 `[batch, seq]`: the number of the token's word in its row
            (0, 1, ...), -1 on `[CLS]`, `[SEP]` and padding.
        """
        token_ids = tf.cast(token_ids, tf.int32)
        _, is_candidate = self._real_and_candidates(token_ids, padding_mask)
        starts = self._word_starts(token_ids, is_candidate)
        number = tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1
        return tf.where(is_candidate, number, -1)

    def _real_and_candidates(self, token_ids, padding_mask):
        if padding_mask is None:
            is_real = tf.not_equal(token_ids, self.pad_id)
        else:
            is_real = tf.not_equal(tf.cast(padding_mask, tf.int32), 0)
        is_candidate = is_real & tf.logical_not(
            tf.equal(token_ids, self.cls_id)
            | tf.equal(token_ids, self.sep_id)
            | tf.equal(token_ids, self.pad_id)
        )
        return is_real, is_candidate

    def _select(self, token_ids, is_candidate, num_to_predict, seed):
        """Returns a bool `[batch, seq]` of the positions to predict."""
        if self.whole_word_mask:
            return self._select_words(token_ids, is_candidate, num_to_predict, seed)
        return self._select_pieces(is_candidate, num_to_predict, seed)

    @staticmethod
    def _select_pieces(is_candidate, num_to_predict, seed):
        """A uniformly random `num_to_predict`-subset of the candidates."""
        shape = tf.shape(is_candidate, out_type=tf.int64)
        # Distinct random keys: random high bits, the position in the low bits.
        keys = (
            tf.random.stateless_uniform(
                shape, seed, minval=0, maxval=2**40, dtype=tf.int64
            )
            * _POSITION_SPAN
            + tf.range(shape[1])[tf.newaxis, :]
        )
        keys = tf.where(is_candidate, keys, -1)
        kth_largest = tf.gather(
            tf.sort(keys, axis=1, direction="DESCENDING"),
            num_to_predict - 1,
            batch_dims=1,
        )
        # Rows with fewer candidates than k reach a -1 key and take them all.
        return is_candidate & (keys >= kth_largest[:, tf.newaxis])

    def _select_words(self, token_ids, is_candidate, num_to_predict, seed):
        """Whole words, visited in random order, while they fit."""
        shape = tf.shape(token_ids)
        batch_size, seq_length = shape[0], shape[1]
        word_starts = self._word_starts(token_ids, is_candidate)
        # Word slot w of a row holds the w-th word; a token belongs to the
        # word most recently started at or before it.
        word_index = tf.cumsum(tf.cast(word_starts, tf.int32), axis=1) - 1
        row_offset = tf.range(batch_size)[:, tf.newaxis] * seq_length
        flat_word = tf.where(
            is_candidate, word_index + row_offset, batch_size * seq_length
        )
        word_length = tf.math.unsorted_segment_sum(
            tf.ones_like(flat_word), flat_word, batch_size * seq_length + 1
        )
        word_length = tf.reshape(word_length[:-1], shape)
        # A random visiting order over existing words; empty slots go last.
        scores = tf.random.stateless_uniform(shape, seed)
        scores = tf.where(word_length > 0, scores, 2.0)
        order = tf.argsort(scores, axis=1)
        length_in_order = tf.gather(word_length, order, batch_dims=1)
        taken_in_order = self._greedy_take(length_in_order, num_to_predict)
        word_taken = tf.gather(taken_in_order, tf.argsort(order, axis=1), batch_dims=1)
        token_taken = tf.gather(word_taken, tf.maximum(word_index, 0), batch_dims=1)
        return is_candidate & token_taken

    @staticmethod
    def _greedy_take(length_in_order, num_to_predict):
        """Walks the words in order, taking each one that still fits.

        Every word before the running total first overflows is taken, so only
        the walk after that point is sequential, and it stops as soon as every
        row is full or out of words (a few steps for typical budgets).
        """
        budget = num_to_predict[:, tf.newaxis]
        in_prefix = (length_in_order > 0) & (
            tf.cumsum(length_in_order, axis=1) <= budget
        )
        total = tf.reduce_sum(tf.where(in_prefix, length_in_order, 0), axis=1)
        num_words = tf.reduce_sum(tf.cast(length_in_order > 0, tf.int32), axis=1)
        num_columns = tf.shape(length_in_order)[1]
        columns = tf.range(num_columns)[tf.newaxis, :]
        start = tf.reduce_min(tf.reduce_sum(tf.cast(in_prefix, tf.int32), axis=1))

        def unfinished(step, total, taken):
            del taken
            return (step < num_columns) & tf.reduce_any(
                (total < num_to_predict) & (step < num_words)
            )

        def visit(step, total, taken):
            lengths = length_in_order[:, step]
            take = (
                (lengths > 0)
                & tf.logical_not(in_prefix[:, step])
                & (total + lengths <= num_to_predict)
            )
            taken = taken | (tf.equal(columns, step) & take[:, tf.newaxis])
            return step + 1, total + tf.where(take, lengths, 0), taken

        _, _, taken = tf.while_loop(unfinished, visit, (start, total, in_prefix))
        return taken

    def _replace(self, token_ids, is_selected, action_seed, random_id_seed):
        shape = tf.shape(token_ids)
        action = tf.random.stateless_uniform(shape, action_seed)
        random_ids = tf.random.stateless_uniform(
            shape, random_id_seed, minval=0, maxval=self.vocab_size, dtype=tf.int32
        )
        replacement = tf.where(
            action < self.mask_token_rate,
            self.mask_id,
            tf.where(
                action < self.mask_token_rate + self.random_token_rate,
                random_ids,
                token_ids,
            ),
        )
        return tf.where(is_selected, replacement, token_ids)

    def _positions(self, is_selected):
        """Sorted selected positions, padded to `max_predictions_per_seq`."""
        seq_length = tf.shape(is_selected)[1]
        batch_size = tf.shape(is_selected)[0]
        keys = tf.where(is_selected, tf.range(seq_length)[tf.newaxis, :], seq_length)
        # Extra sentinel columns so sequences shorter than the slot count work.
        sentinels = tf.fill([batch_size, self.max_predictions_per_seq], seq_length)
        keys = tf.sort(tf.concat([keys, sentinels], axis=1), axis=1)
        keys = tf.ensure_shape(
            keys[:, : self.max_predictions_per_seq],
            [is_selected.shape[0], self.max_predictions_per_seq],
        )
        weights = keys < seq_length
        return tf.where(weights, keys, 0), weights
