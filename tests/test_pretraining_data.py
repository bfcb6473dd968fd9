"""Pretraining-data creation: google-research/bert's recipe, the files, bad input.

Recipe tests run on token-id corpora (no tokenizer); file tests run the whole
job with a tiny vocabulary and the in-graph `Tokenizer`.
"""

import glob
import itertools
import json
import logging
import random
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from text_helpers import write_vocab

from keras_bert_impl.data import corpus as corpus_lib
from keras_bert_impl.data import pretraining, recipe_masking, sentences, tfrecord
from keras_bert_impl.data.example_encoder import serialize_examples
from keras_bert_impl.data.pretraining_files import create_pretraining_files
from keras_bert_impl.data.pretraining_reader import pretraining_dataset
from keras_bert_impl.text import Tokenizer
from keras_bert_impl.text.file_patterns import expand_file_patterns

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
STEMS = ["walk", "talk", "jump"]
SUFFIXES = ["##ing", "##ed", "##s"]
VOCAB = SPECIALS + [f"w{i}" for i in range(60)] + STEMS + SUFFIXES + [".", ","]
CLS_ID, SEP_ID, MASK_ID = 2, 3, 4
WORD_IDS = range(5, 65)
STEM_IDS = range(65, 68)
SUFFIX_IDS = range(68, 71)
MASKING_VOCAB = recipe_masking.MaskingVocabulary.from_tokens(VOCAB)


# ---------------------------------------------------------------- helpers


def id_documents(
    rng, num_documents, max_sentences=12, max_sentence_length=30, piece_rate=0.3
):
    """Random documents of id sentences; some one-sentence, some long sentences."""
    documents = []
    for _ in range(num_documents):
        num_sentences = int(rng.integers(1, max_sentences + 1))
        document = []
        for _ in range(num_sentences):
            length = int(rng.integers(1, max_sentence_length + 1))
            ids = rng.choice(WORD_IDS, size=length)
            pieces = rng.random(length) < piece_rate
            ids[pieces] = rng.choice(SUFFIX_IDS, size=int(pieces.sum()))
            document.append(ids.tolist())
        documents.append(document)
    return documents


def text_documents(rng, num_documents, max_sentences=8):
    """Random documents of text sentences over `VOCAB`."""
    words = [f"w{i}" for i in range(60)] + ["walking", "talked", "jumps"]
    return [
        [
            " ".join(rng.choice(words, size=int(rng.integers(2, 25)))) + " ."
            for _ in range(int(rng.integers(1, max_sentences + 1)))
        ]
        for _ in range(num_documents)
    ]


def write_text(path, documents):
    sentences.write_documents(documents, str(path))
    return str(path)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    vocab_file = write_vocab(tmp_path_factory.mktemp("vocab") / "vocab.txt", VOCAB)
    return Tokenizer(str(vocab_file))


@pytest.fixture(scope="module")
def text_corpus_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    return write_text(
        tmp_path_factory.mktemp("corpus") / "corpus.txt", text_documents(rng, 40)
    )


def read_records(path, recipe):
    spec = tfrecord.pretraining_feature_spec(
        recipe.max_seq_length, recipe.max_predictions_per_seq
    )
    dataset = tf.data.TFRecordDataset(path).map(
        lambda r: tf.io.parse_single_example(r, spec)
    )
    return [{k: v.numpy() for k, v in example.items()} for example in dataset]


