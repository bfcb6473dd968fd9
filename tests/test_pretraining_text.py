"""Pretraining on raw text: next-sentence pairs drawn in tf.data, dynamic
masks, `BertPretrainer.fit` on strings and `kbi-pretrain --input_format`."""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_bert_impl import BertPretrainer
from keras_bert_impl.constants import SPECIAL_TOKENS
from keras_bert_impl.data.next_sentence_pairs import next_sentence_pairs
from keras_bert_impl.data.recipe_masking import num_to_predict
from keras_bert_impl.preprocessing import BertPretrainingPreprocessor
from keras_bert_impl.training.settings import PretrainSettings
from keras_bert_impl.training.pretraining import run_pretraining
from keras_bert_impl.training.pretraining import text_pretraining_dataset
from tests.model_helpers import real_checkpoint_dir
from tests.model_helpers import tiny_config

PASSAGES = [
    "The cat sat on the mat. It was warm! Then it left the room.",
    "Stocks fell sharply today. Traders worried about rates.\nMarkets closed early.",
    "A dog barked at night. Birds sang in the morning. The farmer woke up.",
    "Rain fell on the hills. Rivers rose quickly. The bridge was closed.",
]


@pytest.fixture(scope="module")
def preprocessor():
    return BertPretrainingPreprocessor(
        vocabulary=os.path.join(real_checkpoint_dir(), "vocab.txt"),
        sequence_length=32,
        max_predictions_per_seq=6,
        seed=7,
    )


def _synthetic_passages(num_passages, rng):
    """Passages of 2-6 sentences of 1-6 tokens; token = passage * 1000 +
    sentence * 10 + position, so every token says where it came from."""
    ids, ends = [], []
    for passage in range(num_passages):
        row, row_ends = [], []
        for sentence in range(rng.integers(2, 7)):
            length = rng.integers(1, 7)
            row += [passage * 1000 + sentence * 10 + k for k in range(length)]
            row_ends += [k == length - 1 for k in range(length)]
        ids.append(row)
        ends.append(row_ends)
    return tf.ragged.constant(ids, tf.int32), tf.ragged.constant(ends, tf.bool)


