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

FLAGS = flags.FLAGS


def define_flags():
    """Defined when the tool runs, so importing this module adds no flags."""
    flags.DEFINE_string("input_file", None, "Input text files: comma-separated globs.")
    flags.DEFINE_string(
        "output_file",
        None,
        "Output TFRecord files: comma-separated; PATH@N means N shards PATH-0000i-of-0000N.",
    )
    flags.DEFINE_string(
        "vocab_file", None, "WordPiece vocabulary (one token per line)."
    )
    flags.DEFINE_bool(
        "do_lower_case", True, "Lower-case (and strip accents): uncased models."
    )
    flags.DEFINE_bool(
        "do_whole_word_mask", False, "Mask whole words (a piece and its ## pieces)."
    )
    flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.")
    flags.DEFINE_integer(
        "max_predictions_per_seq", 20, "Maximum masked LM predictions per sequence."
    )
    flags.DEFINE_integer("random_seed", 12345, "Random seed for data generation.")
    flags.DEFINE_integer(
        "dupe_factor",
        10,
        "Number of passes over the input (with different masks and pairs).",
    )
    flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.")
    flags.DEFINE_float(
        "short_seq_prob",
        0.1,
        "Probability of a target length shorter than the maximum.",
    )
    flags.DEFINE_enum(
        "input_format",
        "sentences",
        ["sentences", "raw"],
        "sentences: one sentence per line; raw: one paragraph per line, split into sentences. "
        "Blank lines separate documents in both.",
    )
    flags.DEFINE_enum(
        "invalid_utf8",
        "replace",
        ["replace", "error"],
        "Bytes that are not UTF-8: replace them (counted and reported per file and line) "
        "or stop with an error naming file and line.",
    )
    flags.DEFINE_integer(
        "num_workers", 0, "Processes creating instances; 0: all usable cores."
    )
    flags.DEFINE_string(
        "stats_file",
        None,
        "Statistics JSON; default: the first output item without @N + .stats.json.",
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    for name in ("input_file", "output_file", "vocab_file"):
        if not FLAGS[name].value:
            raise app.UsageError(f"--{name} is required.")
    from keras_bert_impl.data import pretraining, tfrecord
    from keras_bert_impl.data.pretraining_files import create_pretraining_files
    from keras_bert_impl.text import Tokenizer
    from keras_bert_impl.text.file_patterns import expand_file_patterns

    logging.set_verbosity(logging.INFO)
    input_files = expand_file_patterns(FLAGS.input_file)
    output_files = tfrecord.expand_output_files(FLAGS.output_file)
    recipe = pretraining.PretrainingRecipe(
        max_seq_length=FLAGS.max_seq_length,
        max_predictions_per_seq=FLAGS.max_predictions_per_seq,
        masked_lm_prob=FLAGS.masked_lm_prob,
        short_seq_prob=FLAGS.short_seq_prob,
        do_whole_word_mask=FLAGS.do_whole_word_mask,
    )
    tokenizer = Tokenizer(FLAGS.vocab_file, lowercase=FLAGS.do_lower_case)
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
        dupe_factor=FLAGS.dupe_factor,
        random_seed=FLAGS.random_seed,
        input_format=FLAGS.input_format,
        invalid_utf8=FLAGS.invalid_utf8,
        workers=FLAGS.num_workers or None,
        stats_file=FLAGS.stats_file or tfrecord.default_stats_file(FLAGS.output_file),
    )
    print(json.dumps({k: v for k, v in stats.items() if k != "input_files"}, indent=2))


def run():
    command.run(main, define_flags, __name__)
