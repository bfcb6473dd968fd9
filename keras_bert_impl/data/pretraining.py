"""BERT's pretraining-instance recipe (google-research/bert's
`create_pretraining_data.py`), on token ids and NumPy.

Input is a `TokenizedCorpus`: documents made of sentences made of WordPiece
ids. Each pass over the corpus (`dupe_factor` passes in all, each with fresh
randomness) turns every document into sentence-pair instances:

1. A document gets a target length: `max_seq_length - 3` tokens (room for
   `[CLS] A [SEP] B [SEP]`), or, with probability `short_seq_prob`, a random
   length in `[2, max_seq_length - 3]`.
2. Sentences are gathered into a chunk until the chunk reaches the target (or
   the document ends). A random number of the chunk's leading sentences forms
   segment A.
3. Segment B is the rest of the chunk, except with probability 0.5 (and
   always when the chunk holds a single sentence) B is taken instead from a
   random position of another random document (`is_random_next`), and the
   chunk's sentences left over from A are put back for the next chunk.
4. While A + B is too long, one token is dropped from the longer of the two
   (B on a tie), from its front or back with equal probability.
5. Masked LM, as `recipe_masking` describes and does.

Two things differ from the reference on purpose, neither changes the
distribution of instances: randomness is drawn per work unit (one pass over
one block of documents) from `numpy.random.SeedSequence(seed, spawn_key=...)`,
so results do not depend on how many processes share the work; and
truncation and masking draw their random numbers in vectorised form (a
binomial front/back split, a random permutation by sort keys) instead of one
`random.random()` call at a time. The reference also shuffles the document
list first; documents here keep their input order, since which document is
"random" is already uniform.
"""

import bisect
import dataclasses
import functools
import random

import numpy as np

from keras_bert_impl.data.recipe_masking import mask_tokens, num_to_predict
from keras_bert_impl.text.packer import content_length
from keras_bert_impl.text.packer import longest_first_lengths

# Spawn keys separate the independent random streams derived from one seed.
_UNIT_STREAM = 0
_SHUFFLE_STREAM = 1


@dataclasses.dataclass(frozen=True)
class TokenizedCorpus:
    """Documents of sentences of token ids, stored flat.

    Sentence `s` is `token_ids[sentence_starts[s]:sentence_starts[s + 1]]`;
    document `d` holds sentences `document_starts[d]` to
    `document_starts[d + 1] - 1`. Sentences of a document are contiguous in
    `token_ids`, so a run of consecutive sentences is one slice. Every
    document has at least one sentence and every sentence at least one token.
    """

    token_ids: np.ndarray
    sentence_starts: np.ndarray
    document_starts: np.ndarray

    @classmethod
    def from_lengths(cls, token_ids, sentence_lengths, document_sizes):
        """Builds a corpus from flat ids, tokens per sentence, sentences per document."""
        sentence_lengths = np.asarray(sentence_lengths, dtype=np.int64)
        document_sizes = np.asarray(document_sizes, dtype=np.int64)
        if (
            len(document_sizes) == 0
            or np.any(document_sizes < 1)
            or np.any(sentence_lengths < 1)
        ):
            raise ValueError(
                "Every document needs a sentence and every sentence a token."
            )
        sizes_add_up = document_sizes.sum() == len(sentence_lengths)
        if not sizes_add_up or sentence_lengths.sum() != len(token_ids):
            raise ValueError("Sentence lengths and document sizes do not add up.")
        return cls(
            token_ids=np.asarray(token_ids, dtype=np.int32),
            sentence_starts=np.concatenate([[0], np.cumsum(sentence_lengths)]),
            document_starts=np.concatenate([[0], np.cumsum(document_sizes)]),
        )

    @classmethod
    def from_documents(cls, documents):
        """Builds a corpus from nested lists: documents → sentences → ids."""
        sentences = [sentence for document in documents for sentence in document]
        return cls.from_lengths(
            np.concatenate([np.asarray(s, dtype=np.int32) for s in sentences] or [[]]),
            [len(s) for s in sentences],
            [len(d) for d in documents],
        )

    @classmethod
    def concatenate(cls, corpora):
        """Joins corpora; documents never span two of them."""
        return cls.from_lengths(
            np.concatenate([c.token_ids for c in corpora]),
            np.concatenate([np.diff(c.sentence_starts) for c in corpora]),
            np.concatenate([np.diff(c.document_starts) for c in corpora]),
        )

    @functools.cached_property
    def sentence_start_list(self):
        """`sentence_starts` as a Python list: the sequential part of the
        recipe reads single entries, which lists serve faster than arrays."""
        return self.sentence_starts.tolist()

    @functools.cached_property
    def _document_start_list(self):
        return self.document_starts.tolist()

    def document_sentence_range(self, document):
        """`(first_sentence, end_sentence)` of a document."""
        starts = self._document_start_list
        return starts[document], starts[document + 1]

    @property
    def num_documents(self):
        return len(self.document_starts) - 1

    @property
    def num_sentences(self):
        return len(self.sentence_starts) - 1

    @property
    def num_tokens(self):
        return len(self.token_ids)

    def document_blocks(self, min_tokens):
        """Splits the documents into consecutive blocks of >= `min_tokens` tokens.

        The blocks depend only on the corpus, never on the number of workers,
        so the same seed always gives the same work units.

        Returns:
            A list of `(first_document, end_document)` pairs covering all
            documents in order.
        """
        document_token_starts = self.sentence_starts[self.document_starts]
        blocks = []
        first = 0
        while first < self.num_documents:
            wanted = document_token_starts[first] + min_tokens
            end = int(np.searchsorted(document_token_starts, wanted, side="left"))
            end = min(max(end, first + 1), self.num_documents)
            blocks.append((first, end))
            first = end
        return blocks