def reference_instances(documents, document_index, recipe, rng):
    """google-research/bert's `create_instances_from_document` loop, on id lists.

    Transcribed step by step, with one change shared with the code under test:
    the trimming's per-token coin flips are drawn as one binomial per segment
    (A first), so both consume the same random numbers.
    """
    document = documents[document_index]
    max_num_tokens = recipe.max_seq_length - 3
    target_seq_length = max_num_tokens
    if rng.random() < recipe.short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)
    instances = []
    current_chunk = []
    current_length = 0
    i = 0
    while i < len(document):
        current_chunk.append(document[i])
        current_length += len(document[i])
        if i == len(document) - 1 or current_length >= target_seq_length:
            a_end = (
                rng.randint(1, len(current_chunk) - 1) if len(current_chunk) >= 2 else 1
            )
            tokens_a = [t for segment in current_chunk[:a_end] for t in segment]
            if len(current_chunk) == 1 or rng.random() < 0.5:
                is_random_next = True
                target_b_length = target_seq_length - len(tokens_a)
                for _ in range(10):
                    random_document_index = rng.randint(0, len(documents) - 1)
                    if random_document_index != document_index:
                        break
                random_document = documents[random_document_index]
                random_start = rng.randint(0, len(random_document) - 1)
                tokens_b = []
                for j in range(random_start, len(random_document)):
                    tokens_b.extend(random_document[j])
                    if len(tokens_b) >= target_b_length:
                        break
                i -= len(current_chunk) - a_end
            else:
                is_random_next = False
                tokens_b = [t for segment in current_chunk[a_end:] for t in segment]
            cuts = {"a": 0, "b": 0}
            length_a, length_b = len(tokens_a), len(tokens_b)
            while length_a + length_b > max_num_tokens:
                if length_a > length_b:
                    length_a -= 1
                    cuts["a"] += 1
                else:
                    length_b -= 1
                    cuts["b"] += 1
            fronts = {
                k: rng.getrandbits(c).bit_count() if c else 0 for k, c in cuts.items()
            }
            tokens_a = tokens_a[fronts["a"] : len(tokens_a) - (cuts["a"] - fronts["a"])]
            tokens_b = tokens_b[fronts["b"] : len(tokens_b) - (cuts["b"] - fronts["b"])]
            instances.append((tokens_a, tokens_b, is_random_next))
            current_chunk = []
            current_length = 0
        i += 1
    return instances


def spans_of(corpus, recipe, seed, documents=None):
    rng = random.Random(seed)
    spans = []
    for document in documents if documents is not None else range(corpus.num_documents):
        pretraining.add_document_instances(corpus, document, recipe, rng, spans)
    return spans


def reference_words(tokens, whole_word):
    """The reference's candidate groups: [CLS]/[SEP] skipped, `##` joins the last group."""
    groups = []
    for i, token in enumerate(tokens):
        if token in (CLS_ID, SEP_ID):
            continue
        if whole_word and groups and MASKING_VOCAB.is_continuation[token]:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def masked_batch(recipe, seed=0, num_documents=120):
    rng = np.random.default_rng(seed)
    corpus = pretraining.TokenizedCorpus.from_documents(
        id_documents(rng, num_documents)
    )
    spans = spans_of(corpus, recipe, seed)
    token_ids, input_mask, _ = pretraining.pack_spans(
        corpus, spans, recipe, MASKING_VOCAB
    )
    masked = recipe_masking.mask_tokens(
        token_ids, input_mask, recipe, MASKING_VOCAB, rng
    )
    return token_ids, input_mask, masked


# ---------------------------------------------------------------- recipe


def test_num_to_predict_counts_cls_and_sep_and_rounds_half_to_even():
    assert recipe_masking.num_to_predict(128, 0.15, 20) == 19  # 19.2
    assert recipe_masking.num_to_predict(10, 0.15, 20) == 2  # 1.5 -> 2
    assert recipe_masking.num_to_predict(30, 0.15, 20) == 4  # 4.5 -> 4
    assert recipe_masking.num_to_predict(5, 0.15, 20) == 1  # at least one
    assert recipe_masking.num_to_predict(512, 0.15, 20) == 20  # capped
    lengths = np.array([5, 10, 30, 128])
    assert recipe_masking.num_to_predict(lengths, 0.15, 20).tolist() == [1, 2, 4, 19]


