"""CoNLL-format files → token-classification (NER) features.

A CoNLL file has one word per line, the word in the first column and its tag
in the last (`EU NNP B-NP B-ORG` or `EU B-ORG`), a blank line between
sentences, and `-DOCSTART-` lines between documents (skipped).

Each word is split into WordPieces on its own (so the word boundaries are the
file's, not the tokenizer's). A word's tag goes on its first piece; its other
pieces, `[CLS]`, `[SEP]` and padding get `IGNORE_LABEL` (-100, Hugging Face's
convention and what `BertTokenClassifier`'s loss skips). A sentence too long
for `seq_length` is split into windows of whole words (`text.word_windows`,
the same windows `predict_text` and the exported graph tag), so no word loses
its label; `word_predictions` puts the pieces back together.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_bert_impl.data.batching import batched_examples
from keras_bert_impl.data.text_files import read_lines
from keras_bert_impl.data.word_alignment import pack_word_windows
from keras_bert_impl.data.word_alignment import word_piece_ids
from keras_bert_impl.constants import IGNORE_LABEL
from keras_bert_impl.text import Packer

DOCUMENT_START = "-DOCSTART-"
OUTSIDE_TAG = "O"


@dataclasses.dataclass(frozen=True)
class ConllSentences:
    """Sentences read from a CoNLL file.

    Attributes:
        words: one tuple of words per sentence.
        tags: one tuple of tag names per sentence.
        label_vocabulary: tag names in index order.
        first_lines: line number of each sentence's first word.
        source: the file the sentences came from.
    """

    words: tuple
    tags: tuple
    label_vocabulary: tuple
    first_lines: tuple
    source: str

    def __len__(self):
        return len(self.words)


def tag_vocabulary(tags):
    """Orders tag names: `O` first, then by entity type, `B-` before `I-`."""

    def key(tag):
        prefix, _, entity = tag.partition("-")
        return (tag != OUTSIDE_TAG, entity, prefix)

    return tuple(sorted(set(tags), key=key))


def read_conll(path, *, label_vocabulary=None):
    """Reads a CoNLL file (word first column, tag last column).

    Args:
        path: the file (any path `tf.io.gfile` opens).
        label_vocabulary: tag names in index order; when None, the tags of
            this file ordered by `tag_vocabulary`. Pass the training file's
            vocabulary when reading dev/test files.

    Returns:
        `ConllSentences`.

    Raises:
        ValueError: naming the file and line of a line with fewer than two
            columns, a tag outside `label_vocabulary`, or invalid UTF-8; or
            when the file holds no sentences.
    """
    known = None if label_vocabulary is None else set(label_vocabulary)
    words, tags, first_lines = [], [], []
    current_words, current_tags = [], []

    def end_sentence():
        if current_words:
            words.append(tuple(current_words))
            tags.append(tuple(current_tags))
            current_words.clear()
            current_tags.clear()

    for line_number, line in read_lines(path):
        columns = line.split()
        if not columns or columns[0] == DOCUMENT_START:
            end_sentence()
            continue
        if len(columns) < 2:
            raise ValueError(
                f"{path}:{line_number}: expected a word and a tag separated by "
                f"whitespace, found {line!r}."
            )
        tag = columns[-1]
        if known is not None and tag not in known:
            raise ValueError(
                f"{path}:{line_number}: tag {tag!r} is not one of {list(label_vocabulary)}."
            )
        if not current_words:
            first_lines.append(line_number)
        current_words.append(columns[0])
        current_tags.append(tag)
    end_sentence()
    if not words:
        raise ValueError(f"{path}: no sentences found.")
    if label_vocabulary is None:
        label_vocabulary = tag_vocabulary(t for sentence in tags for t in sentence)
    return ConllSentences(
        words=tuple(words),
        tags=tuple(tags),
        label_vocabulary=tuple(label_vocabulary),
        first_lines=tuple(first_lines),
        source=str(path),
    )


@dataclasses.dataclass(frozen=True)
class TokenClassificationFeatures:
    """Packed model inputs and per-piece labels for token classification.

    Attributes:
        token_ids, segment_ids, padding_mask: int32 `[num_features, seq]`.
        labels: int32 `[num_features, seq]`: the tag index on each word's
            first piece, `IGNORE_LABEL` everywhere else.
        label_mask: bool `[num_features, seq]`, True where a label counts.
        word_index: int32 `[num_features, seq]`: index within its sentence of
            the word whose first piece sits there, -1 elsewhere.
        sentence_index: int32 `[num_features]`: the sentence of each feature.
        sentence_lengths: number of words of each sentence.
        label_vocabulary: tag names in index order.
    """

    token_ids: np.ndarray
    segment_ids: np.ndarray
    padding_mask: np.ndarray
    labels: np.ndarray
    label_mask: np.ndarray
    word_index: np.ndarray
    sentence_index: np.ndarray
    sentence_lengths: tuple
    label_vocabulary: tuple

    def __len__(self):
        return len(self.token_ids)

    def dataset(
        self,
        batch_size,
        *,
        shuffle=False,
        seed=None,
        repeat=False,
        drop_remainder=False,
        sample_weights=False,
    ):
        """A `tf.data.Dataset` of `(x, labels)` batches.

        Args:
            batch_size: features per batch.
            shuffle, seed, repeat, drop_remainder: as for any tf.data input.
            sample_weights: also yield `label_mask` as float32 sample weights,
                `(x, labels, weights)`, for losses that do not skip
                `IGNORE_LABEL` themselves.
        """
        x = {
            "token_ids": self.token_ids,
            "segment_ids": self.segment_ids,
            "padding_mask": self.padding_mask,
        }
        elements = (x, self.labels)
        if sample_weights:
            elements += (self.label_mask.astype(np.float32),)
        dataset = batched_examples(
            elements,
            len(self),
            batch_size,
            shuffle=shuffle,
            seed=seed,
            repeat=repeat,
            drop_remainder=drop_remainder,
        )
        return dataset.prefetch(tf.data.AUTOTUNE)

    def word_predictions(self, logits):
        """Turns per-piece logits into one tag name per word.

        Args:
            logits: `[num_features, seq, num_tags]` (or class indices
                `[num_features, seq]`), in feature order.

        Returns:
            A list with one list of tag names per sentence.
        """
        logits = np.asarray(logits)
        predicted = logits.argmax(-1) if logits.ndim == 3 else logits
        if predicted.shape != self.word_index.shape:
            raise ValueError(
                f"Expected predictions for {self.word_index.shape} pieces, got "
                f"{predicted.shape}."
            )
        sentences = [[None] * length for length in self.sentence_lengths]
        rows, columns = np.nonzero(self.word_index >= 0)
        for row, column in zip(rows, columns):
            tag = self.label_vocabulary[predicted[row, column]]
            sentences[self.sentence_index[row]][self.word_index[row, column]] = tag
        return sentences


def conll_features(sentences, tokenizer, seq_length):
    """Tokenizes and packs `ConllSentences` for token classification.

    Args:
        sentences: `ConllSentences` from `read_conll`.
        tokenizer: a `keras_bert_impl.text.Tokenizer`.
        seq_length: packed length, `[CLS]` and `[SEP]` included.

    Returns:
        `TokenClassificationFeatures`. A sentence whose pieces do not fit in
        `seq_length - 2` is cut into windows of whole words by the rule
        `predict_text` and the exported graph tag long text with
        (`text.word_windows`): a single word longer than that sits alone,
        cut to its first `seq_length - 2` pieces (its tag sits on the first
        one, so it is still labelled). Tokenizing, windows and packing are
        the token-classifier preprocessor's (`data.word_alignment`).
    """
    if seq_length < 3:
        raise ValueError(
            f"seq_length must be >= 3 ([CLS], a word, [SEP]), got {seq_length}."
        )
    index_of = {tag: i for i, tag in enumerate(sentences.label_vocabulary)}
    flat_words = [word for sentence in sentences.words for word in sentence]
    flat_tags = [index_of[tag] for tags in sentences.tags for tag in tags]
    lengths = [len(s) for s in sentences.words]
    words = tf.RaggedTensor.from_row_lengths(
        tf.constant(flat_words, tf.string), lengths
    )
    tags = tf.RaggedTensor.from_row_lengths(tf.constant(flat_tags, tf.int32), lengths)
    packer = Packer.from_tokenizer(tokenizer, seq_length)
    packed = pack_word_windows(word_piece_ids(tokenizer, words), packer, tags)
    packed = {name: value.numpy() for name, value in packed.items()}
    return TokenClassificationFeatures(
        token_ids=packed["token_ids"],
        segment_ids=packed["segment_ids"],
        padding_mask=packed["padding_mask"],
        labels=packed["labels"],
        label_mask=packed["labels"] != IGNORE_LABEL,
        word_index=packed["word_index"],
        sentence_index=packed["example_index"],
        sentence_lengths=tuple(lengths),
        label_vocabulary=sentences.label_vocabulary,
    )
