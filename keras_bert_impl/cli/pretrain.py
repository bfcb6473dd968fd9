"""Pretrains BERT with masked LM + next sentence prediction (`kbi-pretrain`).

Flags follow google-research/bert's run_pretraining.py:

    kbi-pretrain --input_file='pretrain/train.tfrecord-*' --config=base \\
        --train_batch_size=256 --max_seq_length=128 --max_predictions_per_seq=20 \\
        --num_train_steps=1000000 --num_warmup_steps=10000 --learning_rate=1e-4 \\
        --strategy=tpu --tpu=my-tpu --mixed_precision=mixed_bfloat16 \\
        --output_dir=gs://bucket/bert-base

Raw text instead of TFRecords (pairs and masks drawn afresh in every batch):

    kbi-pretrain --input_file='corpus/*.txt' --input_format=raw \\
        --vocab_file=vocab.txt --config=tiny --output_dir=/tmp/bert-tiny

With `--vocab_file` the model has one embedding row per token of it (a
`--config` preset's vocab_size gives way; a `--bert_config_file` that disagrees
is an error), and `model.keras` carries the tokenizer, so that
`kbi-export --task=fill_mask --init_checkpoint=<output_dir>/model.keras` needs
nothing else.

A rerun with the same `--output_dir` resumes from its last checkpoint.
"""

from absl import flags

from keras_bert_impl.cli import command


def define_flags(f):
    from keras_bert_impl.training.strategy import STRATEGIES

    def string(name, default, help_text):
        flags.DEFINE_string(name, default, help_text, flag_values=f)

    def integer(name, default, help_text):
        flags.DEFINE_integer(name, default, help_text, flag_values=f)

    def boolean(name, default, help_text):
        flags.DEFINE_bool(name, default, help_text, flag_values=f)

    string(
        "input_file",
        None,
        "Comma-separated globs: pretraining TFRecords, or text files with "
        "--input_format=sentences|raw.",
    )
    string("output_dir", None, "Checkpoints, logs, curves and model.keras go here.")
    string("bert_config_file", None, "bert_config.json or config.json.")
    string("config", None, "Preset (tiny, mini, small, medium, base, large).")
    string("init_checkpoint", None, ".keras file, HF directory or TF1 checkpoint.")
    string(
        "vocab_file",
        None,
        "Vocabulary: sets the model's vocab_size and is saved in model.keras "
        "(needed with --dynamic_masking or text input).",
    )
    boolean("dynamic_masking", False, "Mask afresh in every batch (RoBERTa-style).")
    flags.DEFINE_enum(
        "input_format",
        "tfrecord",
        ["tfrecord", "sentences", "raw"],
        "tfrecord: kbi-create-pretraining-data output. sentences / raw: text "
        "in kbi-create-pretraining-data's formats (one sentence / one "
        "paragraph per line, blank lines between documents), paired and "
        "masked afresh in every batch (needs --vocab_file).",
        flag_values=f,
    )
    boolean("do_whole_word_mask", False, "Dynamic masks cover whole words.")
    integer("train_batch_size", 32, "Global training batch size.")
    integer("eval_batch_size", 8, "Evaluation batch size.")
    integer("max_seq_length", 128, "Sequence length of the records.")
    integer("max_predictions_per_seq", 20, "Masked-LM slots per sequence.")
    integer("num_train_steps", 100000, "Training steps.")
    integer("num_warmup_steps", 10000, "Warm-up steps.")
    flags.DEFINE_float("learning_rate", 1e-4, "Peak learning rate.", flag_values=f)
    flags.DEFINE_float("weight_decay", 0.01, "AdamW/LAMB weight decay.", flag_values=f)
    flags.DEFINE_enum(
        "optimizer", "adamw", ["adamw", "lamb"], "Optimizer.", flag_values=f
    )
    boolean("do_train", True, "Train.")
    boolean("do_eval", False, "Evaluate masked-LM / NSP accuracy.")
    string("eval_input_file", None, "Held-out records (default: --input_file).")
    integer("max_eval_steps", 100, "Evaluation batches.")
    integer("save_checkpoints_steps", 1000, "Checkpoint interval.")
    integer("steps_per_execution", 1, "Steps per compiled call.")
    string("strategy", "default", f"One of {', '.join(STRATEGIES)}.")
    string("tpu", None, "TPU name/address, or 'local'.")
    string("mixed_precision", None, "mixed_bfloat16 or mixed_float16 (loss-scaled).")
    boolean("jit_compile", False, "Compile the train step with XLA.")
    integer("seed", 12345, "Seed of initialisation, shuffling, masking, dropout.")


def main(f):
    from keras_bert_impl.training.pretraining import PretrainSettings, run_pretraining

    command.require_flags(f, "input_file", "output_dir")
    if not (
        f["bert_config_file"].value or f["config"].value or f["init_checkpoint"].value
    ):
        raise ValueError("Give --bert_config_file, --config or --init_checkpoint.")
    result = run_pretraining(command.settings_from_flags(f, PretrainSettings))
    for key, value in sorted(result.get("eval_results", {}).items()):
        print(f"{key} = {value}")
    return result


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)