def test_truncation_cuts_equal_the_one_token_at_a_time_loop():
    for length_a in range(1, 40):
        for length_b in range(1, 40):
            for max_num_tokens in (2, 7, 30, 125):
                a, b, cut_a, cut_b = length_a, length_b, 0, 0
                while a + b > max_num_tokens:
                    if a > b:
                        a, cut_a = a - 1, cut_a + 1
                    else:
                        b, cut_b = b - 1, cut_b + 1
                expected = (cut_a, cut_b)
                assert (
                    pretraining.truncation_cuts(length_a, length_b, max_num_tokens)
                    == expected
                )


@pytest.mark.parametrize("short_seq_prob", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("max_seq_length", [12, 64])
def test_instances_follow_the_reference_loop(short_seq_prob, max_seq_length):
    rng = np.random.default_rng(1)
    documents = id_documents(rng, 30, max_sentence_length=45)
    documents.append([list(range(5, 65)) * 4])  # one sentence longer than any target
    corpus = pretraining.TokenizedCorpus.from_documents(documents)
    recipe = pretraining.PretrainingRecipe(
        max_seq_length=max_seq_length, short_seq_prob=short_seq_prob
    )
    for seed in range(3):
        reference_rng = random.Random(seed)
        expected = [
            instance
            for index in range(len(documents))
            for instance in reference_instances(documents, index, recipe, reference_rng)
        ]
        tokens = corpus.token_ids.tolist()
        actual = [
            (tokens[a : a + la], tokens[b : b + lb], is_random)
            for a, la, b, lb, is_random in spans_of(corpus, recipe, seed)
        ]
        assert actual == expected


def test_a_single_sentence_chunk_always_takes_a_random_next():
    documents = [[[5 + i, 6 + i]] for i in range(20)]
    corpus = pretraining.TokenizedCorpus.from_documents(documents)
    spans = spans_of(corpus, pretraining.PretrainingRecipe(), seed=0)
    assert len(spans) == 20
    assert all(is_random for *_, is_random in spans)


def test_actual_next_segments_continue_in_the_same_document():
    rng = np.random.default_rng(2)
    corpus = pretraining.TokenizedCorpus.from_documents(id_documents(rng, 60))
    document_of_token = np.repeat(
        np.repeat(np.arange(corpus.num_documents), np.diff(corpus.document_starts)),
        np.diff(corpus.sentence_starts),
    )
    spans = spans_of(corpus, pretraining.PretrainingRecipe(max_seq_length=32), seed=3)
    actual = [s for s in spans if not s[4]]
    assert actual and len(actual) < len(spans)
    for a_start, a_length, b_start, b_length, _ in actual:
        assert b_start >= a_start + a_length
        assert document_of_token[a_start] == document_of_token[b_start + b_length - 1]
        assert a_length + b_length <= 29


def test_masking_rules_hold_on_every_row():
    recipe = pretraining.PretrainingRecipe(max_seq_length=48, max_predictions_per_seq=6)
    token_ids, input_mask, masked = masked_batch(recipe)
    input_ids, positions, masked_ids, weights = masked
    budgets = recipe_masking.num_to_predict(input_mask.sum(1), 0.15, 6)
    for row in range(len(token_ids)):
        count = int(weights[row].sum())
        real = positions[row, :count]
        assert count == budgets[row]
        assert np.all(np.diff(real) > 0), "positions sorted, no repeats"
        assert not np.isin(token_ids[row, real], [CLS_ID, SEP_ID]).any()
        assert np.all(real < input_mask[row].sum())
        assert masked_ids[row, :count].tolist() == token_ids[row, real].tolist()
        assert not positions[row, count:].any() and not masked_ids[row, count:].any()
        unchanged = np.ones(token_ids.shape[1], dtype=bool)
        unchanged[real] = False
        assert np.array_equal(input_ids[row, unchanged], token_ids[row, unchanged])


def test_whole_word_masking_keeps_words_whole():
    recipe = pretraining.PretrainingRecipe(
        max_seq_length=48, max_predictions_per_seq=8, do_whole_word_mask=True
    )
    token_ids, input_mask, (_, positions, _, weights) = masked_batch(recipe, seed=4)
    budgets = recipe_masking.num_to_predict(input_mask.sum(1), 0.15, 8)
    split_words = 0
    for row in range(len(token_ids)):
        chosen = set(positions[row, : int(weights[row].sum())].tolist())
        assert len(chosen) <= budgets[row]
        words = reference_words(token_ids[row, : input_mask[row].sum()].tolist(), True)
        for word in words:
            assert set(word) <= chosen or not set(word) & chosen, (row, word)
        split_words += any(len(w) > 1 and set(w) <= chosen for w in words)
    assert split_words > 10, "multi-piece words were masked as units"


def test_mask_keep_random_split_is_80_10_10():
    recipe = pretraining.PretrainingRecipe(max_seq_length=64)
    _, _, (input_ids, positions, masked_ids, weights) = masked_batch(
        recipe, num_documents=1000
    )
    real = weights > 0
    shown = np.take_along_axis(input_ids, positions, axis=1)[real]
    total = real.sum()
    assert total > 20000
    as_mask = np.mean(shown == MASK_ID)
    kept = np.mean((shown != MASK_ID) & (shown == masked_ids[real]))
    assert abs(as_mask - 0.8) < 0.012  # 4 standard deviations
    # A random draw hits the original id 1 time in 71 with this vocabulary.
    assert abs(kept - (0.1 + 0.1 / len(VOCAB))) < 0.008


def test_statistics_of_a_synthetic_corpus():
    rng = np.random.default_rng(5)
    corpus = pretraining.TokenizedCorpus.from_documents(id_documents(rng, 300))
    recipe = pretraining.PretrainingRecipe(
        max_seq_length=64, max_predictions_per_seq=10
    )
    batch = pretraining.create_instances(
        corpus,
        range(corpus.num_documents),
        recipe,
        MASKING_VOCAB,
        pretraining.unit_seed_sequence(1, 0, 0),
    )
    counts = pretraining.count_instance_statistics(batch, MASK_ID)
    lengths = batch.input_mask.sum(1)
    # The masked fraction is the prediction-count formula, exactly.
    assert (
        counts["masked_tokens"]
        == recipe_masking.num_to_predict(lengths, 0.15, 10).sum()
    )
    assert counts["tokens"] == lengths.sum()
    assert abs(counts["replaced_by_mask"] / counts["masked_tokens"] - 0.8) < 0.02
    # One-sentence chunks always take a random next, so more than half do.
    assert 0.5 < counts["random_next"] / counts["instances"] < 0.7
    assert batch.input_ids.shape == (counts["instances"], 64)
    assert np.all(batch.segment_ids <= batch.input_mask)


def test_document_blocks_cover_all_documents_in_order():
    rng = np.random.default_rng(6)
    corpus = pretraining.TokenizedCorpus.from_documents(id_documents(rng, 50))
    blocks = corpus.document_blocks(min_tokens=300)
    assert blocks[0][0] == 0 and blocks[-1][1] == 50
    assert all(
        end == next_first for (_, end), (next_first, _) in itertools.pairwise(blocks)
    )
    token_starts = corpus.sentence_starts[corpus.document_starts]
    assert all(
        token_starts[end] - token_starts[first] >= 300 for first, end in blocks[:-1]
    )


def test_recipe_rejects_impossible_settings_and_warns_about_a_low_cap():
    with pytest.raises(ValueError, match="max_seq_length=4"):
        pretraining.PretrainingRecipe(max_seq_length=4)
    with pytest.raises(ValueError, match="masked_lm_prob"):
        pretraining.PretrainingRecipe(masked_lm_prob=1.5)
    assert pretraining.PretrainingRecipe().capped_mask_rate_warning() is None
    message = pretraining.PretrainingRecipe(
        max_seq_length=512
    ).capped_mask_rate_warning()
    assert "max_predictions_per_seq=20" in message and "= 77" in message
    assert "3.9%" in message and "--max_predictions_per_seq=77" in message


def test_vocabulary_without_special_tokens_is_rejected_by_name():
    with pytest.raises(
        ValueError, match=r"my_vocab\.txt lacks the special token\(s\) \[MASK\]"
    ):
        recipe_masking.MaskingVocabulary.from_tokens(
            VOCAB[:4] + VOCAB[5:], source="my_vocab.txt"
        )


# ---------------------------------------------------------------- encoding


def test_encoded_examples_equal_protobuf_examples():
    rng = np.random.default_rng(7)
    features = {
        "input_ids": rng.integers(0, 30522, size=(6, 9)),
        "small": rng.integers(0, 2, size=(6, 3)),
        "huge": np.array([[0], [127], [128], [2**35], [2**62], [16383]]),
        "masked_lm_weights": rng.random((6, 4)).astype(np.float32),
    }
    records = serialize_examples(features)
    for row, record in enumerate(records):
        expected = tf.train.Example()
        for name, values in features.items():
            feature = expected.features.feature[name]
            if values.dtype.kind == "f":
                feature.float_list.value.extend(values[row].tolist())
            else:
                feature.int64_list.value.extend(values[row].tolist())
        assert tf.train.Example.FromString(record) == expected
        assert len(record) == len(expected.SerializeToString())
    with pytest.raises(ValueError, match="non-negative"):
        serialize_examples({"x": np.array([[-1]])})


def test_output_file_specs():
    assert tfrecord.expand_output_files("a.tfrecord, b.tfrecord") == [
        "a.tfrecord",
        "b.tfrecord",
    ]
    assert tfrecord.expand_output_files("gs://b/train@3") == [
        "gs://b/train-00000-of-00003",
        "gs://b/train-00001-of-00003",
        "gs://b/train-00002-of-00003",
    ]
    for bad, message in [
        ("x@0", "@1 or more"),
        ("a,,b", "empty item"),
        ("a,a", "more than once"),
    ]:
        with pytest.raises(ValueError, match=message):
            tfrecord.expand_output_files(bad)


# ---------------------------------------------------------------- sentences


def test_split_sentences_keeps_abbreviations_and_initials():
    paragraph = (
        'It is related to the American lobster , H. americanus . Mr. Smith said "yes." '
        "Then 3 people left! Really? yes"
    )
    assert sentences.split_sentences(paragraph) == [
        "It is related to the American lobster , H. americanus .",
        'Mr. Smith said "yes."',
        "Then 3 people left!",
        "Really? yes",
    ]
    assert sentences.split_sentences("   ") == []


def test_wikitext_articles_become_documents():
    lines = [
        " ",
        " = First = ",
        " ",
        " Alpha one . Alpha two . ",
        " = = Section = = ",
        " Alpha three . ",
        " = Second = ",
        " Beta one . ",
    ]
    assert sentences.wikitext_documents(lines) == [
        ["Alpha one .", "Alpha two .", "Alpha three ."],
        ["Beta one ."],
    ]


# ---------------------------------------------------------------- files


def create(tokenizer, inputs, output, recipe=None, **kwargs):
    return create_pretraining_files(
        [str(p) for p in inputs],
        [str(output)] if not isinstance(output, list) else output,
        tokenizer,
        recipe
        or pretraining.PretrainingRecipe(max_seq_length=32, max_predictions_per_seq=5),
        dupe_factor=kwargs.pop("dupe_factor", 2),
        **kwargs,
    )


def test_same_seed_same_bytes_whatever_the_worker_count(
    tokenizer, text_corpus_file, tmp_path
):
    outputs = {}
    for name, seed, workers in [("one", 7, 1), ("two", 7, 2), ("other", 8, 2)]:
        outputs[name] = tmp_path / f"{name}.tfrecord"
        create(
            tokenizer,
            [text_corpus_file],
            outputs[name],
            random_seed=seed,
            workers=workers,
        )
    one, two, other = (outputs[n].read_bytes() for n in ("one", "two", "other"))
    assert one == two
    assert one != other


def test_files_parse_with_the_reference_feature_spec(
    tokenizer, text_corpus_file, tmp_path
):
    recipe = pretraining.PretrainingRecipe(max_seq_length=32, max_predictions_per_seq=5)
    outputs = [str(tmp_path / "a.tfrecord"), str(tmp_path / "b.tfrecord")]
    stats = create(
        tokenizer,
        [text_corpus_file],
        outputs,
        recipe,
        stats_file=str(tmp_path / "s.json"),
    )
    examples = read_records(outputs[0], recipe) + read_records(outputs[1], recipe)
    assert len(examples) == stats["instances"] > 40
    assert abs(len(read_records(outputs[0], recipe)) - len(examples) / 2) <= 0.5
    for example in examples:
        assert example["input_ids"].dtype == np.int64 and example[
            "input_ids"
        ].shape == (32,)
        assert example["masked_lm_weights"].dtype == np.float32
        assert example["next_sentence_labels"].shape == (1,)
        length = example["input_mask"].sum()
        assert (
            example["input_ids"][0] == CLS_ID
            and example["input_ids"][length - 1] == SEP_ID
        )
        assert not example["input_ids"][length:].any()
    written = json.loads((tmp_path / "s.json").read_text())
    assert written["instances"] == stats["instances"]
    assert written["documents"] == 40
    masked = sum(e["masked_lm_weights"].sum() for e in examples)
    assert stats["masked_fraction"] == pytest.approx(
        masked / sum(e["input_mask"].sum() for e in examples)
    )
    assert sum(stats["masked_lm_split"].values()) == pytest.approx(1.0)
    assert stats["random_next_fraction"] > 0.5


def test_raw_paragraphs_are_split_into_sentences(tokenizer, tmp_path):
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "w1 w2 . W3 w4 . W5 w6 .\nw7 w8 .\n\nw9 w10 . W11 w12 .\n", encoding="utf-8"
    )
    documents, _ = corpus_lib.read_documents(str(raw), input_format="raw")
    assert documents == [
        ["w1 w2 .", "W3 w4 .", "W5 w6 .", "w7 w8 ."],
        ["w9 w10 .", "W11 w12 ."],
    ]
    stats = create(tokenizer, [raw], tmp_path / "out.tfrecord", input_format="raw")
    assert stats["sentences"] == 6 and stats["documents"] == 2


