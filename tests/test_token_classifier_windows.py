"""One rule cuts long token-classification inputs into windows of whole words: the
CoNLL reader's training rows, `predict_text` and the exported tagger agree on it."""

import numpy as np
import pytest
import tensorflow as tf
from model_helpers import tiny_config

from keras_bert_impl import BertTokenClassifier
from keras_bert_impl.data.conll import ConllSentences, conll_features
from keras_bert_impl.export import export_token_classifier
from keras_bert_impl.preprocessing import BertTokenClassifierPreprocessor
from keras_bert_impl.text import Tokenizer
from keras_bert_impl.text.word_windows import word_windows

SEQUENCE_LENGTH = 8  # windows of 6 pieces
TAGS = ["O", "B-LOC", "I-LOC", "B-PER"]
# "zzzzzzzzz" is nine pieces (z ##z ...): longer than a window.
WORDS = "paris is the capital of france zzzzzzzzz and big film paris".split()
# Greedy whole words: the long word alone, cut; the next window starts after it.
WINDOWS = [[0, 1, 2, 3, 4, 5], [6], [7, 8, 9, 10]]


def _tokenizer():
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = "paris is the capital of france and big film".split()
    return Tokenizer(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        + words
        + list(letters)
        + ["##" + c for c in letters]
    )


@pytest.fixture(scope="module")
def tagger():
    tf.keras.utils.set_random_seed(3)
    tokenizer = _tokenizer()
    preprocessor = BertTokenClassifierPreprocessor(tokenizer, SEQUENCE_LENGTH)
    model = BertTokenClassifier(
        tiny_config(vocab_size=tokenizer.vocab_size),
        label_names=TAGS,
        preprocessor=preprocessor,
    )
    model.build()
    return model


def _windows_of(features):
    """Word indices of each feature row, in order."""
    return [row[row >= 0].tolist() for row in features.word_index]


def test_data_windows_predict_text_and_export_agree(tagger, tmp_path):
    tokenizer = tagger.preprocessor.tokenizer
    sentences = ConllSentences(
        words=(tuple(WORDS),),
        tags=(("O",) * len(WORDS),),
        label_vocabulary=tuple(TAGS),
        first_lines=(1,),
        source="<text>",
    )
    features = conll_features(sentences, tokenizer, SEQUENCE_LENGTH)
    assert _windows_of(features) == WINDOWS
    assert features.padding_mask[1].sum() == SEQUENCE_LENGTH  # the long word, cut

    # What predict_text feeds the model: the same rows.
    text = " ".join(WORDS)
    encoded = tagger.preprocessor.encode_windows([text])
    for name in ("token_ids", "padding_mask", "word_index"):
        np.testing.assert_array_equal(encoded[name], getattr(features, name))
    assert encoded["example_index"].numpy().tolist() == [0, 0, 0]

    # Each word's tag and score: the model on the data windows, at its first piece.
    inputs = {
        "token_ids": features.token_ids,
        "segment_ids": features.segment_ids,
        "padding_mask": features.padding_mask,
    }
    probabilities = tf.nn.softmax(tagger(inputs, training=False), -1).numpy()
    rows, positions = np.nonzero(features.word_index >= 0)
    want_scores = probabilities[rows, positions].max(-1)
    want_tags = [TAGS[i] for i in probabilities[rows, positions].argmax(-1)]

    tagged = tagger.predict_text([text, ""])
    assert [w.word for w in tagged[0]] == WORDS and tagged[1] == []
    assert [w.tag for w in tagged[0]] == want_tags
    assert tagger.predict_text([WORDS]) == [want_tags]

    path = export_token_classifier(tagger, tmp_path / "ner")
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    got = serving(text=tf.constant([text, ""]))
    assert got["num_words"].numpy().tolist() == [len(WORDS), 0]
    assert [t.decode() for t in got["tags"][0].numpy()] == want_tags
    np.testing.assert_allclose(got["tag_scores"][0].numpy(), want_scores, atol=1e-5)


def test_word_windows_edge_cases():
    pieces = tf.ragged.constant(
        [[[1, 2], [3], [4, 5, 6, 7], [8]], [], [[1], [2], [3], [4], [5]]],
        ragged_rank=2,
    )
    windows, rows, firsts = word_windows(pieces, 3)
    assert windows.to_list() == [
        [[1, 2], [3]],
        [[4, 5, 6, 7]],  # uncut here: packing cuts it
        [[8]],
        [[1], [2], [3]],
        [[4], [5]],
    ]
    assert rows.numpy().tolist() == [0, 0, 0, 2, 2]  # the text without words: none
    assert firsts.numpy().tolist() == [0, 2, 3, 0, 3]
    empty = tf.RaggedTensor.from_row_lengths(
        tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64)),
        [0, 0],
    )
    windows, rows, firsts = word_windows(empty, 3)
    assert windows.nrows() == 0 and rows.shape == (0,) and firsts.shape == (0,)
