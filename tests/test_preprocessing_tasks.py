"""Task models with their preprocessor: fit / evaluate / predict on raw text,
predict_text, hostile strings, wrong input types, `.keras` round trips, the
JAX backend, and the README's five-line example."""

import os
import re
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_bert_impl import BertClassifier
from keras_bert_impl import BertQuestionAnswerer
from keras_bert_impl import BertTokenClassifier
from keras_bert_impl.preprocessing import BertQuestionAnswererPreprocessor
from keras_bert_impl.preprocessing import BertTextClassifierPreprocessor
from keras_bert_impl.preprocessing import BertTokenClassifierPreprocessor
from tests.model_helpers import real_checkpoint_dir
from tests.model_helpers import run_on_jax
from tests.model_helpers import tiny_config
from tests.test_preprocessing import HOSTILE
from tests.text_helpers import REPO_DIR
from tests.text_helpers import SHARED_DATA_DIR

VOCAB_SIZE = 30522
TEXTS = ["a gripping, funny film", "dull and far too long", "I loved it", "worst ever"]
LABELS = ["positive", "negative", "positive", "negative"]


def tiny(**overrides):
    return tiny_config(vocab_size=VOCAB_SIZE, **overrides)


@pytest.fixture(scope="module")
def vocab_file():
    return os.path.join(real_checkpoint_dir(), "vocab.txt")


@pytest.fixture(scope="module")
def classifier(vocab_file):
    preprocessor = BertTextClassifierPreprocessor(
        vocabulary=vocab_file, sequence_length=16
    )
    model = BertClassifier(
        tiny(), label_names=["negative", "positive"], preprocessor=preprocessor
    )
    model.compile(jit_compile=False)  # XLA compiles cost more than tiny steps
    return model


