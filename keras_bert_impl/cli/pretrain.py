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

from keras_bert_impl.cli import command


def define_flags(registry):
    from keras_bert_impl.training.settings import PretrainSettings
    from keras_bert_impl.training.settings import STRATEGIES

    command.define_settings_flags(
        registry,
        PretrainSettings,
        {
            "input_file": (
                "Comma-separated globs: pretraining TFRecords, or text files with "
                "--input_format=sentences|raw."
            ),
            "output_dir": "Checkpoints, logs, curves and model.keras go here.",
            "bert_config_file": "bert_config.json or config.json.",
            "config": "Preset (tiny, mini, small, medium, base, large).",
            "init_checkpoint": ".keras file, HF directory or TF1 checkpoint.",
            "vocab_file": (
                "Vocabulary: sets the model's vocab_size and is saved in model.keras "
                "(needed with --dynamic_masking or text input)."
            ),
            "do_lower_case": (
                "Lower-case input (uncased vocabularies); default: the .keras "
                "checkpoint's casing, else read off the vocabulary."
            ),
            "dynamic_masking": "Mask afresh in every batch (RoBERTa-style).",
            "input_format": (
                "tfrecord: kbi-create-pretraining-data output. sentences / raw: text "
                "in kbi-create-pretraining-data's formats (one sentence / one "
                "paragraph per line, blank lines between documents), paired and "
                "masked afresh in every batch (needs --vocab_file)."
            ),
            "do_whole_word_mask": "Dynamic masks cover whole words.",
            "train_batch_size": "Global training batch size.",
            "eval_batch_size": "Evaluation batch size.",
            "max_seq_length": "Sequence length of the records.",
            "max_predictions_per_seq": "Masked-LM slots per sequence.",
            "num_train_steps": "Training steps.",
            "num_warmup_steps": "Warm-up steps.",
            "learning_rate": "Peak learning rate.",
            "weight_decay": "AdamW/LAMB weight decay.",
            "optimizer": "Optimizer.",
            "do_train": "Train.",
            "do_eval": "Evaluate masked-LM / NSP accuracy.",
            "eval_input_file": "Held-out records (default: --input_file).",
            "max_eval_steps": "Evaluation batches.",
            "save_checkpoints_steps": "Checkpoint interval.",
            "steps_per_execution": "Steps per compiled call.",
            "strategy": f"One of {', '.join(STRATEGIES)}.",
            "tpu": "TPU name/address, or 'local'.",
            "mixed_precision": "mixed_bfloat16 or mixed_float16 (loss-scaled).",
            "jit_compile": "Compile the train step with XLA.",
            "seed": "Seed of initialisation, shuffling, masking, dropout.",
        },
        choices={
            "input_format": ["tfrecord", "sentences", "raw"],
            "optimizer": ["adamw", "lamb"],
        },
    )


def main(f):
    from keras_bert_impl.training.pretraining import run_pretraining
    from keras_bert_impl.training.settings import PretrainSettings

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
