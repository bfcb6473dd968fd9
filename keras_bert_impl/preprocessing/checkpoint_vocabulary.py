"""A checkpoint's vocabulary and casing: what its preprocessor is built from."""

import json
import os

from keras_bert_impl.text.vocab_file import SPECIAL_TOKENS
from keras_bert_impl.text.vocab_file import load_vocabulary

VOCABULARY_FILE = "vocab.txt"


def _declared_lowercase(directory):
    """`do_lower_case` of a Hugging Face `tokenizer_config.json`, if it says."""
    path = os.path.join(directory, "tokenizer_config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        try:
            value = json.load(handle).get("do_lower_case")
        except (json.JSONDecodeError, AttributeError):
            raise ValueError(f"{path} is not a JSON object.") from None
    return None if value is None else bool(value)


def is_uncased(vocabulary):
    """An uncased vocabulary has no upper-case letter outside special tokens
    (Google's `bert_config.json` does not record the casing)."""
    special = set(SPECIAL_TOKENS)
    return not any(
        token not in special and token != token.lower() for token in vocabulary
    )


def read(source):
    """Returns (vocabulary tokens, lowercase) of a checkpoint directory or a
    vocabulary file.

    Raises:
        FileNotFoundError: naming the missing `vocab.txt`.
        ValueError: a malformed vocabulary (see `load_vocabulary`).
    """
    directory = source if os.path.isdir(source) else os.path.dirname(source)
    path = os.path.join(source, VOCABULARY_FILE) if os.path.isdir(source) else source
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No vocabulary at {path}: a checkpoint directory needs "
            f"{VOCABULARY_FILE} (one token per line) to build its preprocessor."
        )
    vocabulary = load_vocabulary(path)
    lowercase = _declared_lowercase(directory)
    if lowercase is None:
        lowercase = is_uncased(vocabulary)
    return vocabulary, lowercase