@dataclasses.dataclass(frozen=True)
class PretrainingRecipe:
    """The recipe's knobs, named and defaulted as in google-research/bert."""

    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    do_whole_word_mask: bool = False

    def __post_init__(self):
        if self.max_seq_length < 5:
            raise ValueError(
                f"max_seq_length={self.max_seq_length} is too short: [CLS] A [SEP] B [SEP] "
                "needs at least 5 positions."
            )
        if self.max_predictions_per_seq < 1:
            raise ValueError(
                f"max_predictions_per_seq={self.max_predictions_per_seq}; it must be >= 1."
            )
        if not 0.0 < self.masked_lm_prob < 1.0:
            raise ValueError(
                f"masked_lm_prob={self.masked_lm_prob}; it must be in (0, 1)."
            )
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise ValueError(
                f"short_seq_prob={self.short_seq_prob}; it must be in [0, 1]."
            )

    @property
    def max_num_tokens(self):
        """Tokens of A and B together; three positions go to [CLS] and [SEP]."""
        return content_length(self.max_seq_length, 2)

    def capped_mask_rate_warning(self):
        """Says so when `max_predictions_per_seq` caps masking of full sequences.

        Returns:
            A message with the numbers, or None when a full-length sequence
            gets its `round(max_seq_length * masked_lm_prob)` predictions.
        """
        wanted = num_to_predict(self.max_seq_length, self.masked_lm_prob, 10**9)
        if wanted <= self.max_predictions_per_seq:
            return None
        realised = self.max_predictions_per_seq / self.max_seq_length
        return (
            f"max_predictions_per_seq={self.max_predictions_per_seq} is below "
            f"round({self.max_seq_length} * masked_lm_prob={self.masked_lm_prob}) = {wanted}: "
            f"full-length sequences get only {realised:.1%} of their tokens masked instead of "
            f"{self.masked_lm_prob:.1%}. Pass --max_predictions_per_seq={wanted} or more to keep "
            "the rate."
        )


def truncation_cuts(length_a, length_b, max_num_tokens):
    """How many tokens the reference's trimming loop removes from A and from B.

    The reference drops one token at a time from the longer segment (B on a
    tie) until both fit; `text.packer.longest_first_lengths` is that rule in
    closed form, shared with the `Packer`.

    Returns:
        `(cut_a, cut_b)`.
    """
    keep_a, keep_b = longest_first_lengths(length_a, length_b, max_num_tokens)
    return length_a - keep_a, length_b - keep_b


def _randint(py_rng, low, high):
    """`py_rng.randint(low, high)`: the same numbers from the same state (as
    CPython draws them), without the argument checks that triple its cost."""
    span = high - low + 1
    bits = span.bit_length()
    value = py_rng.getrandbits(bits)
    while value >= span:
        value = py_rng.getrandbits(bits)
    return low + value


def _split_front_back(cut, py_rng):
    """Splits `cut` removals between front and back as the reference's coin flips do.

    Each removal is a fair coin flip, so the front count is Binomial(cut, 1/2):
    the number of set bits among `cut` random bits.
    """
    front = py_rng.getrandbits(cut).bit_count() if cut else 0
    return front, cut - front


