"""Tokenizer: ids and offsets identical to transformers' BertTokenizerFast, in-graph use, bad input."""

import json
import time

import numpy as np
import pytest
import tensorflow as tf
import text_helpers

from keras_bert_impl.text import Tokenizer
from keras_bert_impl.text.basic_tokenizer import BasicTokenizer


@pytest.fixture(scope="module")
def reference():
    return text_helpers.reference_tokenizer()


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer(text_helpers.reference_vocab_file())


def hard_cases():
    return json.loads(text_helpers.HARD_CASES_FILE.read_text(encoding="utf-8"))


def reference_ids_and_byte_offsets(reference, texts):
    """Reference ids (no special tokens) and its character offsets converted to bytes."""
    encoded = reference(texts, add_special_tokens=False, return_offsets_mapping=True)
    offsets = []
    for text, pairs in zip(texts, encoded["offset_mapping"]):
        offsets.append(
            [(len(text[:a].encode()), len(text[:b].encode())) for a, b in pairs]
        )
    return encoded["input_ids"], offsets


def our_ids_and_offsets(tokenizer, texts):
    ids, starts, ends = tokenizer.tokenize_with_offsets(tf.constant(texts))
    pairs = [list(zip(s, e)) for s, e in zip(starts.to_list(), ends.to_list())]
    return ids.to_list(), pairs


def test_hard_cases_match_reference_ids_and_offsets(reference, tokenizer):
    cases = hard_cases()
    texts = [case["text"] for case in cases]
    expected_ids, expected_offsets = reference_ids_and_byte_offsets(reference, texts)
    ids, offsets = our_ids_and_offsets(tokenizer, texts)
    wrong_ids = [case["name"] for case, a, b in zip(cases, ids, expected_ids) if a != b]
    wrong_offsets = [
        case["name"] for case, a, b in zip(cases, offsets, expected_offsets) if a != b
    ]
    assert not wrong_ids, f"ids differ from the reference on: {wrong_ids}"
    assert not wrong_offsets, f"offsets differ from the reference on: {wrong_offsets}"
    # The file really exercises the hard parts: [UNK]s, splits of long words, specials.
    flat = [i for row in ids for i in row]
    assert tokenizer.unk_id in flat and tokenizer.mask_id in flat


@pytest.mark.parametrize(
    "lowercase, strip_accents, last_code_point",
    [
        # The reference vocabulary's setting, over all 1.1M code points; the other settings
        # over the code points below the CJK extension planes (everything but ideographs,
        # private use and unassigned space), to keep the test quick.
        (True, None, 0x10FFFF),
        (False, None, 0x1FFFF),
        (True, False, 0x1FFFF),
        (False, True, 0x1FFFF),
    ],
)
def test_code_points_are_split_and_normalized_like_the_reference(
    lowercase, strip_accents, last_code_point
):
    """Words after cleaning, normalization and splitting, one code point at a time."""
    normalizers = pytest.importorskip("tokenizers.normalizers")
    pre_tokenizers = pytest.importorskip("tokenizers.pre_tokenizers")
    normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=strip_accents,
        lowercase=lowercase,
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    code_points = [c for c in range(last_code_point + 1) if not 0xD800 <= c < 0xE000]
    # Each code point between two letters, 2,000 per line.
    snippets = [f"a{chr(c)}a" for c in code_points]
    lines = [" ".join(snippets[i : i + 2000]) for i in range(0, len(snippets), 2000)]
    expected = [
        [
            word
            for word, _ in pre_tokenizer.pre_tokenize_str(
                normalizer.normalize_str(line)
            )
        ]
        for line in lines
    ]
    words = BasicTokenizer(lowercase, strip_accents).split(tf.constant(lines)).strings()
    actual = [[word.decode("utf-8") for word in row] for row in words.to_list()]
    wrong = [i for i, (a, b) in enumerate(zip(actual, expected)) if a != b]
    assert not wrong, (
        f"{len(wrong)} of {len(lines)} lines differ; first at code points "
        f"U+{code_points[wrong[0] * 2000]:04X}.."
    )


