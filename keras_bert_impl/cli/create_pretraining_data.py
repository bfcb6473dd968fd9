"""Creates BERT pretraining TFRecords (masked LM + next sentence) from text.

Flags, input format and output features are those of google-research/bert's
`create_pretraining_data.py`, and the recipe is the same (see
`keras_bert_impl.data.pretraining`); tokenization runs in TensorFlow in large
batches and instance creation is vectorised over worker processes.

Input: UTF-8 text, one sentence per line, blank lines between documents
(`--input_format=raw`: one paragraph per line, split into sentences).
Output: `--output_file` is a comma-separated list of files, and an item
`PATH@N` stands for the N shards `PATH-00000-of-0000N`...; instances are
shuffled and dealt round-robin over the files. Statistics are printed and
written as JSON to `--stats_file` (default: the first output item without `@N`
+ `.stats.json`, e.g. `train.tfrecord.stats.json`, outside the shards' glob).

    kbi-create-pretraining-data --input_file='corpus/*.txt' \\
        --output_file=gs://bucket/pretrain/train.tfrecord@16 \\
        --vocab_file=vocab.txt --do_lower_case --max_seq_length=128 \\
        --max_predictions_per_seq=20 --masked_lm_prob=0.15 --dupe_factor=10
"""

import json

from absl import app, flags, logging

from keras_bert_impl.cli import command


def define_flags(f):
    """Defined when the tool runs, so importing this module adds no flags."""
    flags.DEFINE_string(
        "input_file", None, "Input text files: comma-separated globs.", flag_values=f
    )
    flags.DEFINE_string(
        "output_file",
        None,
        "Output TFRecord files: comma-separated; PATH@N means N shards PATH-0000i-of-0000N.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "vocab_file", None, "WordPiece vocabulary (one token per line).", flag_values=f
    )
    flags.DEFINE_bool(
        "do_lower_case",
        True,
        "Lower-case (and strip accents): uncased models.",
        flag_values=f,
    )
    flags.DEFINE_bool(
        "do_whole_word_mask",
        False,
        "Mask whole words (a piece and its ## pieces).",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "max_seq_length", 128, "Maximum sequence length.", flag_values=f
    )
    flags.DEFINE_integer(
        "max_predictions_per_seq",
        20,
        "Maximum masked LM predictions per sequence.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "random_seed", 12345, "Random seed for data generation.", flag_values=f
    )
    flags.DEFINE_integer(
        "dupe_factor",
        10,
        "Number of passes over the input (with different masks and pairs).",
        flag_values=f,
    )
    flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.", flag_values=f)
    flags.DEFINE_float(
        "short_seq_prob",
        0.1,
        "Probability of a target length shorter than the maximum.",
        flag_values=f,
    )
    flags.DEFINE_enum(
        "input_format",
        "sentences",
        ["sentences", "raw"],
        "sentences: one sentence per line; raw: one paragraph per line, split into sentences. "
        "Blank lines separate documents in both.",
        flag_values=f,
    )
    flags.DEFINE_enum(
        "invalid_utf8",
        "replace",
        ["replace", "error"],
        "Bytes that are not UTF-8: replace them (counted and reported per file and line) "
        "or stop with an error naming file and line.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "num_workers",
        0,
        "Processes creating instances; 0: all usable cores.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "stats_file",
        None,
        "Statistics JSON; default: the first output item without @N + .stats.json.",
        flag_values=f,
    )


def main(flag_values):
    for name in ("input_file", "output_file", "vocab_file"):
        if not flag_values[name].value:
            raise app.UsageError(f"--{name} is required.")
    from keras_bert_impl.data import pretraining, tfrecord
    from keras_bert_impl.data.pretraining_files import create_pretraining_files
    from keras_bert_impl.text import Tokenizer
    from keras_bert_impl.text.file_patterns import expand_file_patterns

    logging.set_verbosity(logging.INFO)
    input_files = expand_file_patterns(flag_values.input_file)
    output_files = tfrecord.expand_output_files(flag_values.output_file)
    recipe = pretraining.PretrainingRecipe(
        max_seq_length=flag_values.max_seq_length,
        max_predictions_per_seq=flag_values.max_predictions_per_seq,
        masked_lm_prob=flag_values.masked_lm_prob,
        short_seq_prob=flag_values.short_seq_prob,
        do_whole_word_mask=flag_values.do_whole_word_mask,
    )
    tokenizer = Tokenizer(flag_values.vocab_file, lowercase=flag_values.do_lower_case)
    logging.info(
        "Reading %d input file(s): %s", len(input_files), ", ".join(input_files)
    )
    logging.info(
        "Writing %d output file(s): %s", len(output_files), ", ".join(output_files)
    )
    stats = create_pretraining_files(
        input_files,
        output_files,
        tokenizer,
        recipe,
        dupe_factor=flag_values.dupe_factor,
        random_seed=flag_values.random_seed,
        input_format=flag_values.input_format,
        invalid_utf8=flag_values.invalid_utf8,
        workers=flag_values.num_workers or None,
        stats_file=flag_values.stats_file
        or tfrecord.default_stats_file(flag_values.output_file),
    )
    print(json.dumps({k: v for k, v in stats.items() if k != "input_files"}, indent=2))


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)
