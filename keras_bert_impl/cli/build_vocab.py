r"""Learns a BERT WordPiece vocabulary from text files.

Usage:
  kbi-build-vocab --input_files='corpus/*.txt,more.txt' --output_file=vocab.txt \
      --vocab_size=30522 --lowercase --num_unused_tokens=100
"""

from absl import app, flags

from keras_bert_impl.text import build_vocabulary
from keras_bert_impl.cli import command

FLAGS = flags.FLAGS


def define_flags():
    """Defined when the tool runs, so importing this module adds no flags."""
    flags.DEFINE_string(
        "input_files", None, "Comma-separated globs of UTF-8 text files.", required=True
    )
    flags.DEFINE_string(
        "output_file",
        None,
        "Vocabulary file to write, one token per line.",
        required=True,
    )
    flags.DEFINE_integer("vocab_size", 30522, "Largest vocabulary size.")
    flags.DEFINE_boolean("lowercase", True, "Uncased vocabulary (lower-case text).")
    flags.DEFINE_boolean(
        "strip_accents",
        None,
        "Strip accents (NFD, drop marks); unset follows --lowercase.",
    )
    flags.DEFINE_list(
        "reserved_tokens",
        [],
        "Extra tokens placed after [PAD] [UNK] [CLS] [SEP] [MASK].",
    )
    flags.DEFINE_integer(
        "num_unused_tokens", 0, 'Number of "[unusedN]" slots reserved after those.'
    )
    flags.DEFINE_integer(
        "min_frequency", 10, "Lowest token frequency the size search may go down to."
    )
    flags.DEFINE_integer(
        "max_token_chars", 50, "Words longer than this many characters are not counted."
    )
    flags.DEFINE_integer(
        "max_alphabet_size", 1000, "Characters kept as tokens (the most frequent ones)."
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    vocabulary = build_vocabulary(
        FLAGS.input_files,
        FLAGS.vocab_size,
        lowercase=FLAGS.lowercase,
        strip_accents=FLAGS.strip_accents,
        reserved_tokens=FLAGS.reserved_tokens,
        num_unused_tokens=FLAGS.num_unused_tokens,
        min_frequency=FLAGS.min_frequency,
        max_token_chars=FLAGS.max_token_chars,
        max_alphabet_size=FLAGS.max_alphabet_size,
        output_file=FLAGS.output_file,
        progress=lambda message: print(message, flush=True),
    )
    print(f"{len(vocabulary)} tokens -> {FLAGS.output_file}")


def run():
    command.run(main, define_flags, __name__)