def test_every_line_of_the_shared_data_matches_the_reference(reference, tokenizer):
    """wikitext-2 valid, SST-2 train + dev, CoNLL-2003 train + valid sentences."""
    tokenize = tf.function(
        lambda texts: tokenizer(texts),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    checked, mismatched, report = 0, [], []
    for name in text_helpers.CORPUS_FILES:
        lines = text_helpers.read_corpus_lines(name)
        start = time.time()
        expected = reference(lines, add_special_tokens=False)["input_ids"]
        actual = []
        for i in range(0, len(lines), 2048):
            actual += tokenize(tf.constant(lines[i : i + 2048])).to_list()
        bad = [line for line, a, b in zip(lines, actual, expected) if a != b]
        checked += len(lines)
        mismatched += bad
        report.append(f"{name}: {len(lines)} lines, {len(bad)} mismatches")
        assert time.time() - start < 120, f"{name} took too long"
    print(
        "\n".join(["parity with BertTokenizerFast:", *report, f"total {checked} lines"])
    )
    assert checked > 80_000
    assert not mismatched, f"{len(mismatched)} lines differ, e.g. {mismatched[:3]}"


def test_offsets_slice_back_to_the_original_text(tokenizer):
    texts = ["Hello, World! Unaffable", "naïve  café", "北京 test", "a\x00b [MASK]x"]
    ids, starts, ends = tokenizer.tokenize_with_offsets(tf.constant(texts))
    for text, row_ids, row_starts, row_ends in zip(
        texts, ids.to_list(), starts.to_list(), ends.to_list()
    ):
        data = text.encode("utf-8")
        for token_id, start, end in zip(row_ids, row_starts, row_ends):
            piece = tokenizer.id_to_token(token_id).removeprefix("##")
            original = data[start:end].decode("utf-8")
            # The original slice, normalized the way the tokenizer normalizes, is the piece.
            words = tokenizer.split_words(tf.constant(original)).numpy().tolist()
            assert [w.decode() for w in words] == [piece] or original == piece, (
                text,
                piece,
                original,
            )


def test_scalar_input_gives_a_dense_vector(tokenizer):
    ids = tokenizer(tf.constant("hello world"))
    assert isinstance(ids, tf.Tensor) and ids.shape.rank == 1
    assert ids.numpy().tolist() == [
        tokenizer.token_to_id("hello"),
        tokenizer.token_to_id("world"),
    ]


def test_tokenize_words_keeps_word_boundaries(tokenizer):
    words = tokenizer.tokenize_words(tf.constant(["unaffable day", ""]))
    assert words.shape.rank == 3
    assert words.to_list() == [
        tokenizer(tf.constant(["unaffable", "day"])).to_list(),
        [],
    ]
    assert len(words.to_list()[0][0]) > 1  # "unaffable" has several pieces


def test_detokenize_inverts_wordpiece(reference, tokenizer):
    decoders = pytest.importorskip("tokenizers.decoders")
    texts = [case["text"] for case in hard_cases()]
    ids = tokenizer(tf.constant(texts))
    decoded = tokenizer.detokenize(ids).numpy().tolist()
    # The reference's WordPiece decoder without its English punctuation clean-up.
    decoder = decoders.WordPiece(prefix="##", cleanup=False)
    expected = [
        decoder.decode(reference.convert_ids_to_tokens(row)) for row in ids.to_list()
    ]
    assert [d.decode("utf-8") for d in decoded] == expected
    assert tokenizer.detokenize(tokenizer(tf.constant("unaffable day"))).numpy() == (
        b"unaffable day"
    )


def test_detokenize_dense_and_skip_special_tokens(tokenizer):
    ids = tf.constant([[tokenizer.cls_id, 7592, tokenizer.sep_id, tokenizer.pad_id]])
    assert tokenizer.detokenize(ids).numpy().tolist() == [b"[CLS] hello [SEP] [PAD]"]
    assert tokenizer.detokenize(ids, skip_special_tokens=True).numpy().tolist() == [
        b"hello"
    ]


def test_works_in_tf_data_batched_and_per_example(tokenizer):
    texts = ["Hello world!", "", "naïve café ☃"]
    expected = tokenizer(tf.constant(texts)).to_list()
    batched = tf.data.Dataset.from_tensor_slices(texts).batch(2).map(tokenizer)
    assert [row for batch in batched for row in batch.to_list()] == expected
    per_example = tf.data.Dataset.from_tensor_slices(texts).map(tokenizer)
    assert [ids.numpy().tolist() for ids in per_example] == expected


def test_works_in_tf_function_with_unknown_batch_size(tokenizer):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(texts):
        ids, starts, _ = tokenizer.tokenize_with_offsets(texts)
        return ids.to_tensor(), starts.to_tensor(), tokenizer.detokenize(ids)

    texts = tf.constant(["Hello world!", "unaffable"])
    ids, starts, text = tokenize(texts)
    eager_ids, eager_starts, _ = tokenizer.tokenize_with_offsets(texts)
    np.testing.assert_array_equal(ids, eager_ids.to_tensor())
    np.testing.assert_array_equal(starts, eager_starts.to_tensor())
    assert text.numpy().tolist() == [b"hello world !", b"unaffable"]


def test_special_token_literals_can_be_plain_text():
    plain = Tokenizer(text_helpers.reference_vocab_file(), split_special_tokens=True)
    ids = plain(tf.constant("[MASK]")).numpy().tolist()
    assert plain.mask_id not in ids and len(ids) == 3


def test_vocabulary_accessors(tokenizer):
    assert tokenizer.vocab_size == len(tokenizer.vocabulary) == 30522
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id) == (0, 100, 101)
    assert (tokenizer.sep_id, tokenizer.mask_id) == (102, 103)
    assert tokenizer.id_to_token(tokenizer.token_to_id("hello")) == "hello"
    with pytest.raises(ValueError, match="notatoken"):
        tokenizer.token_to_id("notatoken")
    with pytest.raises(ValueError, match="out of range"):
        tokenizer.id_to_token(30522)