# ---------------------------------------------------------------- bad input


def test_invalid_utf8_is_replaced_counted_and_reported(tokenizer, tmp_path, caplog):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"w1 w2 .\n\xff\xfe w3 .\n\nw4 \xc3 w5 .\n")
    with caplog.at_level(logging.WARNING):
        documents, report = corpus_lib.read_documents(str(path))
    assert documents == [["w1 w2 .", "\ufffd\ufffd w3 ."], ["w4 \ufffd w5 ."]]
    assert report.invalid_utf8_sequences == 3 and report.invalid_utf8_lines == [2, 4]
    assert (
        f"{path}: replaced 3 invalid UTF-8 sequence(s) on line(s) 2, 4" in caplog.text
    )
    stats = create(tokenizer, [path], tmp_path / "out.tfrecord")
    assert stats["invalid_utf8_sequences"] == 3 and stats["corpus_tokens"] == 8
    assert any("replaced 3 invalid UTF-8" in w for w in stats["warnings"])
    with pytest.raises(
        ValueError, match=rf"{path}:2: invalid UTF-8 byte\(s\) at column 1"
    ):
        corpus_lib.read_documents(str(path), invalid_utf8="error")


@pytest.mark.parametrize("content", [b"", b"\n \n\t\n"])
def test_empty_input_is_an_error_naming_the_file_and_leaves_no_output(
    tokenizer, text_corpus_file, tmp_path, content
):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(content)
    output = tmp_path / "out.tfrecord"
    with pytest.raises(ValueError, match=f"{empty} holds no text"):
        create(tokenizer, [text_corpus_file, empty], output)
    assert not output.exists()


