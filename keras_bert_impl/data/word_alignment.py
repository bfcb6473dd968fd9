"""Word-level token classification in the graph: words → pieces → packed rows
that remember which word each position starts.

One path for the CoNLL reader (`conll_features`), the token-classifier
preprocessor and the exported token-classifier graph: a word's tag sits on its
first piece; its other pieces,
`[CLS]`, `[SEP]` and padding carry `IGNORE_LABEL`; `word_index` says which
word a position starts (-1 elsewhere), which is how per-piece predictions
become one tag per word again. A text longer than a row is packed in windows of
whole words (`pack_word_windows`, cut by `text.word_windows`).
"""

import tensorflow as tf

from keras_bert_impl.constants import IGNORE_LABEL
from keras_bert_impl.text.packer import content_length
from keras_bert_impl.text.packer import place_in_rows
from keras_bert_impl.text.word_windows import word_windows

# `word_index` of positions that start no word.
NO_WORD = -1

_NOT_CONVERTED = tf.autograph.experimental.do_not_convert


@_NOT_CONVERTED
def word_piece_ids(tokenizer, words):
    """WordPiece ids of every word on its own.

    A word the tokenizer turns into nothing (a control or zero-width
    character) becomes one `[UNK]`, so that it keeps a position and a tag.

    Args:
        tokenizer: a `keras_bert_impl.text.Tokenizer`.
        words: RaggedTensor tf.string `[batch, (words)]`.

    Returns:
        RaggedTensor int32 `[batch, (words), (pieces)]`.
    """
    pieces = tokenizer(words.flat_values)
    empty = tf.equal(pieces.row_lengths(), 0)
    unknown = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(tf.cast(empty, tf.int32))], tokenizer.unk_id),
        tf.cast(empty, tf.int64),
    )
    pieces = tf.concat([pieces, tf.cast(unknown, pieces.dtype)], axis=1)
    return words.with_flat_values(pieces)


@_NOT_CONVERTED
def text_word_pieces(tokenizer, texts):
    """Raw text → its basic-tokenizer words' pieces and where each word sits.

    The words of raw text are BERT's basic-tokenizer words (whitespace and
    punctuation split); the token-classifier preprocessor and the exported
    token-classifier graph both split raw text with this.

    Args:
        tokenizer: a `keras_bert_impl.text.Tokenizer`.
        texts: tf.string `[batch]`.

    Returns:
        (pieces int32 `[batch, (words), (pieces)]`, word_starts, word_ends):
        the words' byte offsets in their text, int64 `[batch, (words)]`.
    """
    ids, starts, ends = tokenizer.tokenize_words_with_offsets(texts)
    # Every word has at least one piece: its first piece's start and its last
    # piece's end bound it.
    first = tf.gather(starts.flat_values, starts.values.row_starts())
    last = tf.gather(ends.flat_values, ends.values.row_limits() - 1)
    return ids, starts.with_values(first), ends.with_values(last)


@_NOT_CONVERTED
def pack_word_pieces(pieces, packer, word_labels=None):
    """Packs words' pieces as `[CLS] pieces [SEP]`, whole words only.

    Words are kept from the start while all their pieces fit in
    `seq_length - 2`; a first word longer than that keeps its first
    `seq_length - 2` pieces (its tag sits on the first one, so it is still
    labelled). Later words that do not fit are left out: their `word_index`
    never appears.

    Args:
        pieces: RaggedTensor int `[batch, (words), (pieces)]`.
        packer: a `keras_bert_impl.text.Packer` (one segment is packed).
        word_labels: optional RaggedTensor int `[batch, (words)]`, one tag
            index per word.

    Returns:
        dict of int32 `[batch, seq]`: `token_ids`, `segment_ids`,
        `padding_mask` (the packer's), `word_index` (the word a position
        starts, -1 elsewhere) and, with `word_labels`, `labels` (the word's
        tag on its first piece, `IGNORE_LABEL` elsewhere).
    """
    words = pieces.values  # [all words, (pieces)]
    word_row = pieces.value_rowids()  # [all words] → its row
    word_lengths = words.row_lengths()
    piece_word = words.value_rowids()  # [all pieces] → its word
    position_in_word = tf.ragged.range(word_lengths).values
    keep = tf.ones_like(position_in_word, tf.bool)
    if packer.seq_length is not None:
        budget = content_length(packer.seq_length, 1)
        kept_lengths = tf.minimum(word_lengths, budget)
        ends = tf.cumsum(kept_lengths)
        starts = tf.concat([[0], ends], 0)
        # Pieces of all earlier words of the same row, plus this word's.
        in_row = ends - tf.gather(starts, tf.gather(pieces.row_starts(), word_row))
        word_fits = in_row <= budget
        keep = (position_in_word < budget) & tf.gather(word_fits, piece_word)
    piece_row = tf.gather(word_row, piece_word)
    starts_word = tf.equal(position_in_word, 0)

    def rows(values):
        return tf.RaggedTensor.from_value_rowids(
            tf.boolean_mask(values, keep),
            tf.boolean_mask(piece_row, keep),
            nrows=pieces.nrows(),
        )

    packed = packer(rows(tf.cast(words.values, tf.int32)))
    width = packed["token_ids"].shape[1] or tf.shape(packed["token_ids"])[1]
    word_number = tf.cast(tf.ragged.range(pieces.row_lengths()).values, tf.int32)
    word_index = tf.where(starts_word, tf.gather(word_number, piece_word), NO_WORD)
    outputs = dict(packed)
    after_cls = tf.ones([pieces.nrows()], tf.int64)
    outputs["word_index"] = place_in_rows(rows(word_index), after_cls, NO_WORD, width)
    if word_labels is not None:
        labels = tf.gather(tf.cast(word_labels.values, tf.int32), piece_word)
        labels = tf.where(starts_word, labels, IGNORE_LABEL)
        outputs["labels"] = place_in_rows(rows(labels), after_cls, IGNORE_LABEL, width)
    return outputs


@_NOT_CONVERTED
def pack_word_windows(pieces, packer, word_labels=None):
    """Packs every word of each text: its consecutive windows of whole words
    (`text.word_windows`), one packed row each.

    Args:
        pieces: RaggedTensor int `[batch, (words), (pieces)]`.
        packer: a `keras_bert_impl.text.Packer` (one segment is packed); with
            no `seq_length`, each text is one window.
        word_labels: optional RaggedTensor int `[batch, (words)]`.

    Returns:
        `pack_word_pieces`' dict over windows (`[windows, seq]`), except that
        `word_index` counts the words of the window's text, plus
        `example_index`, int32 `[windows]`: the text of each window. A text
        without words has no row.
    """
    if packer.seq_length is None:
        # Every text fits in one window: more than all the pieces there are.
        budget = tf.size(pieces.flat_values, tf.int64) + 1
    else:
        budget = content_length(packer.seq_length, 1)
    windows, example_index, first_word = word_windows(pieces, budget)
    if word_labels is not None:
        word_labels = tf.RaggedTensor.from_row_splits(
            word_labels.values, windows.row_splits
        )
    outputs = pack_word_pieces(windows, packer, word_labels)
    word_index = outputs["word_index"]
    outputs["word_index"] = tf.where(
        word_index == NO_WORD,
        word_index,
        word_index + tf.cast(first_word, tf.int32)[:, None],
    )
    outputs["example_index"] = tf.cast(example_index, tf.int32)
    return outputs