def add_document_instances(corpus, document, recipe, py_rng, spans):
    """Appends the sentence-pair instances of one document to `spans`.

    Steps 1-4 of the module docstring, in the reference's order.

    Args:
        corpus: the `TokenizedCorpus`.
        document: index of the document.
        recipe: a `PretrainingRecipe`.
        py_rng: a `random.Random`.
        spans: a list to extend with `(a_start, a_length, b_start, b_length,
            is_random_next)` tuples; segment A is
            `corpus.token_ids[a_start:a_start + a_length]`, B likewise.
    """
    starts = corpus.sentence_start_list
    first_sentence, end_sentence = corpus.document_sentence_range(document)
    max_num_tokens = recipe.max_num_tokens
    target_length = max_num_tokens
    if py_rng.random() < recipe.short_seq_prob:
        target_length = _randint(py_rng, 2, max_num_tokens)

    chunk_first = first_sentence
    while chunk_first < end_sentence:
        # The chunk takes sentences until it reaches the target length or the
        # document ends: it ends with the first sentence whose end (the next
        # sentence's start) reaches the target.
        chunk_end = bisect.bisect_left(
            starts, starts[chunk_first] + target_length, chunk_first + 1, end_sentence
        )
        chunk_size = chunk_end - chunk_first
        a_sentences = _randint(py_rng, 1, chunk_size - 1) if chunk_size >= 2 else 1
        a_start = starts[chunk_first]
        a_length = starts[chunk_first + a_sentences] - a_start
        if chunk_size == 1 or py_rng.random() < 0.5:
            is_random_next = True
            b_start, b_length = _random_continuation(
                corpus, document, target_length - a_length, py_rng
            )
            # The chunk's sentences after A were not used: the next chunk
            # starts with them.
            chunk_end = chunk_first + a_sentences
        else:
            is_random_next = False
            b_start = a_start + a_length
            b_length = starts[chunk_end] - b_start
        cut_a, cut_b = truncation_cuts(a_length, b_length, max_num_tokens)
        a_front, a_back = _split_front_back(cut_a, py_rng)
        b_front, b_back = _split_front_back(cut_b, py_rng)
        spans.append(
            (
                a_start + a_front,
                a_length - a_front - a_back,
                b_start + b_front,
                b_length - b_front - b_back,
                is_random_next,
            )
        )
        chunk_first = chunk_end


def _random_continuation(corpus, document, target_b_length, py_rng):
    """Segment B for a random next: sentences from a random other document.

    Like the reference, it tries 10 times to pick a document other than
    `document` (a one-document corpus falls back to itself), starts at a
    random sentence and takes sentences until `target_b_length` is reached or
    the document ends.

    Returns:
        `(b_start, b_length)` as a token span.
    """
    for _ in range(10):
        other = _randint(py_rng, 0, corpus.num_documents - 1)
        if other != document:
            break
    first_sentence, end_sentence = corpus.document_sentence_range(other)
    start_sentence = _randint(py_rng, first_sentence, end_sentence - 1)
    starts = corpus.sentence_start_list
    b_start = starts[start_sentence]
    # B ends after the first sentence whose end reaches the target; sentences
    # are never empty, so a target below 1 still takes one sentence.
    b_end = bisect.bisect_left(
        starts, b_start + max(target_b_length, 1), start_sentence + 1, end_sentence
    )
    return b_start, starts[b_end] - b_start