def test_cased_vocabulary_keeps_case_and_accents(tmp_path):
    vocab = text_helpers.write_vocab(
        tmp_path / "vocab.txt",
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Hello", "hello", "Café", "!"],
    )
    cased = Tokenizer(vocab, lowercase=False)
    assert cased(tf.constant("Hello hello Café!")).numpy().tolist() == [5, 6, 7, 8]
    uncased = Tokenizer(vocab)
    assert uncased(tf.constant("Hello Café")).numpy().tolist() == [6, 1]


def test_missing_vocab_file_names_the_file(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        Tokenizer(missing)


def test_vocab_without_mask_names_file_and_token(tmp_path):
    vocab = text_helpers.write_vocab(
        tmp_path / "vocab.txt", ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello"]
    )
    with pytest.raises(ValueError, match=r"vocab\.txt.*\[MASK\]"):
        Tokenizer(vocab)


def test_non_utf8_bytes_are_dropped_like_the_reference_after_replace_decoding(
    reference, tokenizer
):
    raw = [
        b"caf\xe9 ok",
        b"\xff\xfe",
        b"ab\x80cd \xe2\x82 euro",
        b"\xed\xa0\x80 surrogate",
    ]
    texts = [r.decode("utf-8", errors="replace") for r in raw]
    expected = reference(texts, add_special_tokens=False)["input_ids"]
    ids, starts, ends = tokenizer.tokenize_with_offsets(tf.constant(raw))
    assert ids.to_list() == expected
    # Offsets still index the original bytes: the pieces of "abcd" span b"ab\x80cd".
    num_pieces = len(tokenizer.tokenize_words(tf.constant(raw[2])).to_list()[0])
    assert raw[2][starts[2, 0] : ends[2, num_pieces - 1]] == b"ab\x80cd"


def test_empty_and_whitespace_only_strings_give_no_tokens(tokenizer):
    ids = tokenizer(tf.constant(["", " ", "\t\n\u3000", "\x00\u200b"]))
    assert ids.to_list() == [[], [], [], []]
    assert tokenizer(tf.constant([], tf.string)).to_list() == []


def test_one_megabyte_line(reference, tokenizer):
    words = ("lorem ipsum dolor sit amet , consectetur adipiscing elit " * 20_000)[
        :1_000_000
    ]
    one_word = "x" * 1_000_000
    ids = tokenizer(tf.constant([words, one_word])).to_list()
    assert ids[0] == reference(words, add_special_tokens=False)["input_ids"]
    assert ids[1] == [tokenizer.unk_id]


def test_wrong_input_types_are_rejected_with_a_clear_message(tokenizer):
    with pytest.raises(TypeError, match="tf.string"):
        tokenizer(tf.constant([1, 2]))
    with pytest.raises(ValueError, match="1-D"):
        tokenizer(tf.constant([["a"]]))


def test_special_tokens_must_fall_on_word_boundaries():
    with pytest.raises(
        ValueError, match="'MASK' must start and end with a punctuation"
    ):
        BasicTokenizer(special_tokens=["MASK"])