def test_fit_evaluate_predict_on_strings_equal_the_token_path(classifier):
    history = classifier.fit(TEXTS * 2, LABELS * 2, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    tokens = classifier.preprocessor(TEXTS)
    np.testing.assert_allclose(
        classifier.predict(TEXTS, verbose=0),
        classifier.predict(tokens, verbose=0),
        atol=1e-6,
    )
    on_strings = classifier.evaluate(TEXTS, LABELS, verbose=0, return_dict=True)
    on_tokens = classifier.evaluate(
        tokens, classifier.label_indices(LABELS), verbose=0, return_dict=True
    )
    assert on_strings == pytest.approx(on_tokens, abs=1e-6)


def test_numpy_arrays_pairs_and_datasets_of_strings(classifier):
    dataset = tf.data.Dataset.from_tensor_slices(
        (TEXTS, classifier.label_indices(LABELS))
    ).batch(2)
    history = classifier.fit(dataset, validation_data=(TEXTS, LABELS), verbose=0)
    assert np.isfinite(history.history["val_loss"][0])
    logits = classifier.predict(np.array(TEXTS), verbose=0)
    assert logits.shape == (4, 2)
    np.testing.assert_allclose(
        classifier.predict(dataset.map(lambda x, y: x), verbose=0), logits, atol=1e-6
    )
    by_pairs = classifier.predict([(t, "a second segment") for t in TEXTS], verbose=0)
    by_columns = classifier.predict((TEXTS, ["a second segment"] * 4), verbose=0)
    np.testing.assert_array_equal(by_pairs, by_columns)
    assert not np.allclose(by_pairs, logits)


def test_predict_text_gives_probabilities_and_label_names(classifier):
    result = classifier.predict_text(TEXTS + ["great"])
    assert result.label_names == ("negative", "positive")
    assert result.probabilities.shape == (5, 2)
    np.testing.assert_allclose(result.probabilities.sum(-1), 1.0, rtol=1e-5)
    expected = [result.label_names[i] for i in result.probabilities.argmax(-1)]
    assert result.labels == expected


def test_hostile_strings_through_fit_and_predict(classifier):
    labels = ["positive", "negative"] * (len(HOSTILE) // 2) + ["positive"] * (
        len(HOSTILE) % 2
    )
    history = classifier.fit(HOSTILE, labels, batch_size=3, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    # The same ids as the tokenizer (tests/test_preprocessing.py checks those
    # against transformers), hence the same outputs.
    np.testing.assert_allclose(
        classifier.predict(HOSTILE, verbose=0),
        classifier.predict(classifier.preprocessor(HOSTILE), verbose=0),
        atol=1e-6,
    )
    assert len(classifier.predict_text(HOSTILE).labels) == len(HOSTILE)


@pytest.mark.parametrize(
    "bad, got",
    [
        ([1, 2, 3], "a list of int"),
        (np.array([[0.5, 1.5]]), "numpy array of dtype float64"),
        (42, "got int"),
    ],
)
@pytest.mark.parametrize("method", ["fit", "predict", "evaluate"])
def test_wrong_input_type_names_what_is_accepted(classifier, method, bad, got):
    with pytest.raises(TypeError) as info:
        if method == "predict":
            classifier.predict(bad, verbose=0)
        else:
            getattr(classifier, method)(bad, [0], verbose=0)
    message = str(info.value)
    assert f"BertClassifier.{method} takes text" in message
    assert "token dicts (token_ids, segment_ids, padding_mask" in message
    assert got in message


def test_bad_labels_and_missing_preprocessor_are_explained(classifier):
    with pytest.raises(ValueError, match=r"\['neutral'\] are not among label_names"):
        classifier.fit(TEXTS[:1], ["neutral"], verbose=0)
    # An index past the classes: one line naming it and the valid ones, not
    # TensorFlow's error from inside the loss.
    for label in (2, -1):
        with pytest.raises(ValueError) as info:
            classifier.fit(TEXTS[:2], [0, label], verbose=0)
        assert str(info.value) == (
            f"Label {label} is not a class of this 2-class classifier: labels are "
            "class indices 0..1 (negative, positive) or those names."
        )
    bare = BertClassifier(tiny(), num_classes=2)
    bare.compile(jit_compile=False)
    with pytest.raises(ValueError, match="has no preprocessor"):
        bare.predict(TEXTS, verbose=0)


def test_keras_file_keeps_preprocessor_and_compiled_state(vocab_file, tmp_path):
    preprocessor = BertTextClassifierPreprocessor(
        vocabulary=vocab_file, sequence_length=8
    )
    model = BertClassifier(
        tiny(), label_names=["negative", "positive"], preprocessor=preprocessor
    )
    model.compile(jit_compile=False)
    model.fit(TEXTS, LABELS, batch_size=2, verbose=0)
    path = tmp_path / "classifier.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.compiled
    assert int(loaded.optimizer.iterations.numpy()) == 2
    assert type(loaded.preprocessor) is BertTextClassifierPreprocessor
    np.testing.assert_array_equal(
        loaded.predict(["text"], verbose=0), model.predict(["text"], verbose=0)
    )
    history = loaded.fit(TEXTS, LABELS, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_token_classifier_on_words_and_raw_text(vocab_file, tmp_path):
    preprocessor = BertTokenClassifierPreprocessor(
        vocabulary=vocab_file, sequence_length=12
    )
    tags = ["O", "B-PER", "I-PER", "B-LOC"]
    model = BertTokenClassifier(tiny(), label_names=tags, preprocessor=preprocessor)
    model.compile(jit_compile=False)
    words = [["Angela", "Merkel", "visited", "Paris"], ["Hello", "world"]]
    word_tags = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O"]]
    history = model.fit(words * 2, word_tags * 2, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(words, verbose=0).shape == (2, 12, 4)
    long_words = ["Paris", "is", "big"] * 7  # 21 words: three windows of 10
    predicted = model.predict_text(words + [long_words])
    assert [len(p) for p in predicted] == [4, 2, 21]
    assert all(tag in tags for p in predicted for tag in p)  # every word tagged
    windows = model.predict_text([long_words[:10], long_words[10:20], long_words[20:]])
    assert predicted[2] == windows[0] + windows[1] + windows[2]
    long_text = " ".join(long_words)
    tagged_text = model.predict_text([long_text])[0]
    assert [w.word for w in tagged_text] == long_words
    assert [w.tag for w in tagged_text] == predicted[2]
    text = "Angela Merkel visited Paris, café 😀."
    tagged = model.predict_text([text, ""])
    assert [w.word for w in tagged[0]] == [
        "Angela",
        "Merkel",
        "visited",
        "Paris",
        ",",
        "café",
        "😀",
        ".",
    ]
    assert all(text[w.start : w.end] == w.word for w in tagged[0])
    assert tagged[1] == []
    model.save(tmp_path / "tagger.keras")
    loaded = keras.saving.load_model(tmp_path / "tagger.keras")
    assert loaded.predict_text(words) == model.predict_text(words)


def test_question_answerer_fits_on_strings_and_returns_spans(vocab_file):
    preprocessor = BertQuestionAnswererPreprocessor(
        vocabulary=vocab_file, sequence_length=32, doc_stride=8, max_query_length=8
    )
    model = BertQuestionAnswerer(tiny(), preprocessor=preprocessor)
    model.compile(jit_compile=False)
    context = (
        "The café in Paris opened in 1907 and is still famous for its pastries, "
        "its writers and its long history. Tourists queue every morning for "
        "croissants, and the owners have never changed the recipe."
    )
    questions, contexts = ["When did the café open?"] * 2, [context] * 2
    answers = {"answer_start": [context.index("1907")] * 2, "answer_text": ["1907"] * 2}
    history = model.fit((questions, contexts), answers, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    windows = model.predict((questions, contexts), verbose=0)["start_logits"]
    assert windows.shape[0] > 2  # a long context spans several windows
    found = model.predict_text(questions + ["Who?"], contexts + ["Nobody knows."])
    assert len(found) == 3
    for answer, text in zip(found, contexts + ["Nobody knows."]):
        assert answer.text and text[answer.start : answer.end] == answer.text
        assert 0.0 < answer.score <= 1.0


_JAX_SCRIPT = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np
    assert keras.backend.backend() == "jax", keras.backend.backend()
    from keras_bert_impl import BertClassifier
    from keras_bert_impl.config import BertConfig
    from keras_bert_impl.preprocessing import BertTextClassifierPreprocessor

    preprocessor = BertTextClassifierPreprocessor(vocabulary=sys.argv[1], sequence_length=16)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_layers=2, num_heads=4,
                        intermediate_size=64, max_position_embeddings=32)
    model = BertClassifier(config, label_names=["negative", "positive"],
                           preprocessor=preprocessor)
    model.compile(jit_compile=False)
    texts = ["a gripping, funny film", "dull and far too long"] * 4
    labels = ["positive", "negative"] * 4
    history = model.fit(texts, labels, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    on_strings = model.predict(texts, verbose=0)
    on_tokens = model.predict(
        {k: np.asarray(v) for k, v in preprocessor(texts).items()}, verbose=0)
    assert np.abs(on_strings - on_tokens).max() < 1e-6
    print(model.predict_text(texts[:2]).labels)
    """
)


def test_strings_train_on_the_jax_backend(vocab_file):
    pytest.importorskip("jax", reason="jax (test extra) is not installed")
    stdout = run_on_jax(_JAX_SCRIPT, vocab_file)
    assert re.search(r"\['(negative|positive)', '(negative|positive)'\]", stdout)


def _readme_example():
    readme = (REPO_DIR / "README.md").read_text(encoding="utf-8")
    match = re.search(
        r"<!-- run by tests/test_preprocessing_tasks\.py[^>]*-->\s*```python\n(.*?)```",
        readme,
        re.DOTALL,
    )
    assert match, "README.md lost its five-line example"
    return match.group(1)


def test_readme_five_line_example_runs(monkeypatch, capsys):
    """The README's example as written, on a 64-sentence sample of SST-2."""
    from keras_bert_impl.data import tasks

    if not (SHARED_DATA_DIR / "sst2" / "train.tsv").is_file():
        pytest.skip("SST-2 is not in ../shared/data")
    read = tasks.read_tsv_examples

    def sample(path, **kwargs):
        examples = read(path, **kwargs)
        return tasks.TextExamples(
            texts=tuple(column[:64] for column in examples.texts),
            labels=examples.labels[:64],
            label_vocabulary=examples.label_vocabulary,
            source=examples.source,
        )

    monkeypatch.setattr(tasks, "read_tsv_examples", sample)
    # XLA compiling the real model's steps would cost more than the steps.
    compile_as_written = BertClassifier.compile
    monkeypatch.setattr(
        BertClassifier,
        "compile",
        lambda self, *args, **kwargs: compile_as_written(
            self, *args, jit_compile=False, **kwargs
        ),
    )
    monkeypatch.chdir(REPO_DIR)
    exec(compile(_readme_example(), "README.md", "exec"), {})
    accuracy = float(re.search(r"dev accuracy: ([0-9.]+)", capsys.readouterr().out)[1])
    assert 0.0 <= accuracy <= 1.0


def test_text_classifier_preprocessor_pads_each_batch_to_its_bucket(vocab_file):
    fixed = BertTextClassifierPreprocessor(vocabulary=vocab_file, sequence_length=64)
    bucketed = BertTextClassifierPreprocessor(
        vocabulary=vocab_file, sequence_length=64, bucket_lengths="auto"
    )
    short = bucketed(TEXTS)
    assert short["token_ids"].shape == (4, 16)  # longest text: 8 pieces
    full = fixed(TEXTS)
    for name in short:
        np.testing.assert_array_equal(short[name], full[name][:, :16])
    long_text = " ".join(["film"] * 40)
    assert bucketed([long_text])["token_ids"].shape == (1, 64)
    clone = BertTextClassifierPreprocessor.from_config(bucketed.get_config())
    assert clone.bucket_lengths == "auto"
    assert clone(TEXTS)["token_ids"].shape == (4, 16)
    model = BertClassifier(
        tiny(max_position_embeddings=64),
        label_names=["negative", "positive"],
        preprocessor=bucketed,
    )
    model.compile(jit_compile=False)
    history = model.fit(
        TEXTS + [long_text], LABELS + ["positive"], batch_size=4, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])


def test_fixed_length_text_is_tokenized_in_blocks_yet_batched_the_same(vocab_file):
    from keras_bert_impl.models import text_datasets

    texts = [f"{TEXTS[i % 4]} {i}" for i in range(75)]
    labels = np.arange(75) % 2
    fixed = BertTextClassifierPreprocessor(vocabulary=vocab_file, sequence_length=16)
    bucketed = BertTextClassifierPreprocessor(
        vocabulary=vocab_file, sequence_length=16, bucket_lengths="auto"
    )
    assert fixed.independent_rows and not bucketed.independent_rows
    dataset = text_datasets.text_dataset(fixed, texts, labels, batch_size=4)
    assert int(dataset.cardinality()) == 19  # Keras ends epochs on it
    batches = list(dataset.as_numpy_iterator())
    # 75 texts: 8-batch blocks of 32, split back into batches of 4, the last of 3.
    assert [len(y) for _, y in batches] == [4] * 18 + [3]
    for i, (x, y) in enumerate(batches):
        expected = fixed(texts[4 * i : 4 * i + 4])
        np.testing.assert_array_equal(y, labels[4 * i : 4 * i + 4])
        for name in expected:
            np.testing.assert_array_equal(x[name], expected[name])


def test_bucketed_training_batches_are_grouped_by_length(vocab_file):
    from keras_bert_impl.models import text_datasets

    rng = np.random.default_rng(0)
    texts = [" ".join(["film"] * int(n)) for n in rng.integers(1, 13, 130)]
    pairs = [f"{i}" for i in range(130)]
    labels = np.arange(130)
    bucketed = BertTextClassifierPreprocessor(
        vocabulary=vocab_file, sequence_length=16, bucket_lengths=[4, 8, 12, 16]
    )
    dataset = text_datasets.text_dataset(
        bucketed, (texts, pairs), labels, batch_size=4, shuffle=True
    )
    assert int(dataset.cardinality()) == 33
    epochs = [list(dataset.as_numpy_iterator()) for _ in range(2)]
    for batches in epochs:
        seen = np.concatenate([y for _, y in batches])
        np.testing.assert_array_equal(np.sort(seen), labels)  # each text once
        for x, y in batches:  # rows still carry their own text and label
            expected = bucketed(([texts[i] for i in y], [pairs[i] for i in y]))
            np.testing.assert_array_equal(x["token_ids"], expected["token_ids"])
    orders = [np.concatenate([y for _, y in batches]) for batches in epochs]
    assert not np.array_equal(*orders)  # reshuffled every epoch
    # Sorted windows of 8 batches: far less padding than random batches.
    padded = np.mean([x["token_ids"].shape[1] for x, _ in epochs[0]])
    random = text_datasets.batched_text(
        (texts, pairs), labels, batch_size=4, shuffle=True
    )
    random_padded = np.mean(
        [bucketed(x)["token_ids"].shape[1] for x, _ in random.as_numpy_iterator()]
    )
    assert padded < random_padded - 2
    # Without shuffling (evaluate, predict) the order is the input's.
    ordered = text_datasets.text_dataset(bucketed, (texts, pairs), labels, batch_size=4)
    np.testing.assert_array_equal(
        np.concatenate([y for _, y in ordered.as_numpy_iterator()]), labels
    )