@dataclasses.dataclass(frozen=True)
class InstanceBatch:
    """Finished instances as arrays, in google-research/bert's feature layout.

    `input_ids`, `input_mask`, `segment_ids`: int32 `[n, max_seq_length]`;
    `masked_lm_positions`, `masked_lm_ids`: int64 `[n, max_predictions]`;
    `masked_lm_weights`: float32 `[n, max_predictions]`;
    `next_sentence_labels`: int64 `[n, 1]`, 1 for a random next.
    """

    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    masked_lm_positions: np.ndarray
    masked_lm_ids: np.ndarray
    masked_lm_weights: np.ndarray
    next_sentence_labels: np.ndarray

    def __len__(self):
        return len(self.input_ids)

    def features(self):
        """The arrays by feature name, in the reference's feature order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def pack_spans(corpus, spans, recipe, vocab):
    """Lays spans out as `[CLS] A [SEP] B [SEP]` rows, zero-padded.

    The `text.Packer`'s layout, in NumPy: worker processes stay off
    TensorFlow, and spans are read straight out of the flat corpus. The
    spans are already truncated (`truncation_cuts`); tests hold the two
    layouts to the same rows.

    Args:
        spans: the tuples made by `add_document_instances`.

    Returns:
        `(token_ids, input_mask, segment_ids)`, int32 `[n, max_seq_length]`.
    """
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 5)
    a_start, a_length, b_start, b_length = (spans[:, i : i + 1] for i in range(4))
    position = np.arange(recipe.max_seq_length)[None, :]
    first_sep = 1 + a_length
    last_sep = first_sep + 1 + b_length
    # Position p of A reads token a_start + p - 1, of B b_start + p - first_sep
    # - 1; [CLS], [SEP] and padding read a clipped index, then get overwritten.
    source = position + np.where(
        position <= a_length, a_start - 1, b_start - first_sep - 1
    )
    token_ids = np.take(corpus.token_ids, source, mode="clip")
    input_mask = position <= last_sep
    token_ids *= input_mask
    rows = np.arange(len(token_ids))
    token_ids[:, 0] = vocab.cls_id
    token_ids[rows, first_sep[:, 0]] = vocab.sep_id
    token_ids[rows, last_sep[:, 0]] = vocab.sep_id
    segment_ids = (position > first_sep) & input_mask
    return token_ids, input_mask.astype(np.int32), segment_ids.astype(np.int32)


def unit_seed_sequence(random_seed, pass_index, block_index):
    """The random stream of one work unit (one pass over one document block)."""
    return np.random.SeedSequence(
        random_seed, spawn_key=(_UNIT_STREAM, pass_index, block_index)
    )


def shuffle_seed_sequence(random_seed):
    """The random stream of the final shuffle of all instances."""
    return np.random.SeedSequence(random_seed, spawn_key=(_SHUFFLE_STREAM,))


def create_instances(corpus, documents, recipe, vocab, seed_sequence):
    """Creates the instances of a range of documents for one pass.

    Args:
        corpus: a `TokenizedCorpus` (random next segments come from all of it).
        documents: a `range` of document indices.
        recipe: a `PretrainingRecipe`.
        vocab: a `MaskingVocabulary`.
        seed_sequence: a `numpy.random.SeedSequence` for this unit of work.

    Returns:
        An `InstanceBatch`, in document order (shuffling happens once, over
        all instances, when they are written).
    """
    py_seed, np_seed = seed_sequence.spawn(2)
    py_rng = random.Random(int(py_seed.generate_state(2, np.uint64)[0]))
    np_rng = np.random.default_rng(np_seed)

    spans = []
    for document in documents:
        add_document_instances(corpus, document, recipe, py_rng, spans)
    token_ids, input_mask, segment_ids = pack_spans(corpus, spans, recipe, vocab)
    input_ids, positions, masked_ids, weights = mask_tokens(
        token_ids, input_mask, recipe, vocab, np_rng
    )
    is_random_next = [span[4] for span in spans]
    return InstanceBatch(
        input_ids=input_ids,
        input_mask=input_mask,
        segment_ids=segment_ids,
        masked_lm_positions=positions,
        masked_lm_ids=masked_ids,
        masked_lm_weights=weights,
        next_sentence_labels=np.asarray(is_random_next, dtype=np.int64).reshape(-1, 1),
    )


def count_instance_statistics(batch, mask_id):
    """Counts what a batch of finished instances holds.

    The masked-LM split is read off the written data: a predicted position
    holding [MASK] was masked, one holding its original id was kept, any
    other id is a random replacement (a random draw that hit the original id
    counts as kept, as it would for any reader of the files).

    Returns:
        A dict of integer counts: instances, tokens (real tokens, [CLS] and
        [SEP] included), masked_tokens, replaced_by_mask, kept_original,
        replaced_by_random, random_next.
    """
    predicted = batch.masked_lm_weights > 0
    shown = np.take_along_axis(batch.input_ids, batch.masked_lm_positions, axis=1)
    as_mask = predicted & (shown == mask_id)
    kept = predicted & ~as_mask & (shown == batch.masked_lm_ids)
    return {
        "instances": len(batch),
        "tokens": int(batch.input_mask.sum()),
        "masked_tokens": int(predicted.sum()),
        "replaced_by_mask": int(as_mask.sum()),
        "kept_original": int(kept.sum()),
        "replaced_by_random": int((predicted & ~as_mask & ~kept).sum()),
        "random_next": int(batch.next_sentence_labels.sum()),
    }