def test_lines_without_any_token_are_an_error_naming_the_file(tokenizer, tmp_path):
    path = tmp_path / "control.txt"
    path.write_text("\x00\x01\u200b\n\x07\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path}: no line yields a token"):
        create(tokenizer, [path], tmp_path / "out.tfrecord")


def test_missing_inputs_and_unwritable_outputs_are_named(
    tokenizer, text_corpus_file, tmp_path
):
    with pytest.raises(FileNotFoundError, match="'nowhere/\\*.txt' matches no file"):
        expand_file_patterns(f"{text_corpus_file},nowhere/*.txt")
    assert expand_file_patterns([text_corpus_file]) == [str(text_corpus_file)]
    with pytest.raises(TypeError, match="comma-separated string of globs"):
        expand_file_patterns(3)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    good = tmp_path / "good.tfrecord"
    bad = blocker / "out.tfrecord"
    with pytest.raises(OSError, match=f"Cannot write output file {bad}"):
        create(tokenizer, [text_corpus_file], [str(good), str(bad)])
    assert not good.exists()


def test_one_sentence_documents_and_a_one_megabyte_line(tokenizer, tmp_path):
    words = [f"w{i}" for i in range(60)]
    huge_line = " ".join(words[i % 60] for i in range(350_000))[:1_000_000]
    path = tmp_path / "odd.txt"
    write_text(path, [["w1 w2 ."], ["w3 ."], [huge_line], ["w4 w5 w6 ."]])
    recipe = pretraining.PretrainingRecipe(max_seq_length=32, max_predictions_per_seq=5)
    output = tmp_path / "out.tfrecord"
    stats = create(tokenizer, [path], output, recipe, dupe_factor=3)
    assert stats["documents"] == 4 and stats["instances"] == 12
    assert stats["random_next_fraction"] == 1.0
    assert stats["corpus_tokens"] == len(huge_line.split()) + 3 + 2 + 4
    examples = read_records(str(output), recipe)
    assert all(e["input_mask"].sum() <= 32 for e in examples)
    assert max(e["input_mask"].sum() for e in examples) == 32


