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

from keras_bert_impl.cli import command


def define_flags(registry):
    from keras_bert_impl.compression.pruning_settings import PruneSettings

    command.define_settings_flags(
        registry,
        PruneSettings,
        {
            "init_checkpoint": (
                "A fine-tuned BertClassifier .keras file with its preprocessor "
                "(kbi-finetune's model.keras)."
            ),
            "train_file": (
                "GLUE-style TSV (header with --text_columns and --label_column) for "
                "importance and recovery."
            ),
            "eval_file": (
                "Optional TSV of the same form: accuracy before pruning, after pruning "
                "and after recovery goes into the report."
            ),
            "output_dir": "Where model.keras and the report go.",
            "head_fraction": (
                "Fraction of all attention heads removed (globally least important; "
                "every layer keeps one)."
            ),
            "ffn_fraction": "Fraction of feed-forward neurons removed from every layer.",
            "importance_examples": "Training examples (the file's first) that score the heads.",
            "recovery_examples": "Training examples (the file's first) of the recovery fine-tune; 0: none.",
            "learning_rate": "AdamW learning rate of the recovery.",
            "train_batch_size": "Batch size of importance scoring and recovery.",
            "max_seq_length": "Tokens per sequence (default: the model's preprocessor's, else 128).",
            "bucket_lengths": (
                "Pad each batch only to its longest text rounded up to a bucket ('auto': "
                "16, 32, 64, ... max_seq_length; a comma list; 'none'); default: the "
                "model's preprocessor's. Same results, less work on short texts."
            ),
            "vocab_file": (
                "vocab.txt for a classifier saved without a preprocessor (one is then "
                "built and saved with the pruned model)."
            ),
            "do_lower_case": "With --vocab_file: lower-case input (uncased models).",
            "text_columns": "One or two text columns.",
            "label_column": "The label column.",
            "seed": "Seed of the recovery.",
        },
    )


def main(flag_values):
    from keras_bert_impl.compression.pruning_run import run_pruning
    from keras_bert_impl.compression.pruning_settings import PruneSettings

    command.require_flags(flag_values, "init_checkpoint", "train_file", "output_dir")
    settings = command.settings_from_flags(flag_values, PruneSettings)
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
