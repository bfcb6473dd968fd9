r"""Learns a BERT WordPiece vocabulary from text files.

Usage:
  kbi-build-vocab --input_files='corpus/*.txt,more.txt' --output_file=vocab.txt \
      --vocab_size=30522 --lowercase --num_unused_tokens=100
"""

from absl import flags

from keras_bert_impl.cli import command


def define_flags(f):
    """Defined when the tool runs, so importing this module adds no flags."""
    flags.DEFINE_string(
        "input_files",
        None,
        "Comma-separated globs of UTF-8 text files.",
        required=True,
        flag_values=f,
    )
    flags.DEFINE_string(
        "output_file",
        None,
        "Vocabulary file to write, one token per line.",
        required=True,
        flag_values=f,
    )
    flags.DEFINE_integer("vocab_size", 30522, "Largest vocabulary size.", flag_values=f)
    flags.DEFINE_boolean(
        "lowercase", True, "Uncased vocabulary (lower-case text).", flag_values=f
    )
    flags.DEFINE_boolean(
        "strip_accents",
        None,
        "Strip accents (NFD, drop marks); unset follows --lowercase.",
        flag_values=f,
    )
    flags.DEFINE_list(
        "reserved_tokens",
        [],
        "Extra tokens placed after [PAD] [UNK] [CLS] [SEP] [MASK].",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "num_unused_tokens",
        0,
        'Number of "[unusedN]" slots reserved after those.',
        flag_values=f,
    )
    flags.DEFINE_integer(
        "min_frequency",
        10,
        "Lowest token frequency the size search may go down to.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "max_token_chars",
        50,
        "Words longer than this many characters are not counted.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "max_alphabet_size",
        1000,
        "Characters kept as tokens (the most frequent ones).",
        flag_values=f,
    )


def main(flag_values):
    from keras_bert_impl.text import build_vocabulary

    vocabulary = build_vocabulary(
        flag_values.input_files,
        flag_values.vocab_size,
        lowercase=flag_values.lowercase,
        strip_accents=flag_values.strip_accents,
        reserved_tokens=flag_values.reserved_tokens,
        num_unused_tokens=flag_values.num_unused_tokens,
        min_frequency=flag_values.min_frequency,
        max_token_chars=flag_values.max_token_chars,
        max_alphabet_size=flag_values.max_alphabet_size,
        output_file=flag_values.output_file,
        progress=lambda message: print(message, flush=True),
    )
    print(f"{len(vocabulary)} tokens -> {flag_values.output_file}")


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)
