"""BERT WordPiece tokenizer that runs inside TensorFlow graphs and exports to TF Serving."""

import tensorflow as tf
import tensorflow_text as tf_text

from keras_bert_impl.text import basic_tokenizer
from keras_bert_impl.text import vocab_file as vocab_lib

# Plain graph code without Python control flow on tensors: tracing it through autograph
# only costs time.
_NOT_CONVERTED = tf.autograph.experimental.do_not_convert

# First TF Serving release that links every op of the tokenizer's graph: its one op
# outside core TensorFlow, FastWordpieceTokenizeWithOffsets, is in tf-text's ops_lib
# from server 2.10 on.
MIN_SERVING_VERSION = "2.10"

_MAX_UTF8_BYTES_PER_CHAR = 4


def _as_batch(texts):
    """Returns (texts as tf.string [batch], whether the input was a scalar)."""
    texts = tf.convert_to_tensor(texts)
    if texts.dtype != tf.string:
        raise TypeError(f"Tokenizer input must be tf.string, got {texts.dtype.name}.")
    rank = texts.shape.rank
    if rank is None or rank > 1:
        raise ValueError(
            f"Tokenizer input must be a scalar or a 1-D batch of strings, got shape {texts.shape}."
        )
    if rank == 0:
        return tf.expand_dims(texts, 0), True
    return texts, False


class _VocabularyIndex:
    """Tokens and their ids in a plain object.

    tf.Module and SavedModel tracking walk through list and dict attributes (wrapping and
    flattening every element, which takes seconds for 30k tokens) but not into plain objects.
    """

    def __init__(self, tokens):
        self.tokens = tuple(tokens)
        self.ids = {token: index for index, token in enumerate(tokens)}


