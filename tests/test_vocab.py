"""Vocabulary files: reading/checking, learning a WordPiece vocabulary, the kbi-build-vocab CLI."""

import subprocess
import sys

import pytest
import tensorflow as tf
import text_helpers

from keras_bert_impl.text import Tokenizer, build_vocabulary
from keras_bert_impl.text.vocab_file import SPECIAL_TOKENS, load_vocabulary

CORPUS = """The quick brown fox jumps over the lazy dog.
The lazy dog sleeps; the quick fox runs away!
Foxes and dogs: quick, lazy, quicker, lazier.
Café owners serve coffee to the quick foxes.
"""


@pytest.fixture
def corpus_files(tmp_path):
    first = tmp_path / "part-0.txt"
    second = tmp_path / "part-1.txt"
    first.write_text(CORPUS * 5, encoding="utf-8")
    second.write_text(CORPUS.upper() * 5, encoding="utf-8")
    return tmp_path


def build(corpus_files, **kwargs):
    options = {"vocab_size": 120, "min_frequency": 1}
    options.update(kwargs)
    return build_vocabulary(str(corpus_files / "part-*.txt"), **options)


def test_special_tokens_come_first_then_reserved_slots(corpus_files):
    vocabulary = build(corpus_files, reserved_tokens=["[EXTRA]"], num_unused_tokens=2)
    assert vocabulary[:8] == [*SPECIAL_TOKENS, "[EXTRA]", "[unused0]", "[unused1]"]
    assert vocabulary[0] == "[PAD]"
    assert len(vocabulary) <= 120
    assert len(set(vocabulary)) == len(vocabulary)


def test_learning_is_deterministic(corpus_files, tmp_path):
    first = tmp_path / "first.txt"
    second = tmp_path / "second.txt"
    build(corpus_files, output_file=str(first))
    build(corpus_files, output_file=str(second))
    assert first.read_bytes() == second.read_bytes()


def test_uncased_and_cased(corpus_files):
    uncased = build(corpus_files, vocab_size=400)
    cased = build(corpus_files, vocab_size=400, lowercase=False)
    assert "the" in uncased and "cafe" in uncased
    assert not any(token in uncased for token in ("T", "The", "THE", "é"))
    assert {"T", "The", "THE", "é"} <= set(cased)


def test_learned_vocabulary_tokenizes_its_corpus_without_unknowns(
    corpus_files, tmp_path
):
    vocab_file = tmp_path / "vocab.txt"
    build(corpus_files, output_file=str(vocab_file))
    tokenizer = Tokenizer(vocab_file)
    ids = tokenizer(tf.constant(CORPUS.splitlines())).flat_values.numpy()
    assert len(ids) > 0 and tokenizer.unk_id not in ids
    assert tokenizer.token_to_id("[MASK]") == 4


def test_progress_is_reported(corpus_files):
    messages = []
    build(corpus_files, progress=messages.append)
    assert any("lines" in m for m in messages) and any("learned" in m for m in messages)


def test_a_vocabulary_smaller_than_asked_says_why(corpus_files):
    messages = []
    # A directory's glob given as a path object, as users often do.
    vocabulary = build_vocabulary(
        corpus_files / "part-*.txt", 30522, min_frequency=2, progress=messages.append
    )
    assert len(vocabulary) < 30522
    (why,) = [m for m in messages if m.startswith("fewer than vocab_size=30,522")]
    assert "min_frequency=2" in why and "more text" in why


def test_invalid_utf8_lines_are_counted_and_reported(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(CORPUS.encode() + b"caf\xe9 quick\n")
    messages = []
    vocabulary = build_vocabulary(
        str(path), 100, min_frequency=1, progress=messages.append
    )
    assert any("1 lines held invalid UTF-8" in m for m in messages)
    assert "quick" in vocabulary


def test_bad_inputs_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        build_vocabulary(str(tmp_path / "nothing-here*.txt"), 100)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty.txt hold no words"):
        build_vocabulary(str(empty), 100)
    with pytest.raises(ValueError, match="no room"):
        build_vocabulary(str(empty), 5)


def test_load_vocabulary_rejects_broken_files(tmp_path):
    good = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes("\r\n".join(good).encode() + b"\r\n")
    assert load_vocabulary(crlf) == good

    missing = text_helpers.write_vocab(tmp_path / "missing.txt", good[:3] + good[5:])
    with pytest.raises(ValueError, match=r"missing\.txt.*\[SEP\], \[MASK\]"):
        load_vocabulary(missing)
    duplicate = text_helpers.write_vocab(tmp_path / "dup.txt", good + ["a"])
    with pytest.raises(ValueError, match="line 7.*repeats line 6"):
        load_vocabulary(duplicate)
    blank = text_helpers.write_vocab(tmp_path / "blank.txt", good[:2] + [""] + good[2:])
    with pytest.raises(ValueError, match="line 3: empty token"):
        load_vocabulary(blank)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("\n".join(good).encode() + b"\ncaf\xe9\n")
    with pytest.raises(ValueError, match="latin1.txt line 7 is not valid UTF-8"):
        load_vocabulary(latin1)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_vocabulary(empty)


def test_command_line_tool(corpus_files, tmp_path):
    output = tmp_path / "cli_vocab.txt"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_bert_impl.cli",
            "build-vocab",
            f"--input_files={corpus_files / 'part-0.txt'},{corpus_files / 'part-1.txt'}",
            f"--output_file={output}",
            "--vocab_size=120",
            "--min_frequency=1",
            "--num_unused_tokens=1",
            "--nolowercase",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    tokens = output.read_text(encoding="utf-8").splitlines()
    assert tokens[:6] == [*SPECIAL_TOKENS, "[unused0]"] and "T" in tokens
    assert "tokens ->" in result.stdout
