"""Prunes attention heads (and feed-forward neurons) of a fine-tuned classifier
(`kbi-prune`), then recovers with a short fine-tune.

    kbi-prune --init_checkpoint=runs/sst2/model.keras \\
        --train_file=glue/SST-2/train.tsv --eval_file=glue/SST-2/dev.tsv \\
        --head_fraction=0.5 --importance_examples=2000 \\
        --recovery_examples=4000 --learning_rate=2e-5 --output_dir=runs/pruned_50

Head importance follows Michel et al. 2019 (gradients of the loss with respect to
a head mask). Writes `model.keras` (the pruned, recovered classifier with its
preprocessor) and `pruning_report.json` (pruned heads per layer, parameter counts
before/after, accuracies with --eval_file) into --output_dir.
"""

from absl import flags

from keras_bert_impl.cli import command


def define_flags(flag_values):
    f = flag_values
    flags.DEFINE_string(
        "init_checkpoint",
        None,
        "A fine-tuned BertClassifier .keras file with its preprocessor "
        "(kbi-finetune's model.keras).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "train_file",
        None,
        "GLUE-style TSV (header with --text_columns and --label_column) for "
        "importance and recovery.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "eval_file",
        None,
        "Optional TSV of the same form: accuracy before pruning, after pruning "
        "and after recovery goes into the report.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "output_dir", None, "Where model.keras and the report go.", flag_values=f
    )
    flags.DEFINE_float(
        "head_fraction",
        0.5,
        "Fraction of all attention heads removed (globally least important; "
        "every layer keeps one).",
        flag_values=f,
    )
    flags.DEFINE_float(
        "ffn_fraction",
        0.0,
        "Fraction of feed-forward neurons removed from every layer.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "importance_examples",
        2000,
        "Training examples (the file's first) that score the heads.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "recovery_examples",
        0,
        "Training examples (the file's first) of the recovery fine-tune; 0: none.",
        flag_values=f,
    )
    flags.DEFINE_float(
        "learning_rate", 2e-5, "AdamW learning rate of the recovery.", flag_values=f
    )
    flags.DEFINE_integer(
        "train_batch_size",
        32,
        "Batch size of importance scoring and recovery.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "max_seq_length",
        None,
        "Tokens per sequence (default: the model's preprocessor's, else 128).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "bucket_lengths",
        None,
        "Pad each batch only to its longest text rounded up to a bucket ('auto': "
        "16, 32, 64, ... max_seq_length; a comma list; 'none'); default: the "
        "model's preprocessor's. Same results, less work on short texts.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "vocab_file",
        None,
        "vocab.txt for a classifier saved without a preprocessor (one is then "
        "built and saved with the pruned model).",
        flag_values=f,
    )
    flags.DEFINE_bool(
        "do_lower_case",
        True,
        "With --vocab_file: lower-case input (uncased models).",
        flag_values=f,
    )
    flags.DEFINE_list(
        "text_columns", ["sentence"], "One or two text columns.", flag_values=f
    )
    flags.DEFINE_string("label_column", "label", "The label column.", flag_values=f)
    flags.DEFINE_integer("seed", 12345, "Seed of the recovery.", flag_values=f)


def main(flag_values):
    from keras_bert_impl.compression.pruning_run import PruneSettings, run_pruning

    command.require_flags(flag_values, "init_checkpoint", "train_file", "output_dir")
    settings = command.settings_from_flags(flag_values, PruneSettings)
    settings = PruneSettings(
        **dict(vars(settings), text_columns=tuple(settings.text_columns))
    )
    report = run_pruning(settings)
    before, after = report["before"], report["after"]
    print(f"heads per layer: {before['heads_per_layer']} -> {after['heads_per_layer']}")
    print(f"parameters: {before['parameters']:,} -> {after['parameters']:,}")
    for key in sorted(report):
        if key.startswith("eval_accuracy"):
            print(f"{key} = {report[key]:.4f}")
    return report


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)