class Tokenizer(tf.Module):
    """BERT tokenizer (BasicTokenizer + greedy longest-match WordPiece) in the graph.

    Gives the ids of the reference `BertTokenizerFast` (without special tokens): control
    and format characters dropped, CJK ideographs and punctuation split off, lower-casing
    and accent stripping for uncased vocabularies, `##` continuation pieces, and `[UNK]`
    for a word that cannot be split or is longer than `max_chars_per_word` characters.
    Invalid UTF-8 bytes are read as U+FFFD and dropped like every U+FFFD.

    Normalization and word splitting use core TensorFlow ops only; the one tf-text op is
    `FastWordpieceTokenizeWithOffsets`, so exported graphs need TF Serving >= 2.10. The
    vocabulary lives in graph constants: no lookup table, no asset file.

    Args:
        vocab_file: vocabulary file (one token per line), or a list of tokens.
        lowercase: lower-case the text (uncased vocabularies).
        strip_accents: NFD-decompose and drop non-spacing marks; None follows `lowercase`.
        max_chars_per_word: words with more characters become `[UNK]`.
        split_special_tokens: False (the reference's default): "[PAD]", "[UNK]", "[CLS]",
            "[SEP]" and "[MASK]" written in the text, exactly so, are those tokens (so
            "Paris is the [MASK] of France." asks for a mask). True: they are plain text.
        name: module name.
    """

    def __init__(
        self,
        vocab_file,
        lowercase=True,
        strip_accents=None,
        max_chars_per_word=100,
        split_special_tokens=False,
        name=None,
    ):
        super().__init__(name=name)
        if isinstance(vocab_file, (list, tuple)):
            vocabulary = [str(token) for token in vocab_file]
            vocab_lib.check_vocabulary(vocabulary, "<token list>")
        else:
            vocabulary = vocab_lib.load_vocabulary(vocab_file)
        if int(max_chars_per_word) < 1:
            raise ValueError(
                f"max_chars_per_word must be >= 1, got {max_chars_per_word}."
            )
        self._index = _VocabularyIndex(vocabulary)
        self.max_chars_per_word = int(max_chars_per_word)
        self.split_special_tokens = bool(split_special_tokens)
        self._basic_tokenizer = basic_tokenizer.BasicTokenizer(
            lowercase,
            strip_accents,
            special_tokens=()
            if self.split_special_tokens
            else vocab_lib.SPECIAL_TOKENS,
        )
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocabulary,
            suffix_indicator="##",
            # Any word within the character limit fits; the limit itself is applied in
            # characters below, as the reference counts characters, not bytes.
            max_bytes_per_word=_MAX_UTF8_BYTES_PER_CHAR * self.max_chars_per_word,
            token_out_type=tf.int32,
            unknown_token=vocab_lib.UNK,
            no_pretokenization=True,
        )
        self._token_strings = tf.constant(vocabulary)
        self._special_ids = tf.constant(
            [self.token_to_id(token) for token in vocab_lib.SPECIAL_TOKENS], tf.int32
        )

    @property
    def lowercase(self):
        return self._basic_tokenizer.lowercase

    @property
    def strip_accents(self):
        return self._basic_tokenizer.strip_accents

    @property
    def vocabulary(self):
        """The tokens, index = id (a copy)."""
        return list(self._index.tokens)

    @property
    def vocab_size(self):
        return len(self._index.tokens)

    def token_to_id(self, token):
        """Id of `token` as a Python int; ValueError naming the token if it is not in the vocabulary."""
        try:
            return self._index.ids[token]
        except KeyError:
            raise ValueError(f"Token {token!r} is not in the vocabulary.") from None

    def id_to_token(self, token_id):
        """Token string of `token_id`; ValueError if out of range."""
        token_id = int(token_id)
        if not 0 <= token_id < len(self._index.tokens):
            raise ValueError(
                f"Token id {token_id} is out of range for a vocabulary of {len(self._index.tokens)}."
            )
        return self._index.tokens[token_id]

    @property
    def pad_id(self):
        return self.token_to_id(vocab_lib.PAD)

    @property
    def unk_id(self):
        return self.token_to_id(vocab_lib.UNK)

    @property
    def cls_id(self):
        return self.token_to_id(vocab_lib.CLS)

    @property
    def sep_id(self):
        return self.token_to_id(vocab_lib.SEP)

    @property
    def mask_id(self):
        return self.token_to_id(vocab_lib.MASK)

    @_NOT_CONVERTED
    def split_words(self, texts):
        """Cleaned, normalized words before WordPiece: RaggedTensor tf.string [batch, (words)]."""
        texts, scalar = _as_batch(texts)
        words = self._basic_tokenizer.split(texts).strings()
        return words[0] if scalar else words

    def _original_offsets(self, words, ids, piece_starts, piece_ends):
        """Byte offsets of pieces within their word -> offsets in the original strings."""
        # Byte positions of the normalized characters, all words laid end to end.
        char_bytes = basic_tokenizer.utf8_length(words.chars.flat_values)
        char_positions = tf.cumsum(char_bytes, exclusive=True)
        word_position = tf.gather(char_positions, words.chars.row_starts())
        piece_word = ids.value_rowids()
        first_byte = tf.gather(word_position, piece_word) + piece_starts.flat_values
        last_byte = tf.gather(word_position, piece_word) + piece_ends.flat_values - 1
        first_char = tf.searchsorted(char_positions, first_byte, side="right") - 1
        last_char = tf.searchsorted(char_positions, last_byte, side="right") - 1
        return tf.gather(words.char_starts, first_char), tf.gather(
            words.char_ends, last_char
        )

    @_NOT_CONVERTED
    def _word_pieces(self, texts, with_offsets):
        """Returns ids (and starts, ends): RaggedTensors [batch, (words), (pieces)]."""
        words = self._basic_tokenizer.split(texts)
        word_strings = tf.strings.unicode_encode(words.chars, "UTF-8")
        if with_offsets:
            ids, piece_starts, piece_ends = self._wordpiece.tokenize_with_offsets(
                word_strings
            )
            starts, ends = self._original_offsets(words, ids, piece_starts, piece_ends)
        else:
            ids = self._wordpiece.tokenize(word_strings)

        # Special tokens written in the text become their id, over-long words one [UNK];
        # either way one piece that spans the whole word.
        too_long = words.chars.row_lengths() > self.max_chars_per_word
        special_id = basic_tokenizer.clamped_gather(
            self._special_ids, words.special_index
        )
        replacement = tf.where(
            words.special_index >= 0, special_id, tf.where(too_long, self.unk_id, -1)
        )
        whole_word = replacement >= 0
        lengths = tf.where(
            whole_word, tf.ones_like(ids.row_lengths()), ids.row_lengths()
        )
        new_word = tf.repeat(tf.range(tf.shape(lengths, out_type=tf.int64)[0]), lengths)
        position = tf.range(tf.shape(new_word, out_type=tf.int64)[0]) - tf.gather(
            tf.cumsum(lengths, exclusive=True), new_word
        )
        old_index = tf.gather(ids.row_starts(), new_word) + position
        replaced = tf.gather(whole_word, new_word)

        def merge(whole_word_values, piece_values):
            return tf.where(
                replaced,
                tf.gather(whole_word_values, new_word),
                basic_tokenizer.clamped_gather(piece_values, old_index),
            )

        values = [merge(replacement, ids.flat_values)]
        if with_offsets:
            word_start = tf.gather(words.char_starts, words.chars.row_starts())
            word_end = tf.gather(words.char_ends, words.chars.row_limits() - 1)
            values += [merge(word_start, starts), merge(word_end, ends)]
        word_splits = tf.concat([[0], tf.cumsum(lengths)], 0)
        return [
            tf.RaggedTensor.from_nested_row_splits(
                value, [words.row_splits, word_splits], validate=False
            )
            for value in values
        ]

    @_NOT_CONVERTED
    def tokenize_words(self, texts):
        """Word-piece ids grouped by word: RaggedTensor int32 [batch, (words), (pieces)]."""
        texts, scalar = _as_batch(texts)
        (ids,) = self._word_pieces(texts, with_offsets=False)
        return ids[0] if scalar else ids

    @_NOT_CONVERTED
    def tokenize_with_offsets(self, texts):
        """Ids plus byte offsets of each piece in its original string.

        Args:
            texts: tf.string [batch] (or a scalar).

        Returns:
            (ids int32, starts int64, ends int64), RaggedTensors [batch, (tokens)] (dense
            1-D tensors for a scalar input). `texts[i][starts[i, j]:ends[i, j]]` is the
            original text of token j (a word's characters when a piece splits a character
            that normalization expanded).
        """
        texts, scalar = _as_batch(texts)
        pieces = self._word_pieces(texts, with_offsets=True)
        outputs = [value.merge_dims(1, 2) for value in pieces]
        if scalar:
            return tuple(value[0] for value in outputs)
        return tuple(outputs)

    @_NOT_CONVERTED
    def tokenize_words_with_offsets(self, texts):
        """`tokenize_with_offsets` grouped by word: (ids, starts, ends), each a
        RaggedTensor [batch, (words), (pieces)] ([(words), (pieces)] for a scalar)."""
        texts, scalar = _as_batch(texts)
        pieces = self._word_pieces(texts, with_offsets=True)
        if scalar:
            return tuple(value[0] for value in pieces)
        return tuple(pieces)

    @_NOT_CONVERTED
    def tokenize(self, texts):
        """Ids without special tokens: RaggedTensor int32 [batch, (tokens)], 1-D for a scalar."""
        texts, scalar = _as_batch(texts)
        (ids,) = self._word_pieces(texts, with_offsets=False)
        ids = ids.merge_dims(1, 2)
        return ids[0] if scalar else ids

    @_NOT_CONVERTED
    def __call__(self, texts):
        return self.tokenize(texts)

    @_NOT_CONVERTED
    def detokenize(self, ids, skip_special_tokens=False):
        """Joins word pieces back into text: words separated by one space, `##` pieces glued.

        Args:
            ids: int ids, [batch, (tokens)] ragged or dense, or 1-D for one text.
            skip_special_tokens: drop [PAD], [UNK], [CLS], [SEP] and [MASK] first.

        Returns:
            tf.string [batch] (a scalar for 1-D ids).
        """
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.convert_to_tensor(ids)
        if ids.shape.rank == 1:
            return self.detokenize(tf.expand_dims(ids, 0), skip_special_tokens)[0]
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        ids = tf.cast(ids, tf.int32)
        if skip_special_tokens:
            is_special = tf.reduce_any(
                tf.equal(tf.expand_dims(ids.flat_values, 1), self._special_ids), axis=1
            )
            ids = tf.ragged.boolean_mask(
                ids, ids.with_flat_values(tf.logical_not(is_special))
            )
        tokens = tf.gather(self._token_strings, ids)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        return tf.strings.regex_replace(text, " ##", "")