def test_single_document_and_capped_masking_are_warned_about(tokenizer, tmp_path):
    path = write_text(
        tmp_path / "one.txt", [["w1 w2 w3 .", "w4 w5 .", "w6 w7 w8 w9 ."]]
    )
    recipe = pretraining.PretrainingRecipe(max_seq_length=64, max_predictions_per_seq=2)
    stats = create(tokenizer, [path], tmp_path / "out.tfrecord", recipe)
    assert any("single document" in w for w in stats["warnings"])
    assert any("max_predictions_per_seq=2 is below" in w for w in stats["warnings"])


def test_command_line_tool(tmp_path, text_corpus_file):
    vocab_file = write_vocab(tmp_path / "vocab.txt", VOCAB)
    empty = tmp_path / "empty.txt"
    empty.write_text("")

    def tool(*args):
        command = [
            sys.executable,
            "-m",
            "keras_bert_impl.cli",
            "create-pretraining-data",
        ]
        return subprocess.run(
            command + [f"--vocab_file={vocab_file}", "--max_seq_length=32", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )

    done = tool(f"--input_file={text_corpus_file}", f"--output_file={tmp_path}/out@2")
    assert done.returncode == 0, done.stderr
    # Statistics stay outside the shards' glob, so the reader takes that glob.
    stats = json.loads((tmp_path / "out.stats.json").read_text())
    assert stats["output_files"] == [
        f"{tmp_path}/out-0000{i}-of-00002" for i in range(2)
    ]
    assert sorted(glob.glob(f"{tmp_path}/out-*")) == stats["output_files"]
    assert json.loads(done.stdout)["instances"] == stats["instances"]
    assert done.stdout.count('"instances"') == 1 and '"instances"' not in done.stderr
    records = pretraining_dataset(f"{tmp_path}/out-*", 1, 32, 20, repeat=False)
    assert sum(1 for _ in records) == stats["instances"]

    failed = tool(f"--input_file={empty}", f"--output_file={tmp_path}/bad.tfrecord")
    assert failed.returncode == 1
    assert f"error: {empty} holds no text" in failed.stderr
    assert not (tmp_path / "bad.tfrecord").exists()