def test_pairs_follow_the_reference_rule_and_half_are_random_next():
    rng = np.random.default_rng(0)
    ids, ends = _synthetic_passages(500, rng)
    passages = ids.to_list()
    labels_seen = []
    for seed in range(4):
        a, b, labels = next_sentence_pairs(ids, ends, tf.constant([seed, 1]), 40)
        for row, (tokens_a, tokens_b, label) in enumerate(
            zip(a.to_list(), b.to_list(), labels.numpy())
        ):
            passage = passages[row]
            assert tokens_a, "A is never empty"
            assert all(t // 1000 == row for t in tokens_a)
            start = passage.index(tokens_a[0])
            assert passage[start : start + len(tokens_a)] == tokens_a
            assert tokens_a[0] % 10 == 0 and tokens_b[0] % 10 == 0  # whole sentences
            if label == 0:  # is next: B continues A in the same passage
                end = start + len(tokens_a)
                assert passage[end : end + len(tokens_b)] == tokens_b
            else:  # random next: B from another passage of the batch
                assert all(t // 1000 == tokens_b[0] // 1000 != row for t in tokens_b)
        labels_seen.extend(labels.numpy())
    # Every chunk here holds >= 2 sentences, so random next is a fair coin.
    assert abs(np.mean(labels_seen) - 0.5) < 0.03


def test_masks_follow_the_recipe(preprocessor):
    passages = tf.constant(PASSAGES * 64)
    x, y = preprocessor(passages)
    weights = y["masked_lm_weights"].numpy()
    real = x["padding_mask"].numpy().sum(axis=1)
    np.testing.assert_array_equal(weights.sum(axis=1), num_to_predict(real, 0.15, 6))
    shown = np.take_along_axis(x["token_ids"].numpy(), x["mask_positions"].numpy(), 1)
    original = y["masked_lm_ids"].numpy()
    chosen = weights > 0
    as_mask = (shown == preprocessor.tokenizer.mask_id)[chosen].mean()
    kept = (shown == original)[chosen].mean()
    assert abs(as_mask - 0.8) < 0.05 and abs(kept - 0.1) < 0.04
    assert not np.isin(original[chosen], [101, 102, 0]).any()
    assert abs(y["next_sentence_labels"].numpy().mean() - 0.5) < 0.1
    segments = x["segment_ids"].numpy()
    assert (segments[:, 0] == 0).all() and (segments.max(axis=1) == 1).all()


def test_fit_on_raw_strings_and_a_dataset_of_strings(preprocessor):
    model = BertPretrainer(tiny_config(vocab_size=30522), preprocessor=preprocessor)
    model.compile(optimizer="adam", jit_compile=False)
    history = model.fit(PASSAGES * 2, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert np.isfinite(history.history["next_sentence_loss"][0])
    dataset = tf.data.Dataset.from_tensor_slices(np.array(PASSAGES)).batch(4)
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["masked_lm_loss"][0])
    # Given pairs with their labels are packed and masked as given.
    pairs = (PASSAGES[:2], PASSAGES[2:])
    history = model.fit(pairs, [0, 1], batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["masked_lm_loss"][0])
    with pytest.raises(TypeError, match="got an empty list"):
        model.fit([])
    with pytest.raises(TypeError, match="got a list of int"):
        model.fit([1, 2, 3])
    with pytest.raises(ValueError, match="the text input is empty"):
        model.fit(np.array([], dtype=str))
    with pytest.raises(TypeError, match="BertPretrainingPreprocessor takes"):
        preprocessor(tf.constant([1, 2]))


def test_config_round_trip(preprocessor):
    config = preprocessor.get_config()
    restored = BertPretrainingPreprocessor.from_config(config)
    assert restored.get_config() == config
    assert config["truncation"] == "random" and config["short_seq_prob"] == 0.1


WORDS = "the cat dog sat ran on a mat hill it was warm cold then left came".split()


def _text_corpus(tmp_path, rng):
    """A vocabulary file, a tiny config for it, and a raw text file of ten
    documents of multi-sentence paragraphs."""
    vocabulary = list(SPECIAL_TOKENS) + [".", "!", "?"] + WORDS
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(vocabulary) + "\n")
    config_file = tmp_path / "bert_config.json"
    tiny_config(vocab_size=len(vocabulary)).write_json_file(config_file)
    documents = []
    for _ in range(10):
        sentences = [
            " ".join(rng.choice(WORDS, rng.integers(2, 6))) + rng.choice([".", "!"])
            for _ in range(rng.integers(2, 5))
        ]
        documents.append(" ".join(sentences))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(documents) + "\n")
    return str(vocab_file), str(config_file), str(corpus)


def test_pretrain_tool_trains_on_raw_text(tmp_path):
    from keras_bert_impl.cli import pretrain

    vocab_file, config_file, corpus = _text_corpus(tmp_path, np.random.default_rng(1))
    out = tmp_path / "out"
    argv = [
        "kbi-pretrain",
        f"--input_file={corpus}",
        "--input_format=raw",
        f"--vocab_file={vocab_file}",
        f"--bert_config_file={config_file}",
        f"--output_dir={out}",
        "--max_seq_length=16",
        "--max_predictions_per_seq=3",
        "--train_batch_size=4",
        "--num_train_steps=2",
        "--num_warmup_steps=1",
    ]
    result = pretrain.run(argv)
    assert np.isfinite(result["history"][-1]["loss"])
    assert (out / "model.keras").exists()
    # Seeds come per batch from a seeded stream: a fresh pipeline gives the
    # same pairs, cuts and masks (what an exact resume replays).
    settings = PretrainSettings(
        input_file=corpus,
        output_dir=str(out),
        input_format="raw",
        vocab_file=vocab_file,
        max_seq_length=16,
        max_predictions_per_seq=3,
    )
    runs = [
        list(text_pretraining_dataset(settings, corpus, 4, True).take(3))
        for _ in range(2)
    ]
    for first, second in zip(*runs):
        tf.nest.map_structure(np.testing.assert_array_equal, first, second)
    # Bad input: one clear line and exit code 1, nothing written.
    with pytest.raises(SystemExit) as exit_info:
        pretrain.run([a for a in argv if not a.startswith("--vocab_file")])
    assert exit_info.value.code == 1
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    settings = PretrainSettings(
        input_file=str(empty),
        output_dir=str(tmp_path / "bad"),
        input_format="raw",
        vocab_file=vocab_file,
        bert_config_file=config_file,
        max_seq_length=16,
        num_train_steps=1,
        num_warmup_steps=0,
        verbose=0,
    )
    with pytest.raises(ValueError, match=r"empty.txt: no text"):
        run_pretraining(settings)
    assert not (tmp_path / "bad" / "model.keras").exists()
