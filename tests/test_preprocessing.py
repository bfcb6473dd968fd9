"""The task preprocessors: same ids as the reference tokenizer, the readers'
packing, tf.data, serialisation with the vocabulary, and clear errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_bert_impl.data.conll import ConllSentences
from keras_bert_impl.data.conll import conll_features
from keras_bert_impl.data.squad import SquadExample
from keras_bert_impl.data.squad import squad_features
from keras_bert_impl.preprocessing import BertMaskedLMPreprocessor
from keras_bert_impl.preprocessing import BertQuestionAnswererPreprocessor
from keras_bert_impl.preprocessing import BertTextClassifierPreprocessor
from keras_bert_impl.preprocessing import BertTokenClassifierPreprocessor
from tests.text_helpers import reference_model_dir
from tests.text_helpers import reference_tokenizer

# Strings that break naive preprocessing.
HOSTILE = [
    "",
    "   \t\n ",
    "word " * 20_000 + "end",
    b"caf\xc3\xa9 \xff\xfe broken \xc3",
    "English, русский, 中文, العربية and हिन्दी",
    "emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇫🇷",
    "zero\u200bwidth and \u0000 control",
]


@pytest.fixture(scope="module")
def checkpoint():
    return str(reference_model_dir())


@pytest.fixture(scope="module")
def classifier_preprocessor(checkpoint):
    return BertTextClassifierPreprocessor.from_preset(checkpoint, sequence_length=32)


def _reference_ids(texts, pairs=None, length=32):
    reference = reference_tokenizer()
    decoded = [
        t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in texts
    ]
    encoded = reference(
        decoded,
        pairs,
        max_length=length,
        truncation=True,
        padding="max_length",
        return_tensors="np",
    )
    return encoded


def test_classifier_matches_reference_tokenizer_on_hostile_text(
    classifier_preprocessor,
):
    x = classifier_preprocessor(HOSTILE)
    reference = _reference_ids(HOSTILE)
    np.testing.assert_array_equal(np.asarray(x["token_ids"]), reference["input_ids"])
    np.testing.assert_array_equal(
        np.asarray(x["padding_mask"]), reference["attention_mask"]
    )


def test_classifier_pairs_match_reference_and_pass_labels(classifier_preprocessor):
    first = ["What is the capital of France?", "", "a " * 40]
    second = ["Paris is the capital.", "only B", "b " * 10]
    x, y, w = classifier_preprocessor(
        (first, second), np.array([1, 0, 1]), [1.0, 2.0, 3.0]
    )
    reference = _reference_ids(first, second)
    np.testing.assert_array_equal(np.asarray(x["token_ids"]), reference["input_ids"])
    np.testing.assert_array_equal(
        np.asarray(x["segment_ids"]), reference["token_type_ids"]
    )
    assert list(y) == [1, 0, 1] and list(w) == [1.0, 2.0, 3.0]


def test_classifier_runs_in_tf_data_with_labels(classifier_preprocessor):
    texts = ["good movie", "bad movie", "fine"]
    dataset = (
        tf.data.Dataset.from_tensor_slices((texts, [1, 0, 1]))
        .batch(2)
        .map(classifier_preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
    )
    batches = list(dataset)
    assert [int(b[0]["token_ids"].shape[0]) for b in batches] == [2, 1]
    eager = classifier_preprocessor(texts)
    np.testing.assert_array_equal(
        np.concatenate([b[0]["token_ids"] for b in batches]), eager["token_ids"]
    )


def test_single_string_gives_unbatched_inputs(classifier_preprocessor):
    x = classifier_preprocessor("A single sentence.")
    assert tuple(x["token_ids"].shape) == (32,)


@pytest.mark.parametrize(
    "bad, got",
    [
        ([1, 2, 3], "a list holding int"),
        (np.array([0.5, 1.5]), "numpy array of dtype float64"),
        ({"text": ["a"]}, "got dict"),
        (tf.constant([1, 2]), "int32 tensor"),
        (None, "got NoneType"),
    ],
)
def test_wrong_input_type_names_what_is_accepted(classifier_preprocessor, bad, got):
    with pytest.raises(
        TypeError, match="a list or 1-D numpy array of str/bytes"
    ) as info:
        classifier_preprocessor(bad)
    assert got in str(info.value)


def test_serialises_with_its_vocabulary(classifier_preprocessor, tmp_path):
    config = keras.saving.serialize_keras_object(classifier_preprocessor)
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, BertTextClassifierPreprocessor)
    assert restored.tokenizer.vocabulary == classifier_preprocessor.tokenizer.vocabulary
    np.testing.assert_array_equal(
        restored(HOSTILE)["token_ids"], classifier_preprocessor(HOSTILE)["token_ids"]
    )


def test_casing_comes_from_the_checkpoint(checkpoint, tmp_path):
    assert BertTextClassifierPreprocessor.from_preset(checkpoint).tokenizer.lowercase
    # A Google-style directory (no tokenizer_config.json) with a cased vocabulary.
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Hello", "hello", "!"]
    (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    cased = BertTextClassifierPreprocessor.from_preset(str(tmp_path), sequence_length=8)
    assert not cased.tokenizer.lowercase
    assert list(np.asarray(cased("Hello hello!")["token_ids"][:5])) == [2, 5, 6, 7, 3]
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        BertTextClassifierPreprocessor.from_preset(str(tmp_path / "missing"))


def test_token_classifier_words_match_the_conll_reader(checkpoint):
    preprocessor = BertTokenClassifierPreprocessor.from_preset(
        checkpoint, sequence_length=12
    )
    words = [["EU", "rejects", "German", "call"], ["Peter", "\u200b", "Blackburn"]]
    tags = [[1, 0, 2, 0], [3, 0, 4]]
    x, labels = preprocessor(words, tags)
    sentences = ConllSentences(
        words=tuple(map(tuple, words)),
        tags=tuple(tuple(str(t) for t in row) for row in tags),
        label_vocabulary=tuple(str(i) for i in range(5)),
        first_lines=(1, 6),
        source="<test>",
    )
    features = conll_features(sentences, preprocessor.tokenizer, 12)
    np.testing.assert_array_equal(x["token_ids"], features.token_ids)
    np.testing.assert_array_equal(labels, features.labels)
    ragged = tf.ragged.constant(words)
    dataset = tf.data.Dataset.from_tensor_slices((ragged, tf.ragged.constant(tags)))
    batch = next(iter(dataset.batch(2).map(preprocessor)))
    np.testing.assert_array_equal(batch[1], features.labels)


def test_token_classifier_raw_text_offsets_point_at_words(checkpoint):
    preprocessor = BertTokenClassifierPreprocessor.from_preset(
        checkpoint, sequence_length=16
    )
    texts = ["Angela Merkel visited Paris, café owners cheered.", ""]
    encoded = preprocessor.encode(texts)
    starts, ends = encoded["word_starts"][0].numpy(), encoded["word_ends"][0].numpy()
    raw = texts[0].encode()
    words = [raw[s:e].decode() for s, e in zip(starts, ends)]
    assert words == [
        "Angela",
        "Merkel",
        "visited",
        "Paris",
        ",",
        "café",
        "owners",
        "cheered",
        ".",
    ]
    word_index = encoded["word_index"].numpy()
    assert sorted(word_index[0][word_index[0] >= 0]) == list(range(len(words)))
    assert (word_index[1] == -1).all()


def test_question_answerer_matches_the_squad_reader(checkpoint):
    preprocessor = BertQuestionAnswererPreprocessor.from_preset(
        checkpoint, sequence_length=24, doc_stride=5, max_query_length=8
    )
    context = "The café in Paris opened in 1907 and is still famous for its pastries."
    examples = [
        SquadExample("a", "When did the café open?", context, (("1907", 28),), False),
        SquadExample("b", "Who?", "Nobody knows.", (), True),
    ]
    x, y = preprocessor(
        ([e.question for e in examples], [e.context for e in examples]),
        {"answer_start": [28, -1], "answer_text": ["1907", ""]},
    )
    features = squad_features(
        examples,
        preprocessor.tokenizer,
        max_seq_length=24,
        doc_stride=5,
        max_query_length=8,
    )
    np.testing.assert_array_equal(x["token_ids"], features.token_ids)
    np.testing.assert_array_equal(x["segment_ids"], features.segment_ids)
    np.testing.assert_array_equal(y["start_positions"], features.start_positions)
    np.testing.assert_array_equal(y["end_positions"], features.end_positions)
    encoded = preprocessor.encode(
        ([e.question for e in examples], [context, "Nobody knows."])
    )
    np.testing.assert_array_equal(
        encoded["is_max_context"], features.token_is_max_context
    )


def test_question_answerer_refuses_a_single_text(checkpoint):
    preprocessor = BertQuestionAnswererPreprocessor.from_preset(
        checkpoint, sequence_length=32, doc_stride=8, max_query_length=8
    )
    with pytest.raises(TypeError, match=r"\(question, context\) tuple"):
        preprocessor(["only a question"])


def test_masked_lm_masks_fresh_each_batch_and_never_specials(checkpoint):
    preprocessor = BertMaskedLMPreprocessor.from_preset(
        checkpoint, sequence_length=24, max_predictions_per_seq=5, seed=3
    )
    texts = ["the quick brown fox jumps over the lazy dog again and again"] * 4
    dataset = tf.data.Dataset.from_tensor_slices(texts).repeat(3).batch(4)
    batches = list(dataset.map(preprocessor))
    plain = BertTextClassifierPreprocessor.from_preset(checkpoint, sequence_length=24)(
        texts[:1]
    )["token_ids"][0].numpy()
    masks = set()
    for x, y in batches:
        positions, weights = x["mask_positions"].numpy(), y["masked_lm_weights"].numpy()
        for row in range(4):
            chosen = positions[row][weights[row] > 0]
            assert len(chosen) == 2  # round(14 * 0.15)
            assert all(plain[p] not in (101, 102, 0) for p in chosen)
            np.testing.assert_array_equal(
                y["masked_lm_ids"].numpy()[row][weights[row] > 0], plain[chosen]
            )
            masks.add(tuple(chosen))
    assert len(masks) > 1
    restored = BertMaskedLMPreprocessor.from_config(preprocessor.get_config())
    assert restored.masker.max_predictions_per_seq == 5
