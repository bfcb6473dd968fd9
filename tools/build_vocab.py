r"""Learns a BERT WordPiece vocabulary from text files.

Usage:
  kbi-build-vocab --input_files='corpus/*.txt,more.txt' --output_file=vocab.txt \
      --vocab_size=30522 --lowercase --num_unused_tokens=100
"""

from absl import app, flags

from keras_bert_impl.text import build_vocabulary

_INPUT_FILES = flags.DEFINE_string(
    "input_files", None, "Comma-separated globs of UTF-8 text files.", required=True
)
_OUTPUT_FILE = flags.DEFINE_string(
    "output_file", None, "Vocabulary file to write, one token per line.", required=True
)
_VOCAB_SIZE = flags.DEFINE_integer("vocab_size", 30522, "Largest vocabulary size.")
_LOWERCASE = flags.DEFINE_boolean(
    "lowercase", True, "Uncased vocabulary (lower-case text)."
)
_STRIP_ACCENTS = flags.DEFINE_boolean(
    "strip_accents", None, "Strip accents (NFD, drop marks); unset follows --lowercase."
)
_RESERVED_TOKENS = flags.DEFINE_list(
    "reserved_tokens", [], "Extra tokens placed after [PAD] [UNK] [CLS] [SEP] [MASK]."
)
_NUM_UNUSED_TOKENS = flags.DEFINE_integer(
    "num_unused_tokens", 0, 'Number of "[unusedN]" slots reserved after those.'
)
_MIN_FREQUENCY = flags.DEFINE_integer(
    "min_frequency", 10, "Lowest token frequency the size search may go down to."
)
_MAX_TOKEN_CHARS = flags.DEFINE_integer(
    "max_token_chars", 50, "Words longer than this many characters are not counted."
)
_MAX_ALPHABET_SIZE = flags.DEFINE_integer(
    "max_alphabet_size", 1000, "Characters kept as tokens (the most frequent ones)."
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        vocabulary = build_vocabulary(
            _INPUT_FILES.value,
            _VOCAB_SIZE.value,
            lowercase=_LOWERCASE.value,
            strip_accents=_STRIP_ACCENTS.value,
            reserved_tokens=_RESERVED_TOKENS.value,
            num_unused_tokens=_NUM_UNUSED_TOKENS.value,
            min_frequency=_MIN_FREQUENCY.value,
            max_token_chars=_MAX_TOKEN_CHARS.value,
            max_alphabet_size=_MAX_ALPHABET_SIZE.value,
            output_file=_OUTPUT_FILE.value,
            progress=lambda message: print(message, flush=True),
        )
    except (FileNotFoundError, ValueError) as error:
        raise app.UsageError(str(error)) from None
    print(f"{len(vocabulary)} tokens -> {_OUTPUT_FILE.value}")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
