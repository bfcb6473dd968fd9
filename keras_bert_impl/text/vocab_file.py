"""Reading and checking WordPiece vocabulary files (one token per line, id = line index)."""

import tensorflow as tf

from keras_bert_impl.constants import CLS, MASK, PAD, SEP, SPECIAL_TOKENS, UNK  # noqa: F401


def check_vocabulary(tokens, source):
    """Checks a token list: no empty or duplicate tokens, every special token present.

    Args:
        tokens: sequence of str, index = token id.
        source: what to call the vocabulary in error messages (a file name).

    Raises:
        ValueError: naming `source`, the offending token and its line.
    """
    if not tokens:
        raise ValueError(f"Vocabulary {source} is empty: expected one token per line.")
    first_line = {}
    for index, token in enumerate(tokens):
        line = index + 1
        if not token or token.isspace():
            raise ValueError(
                f"Vocabulary {source} line {line}: empty token; every line must hold one token."
            )
        if token in first_line:
            raise ValueError(
                f"Vocabulary {source} line {line}: token {token!r} repeats line "
                f"{first_line[token]}; tokens must be unique."
            )
        first_line[token] = line
    missing = [token for token in SPECIAL_TOKENS if token not in first_line]
    if missing:
        raise ValueError(
            f"Vocabulary {source} lacks the special token(s) {', '.join(missing)}; "
            f"a BERT vocabulary needs all of {', '.join(SPECIAL_TOKENS)}."
        )


def load_vocabulary(vocab_file):
    """Reads and checks a vocabulary file (local path or any tf.io.gfile URL).

    Lines are split on "\\n"; a trailing "\\r" (Windows line end) is dropped.

    Args:
        vocab_file: path of the file.

    Returns:
        list of str, index = token id.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not UTF-8 or fails `check_vocabulary`.
    """
    vocab_file = str(vocab_file)
    if not tf.io.gfile.exists(vocab_file):
        raise FileNotFoundError(f"Vocabulary file {vocab_file} does not exist.")
    with tf.io.gfile.GFile(vocab_file, "rb") as f:
        data = f.read()
    tokens = []
    for index, raw_line in enumerate(data.split(b"\n")):
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"Vocabulary file {vocab_file} line {index + 1} is not valid UTF-8 ({error})."
            ) from None
        tokens.append(line.removesuffix("\r"))
    if tokens and tokens[-1] == "":
        # The newline that ends the last line does not start another token.
        tokens.pop()
    check_vocabulary(tokens, vocab_file)
    return tokens


def write_vocabulary(tokens, vocab_file):
    """Writes tokens one per line after checking them with `check_vocabulary`."""
    vocab_file = str(vocab_file)
    check_vocabulary(tokens, vocab_file)
    with tf.io.gfile.GFile(vocab_file, "w") as f:
        f.write("".join(f"{token}\n" for token in tokens))
