"""Fine-tunes BERT on text classification/regression (GLUE or your own files),
CoNLL NER or SQuAD (`kbi-finetune`).

Flags follow google-research/bert's run_classifier.py / run_squad.py, and
transformers' run_glue.py for your own CSV, TSV or JSON lines files:

    kbi-finetune --task_name=sst2 --data_dir=glue/SST-2 \\
        --init_checkpoint=all-MiniLM-L6-v2/ --do_train --do_eval \\
        --max_seq_length=64 --train_batch_size=32 --learning_rate=5e-5 \\
        --num_train_epochs=1 --warmup_proportion=0.1 --output_dir=/tmp/sst2
    kbi-finetune --task_name=text_classification --train_file=train.csv \\
        --validation_file=dev.csv --test_file=test.csv --text_column=review \\
        --init_checkpoint=all-MiniLM-L6-v2/ --do_train --do_eval --do_predict \\
        --output_dir=/tmp/reviews
    kbi-finetune --task_name=ner --train_file=train.conll \
        --validation_file=dev.conll --init_checkpoint=all-MiniLM-L6-v2/ \
        --do_train --do_eval --output_dir=/tmp/tagger

Writes the trained model (`model.keras`: weights, vocabulary, casing, sequence
length and labels, without the optimizer's slots; the file to predict with and
export), checkpoints (with the optimizer's state: a rerun resumes from the last
one), TensorBoard logs, training curves, `eval_results.txt`/`.json` and
predictions into `--output_dir` (any TensorFlow file system).

A finished run is evaluated again from its `model.keras` with nothing else:

    kbi-finetune --task_name=sst2 --data_dir=glue/SST-2 --do_eval --output_dir=/tmp/sst2
    kbi-finetune --task_name=sst2 --data_dir=glue/SST-2 --do_predict \\
        --init_checkpoint=/tmp/sst2/model.keras --output_dir=/tmp/sst2-test
"""

from keras_bert_impl.cli import command


def define_flags(registry):
    from keras_bert_impl.data.table_files import FORMATS
    from keras_bert_impl.tasks import text_classification
    from keras_bert_impl.tasks import FINETUNING_TASKS
    from keras_bert_impl.tasks.settings import FinetuneSettings
    from keras_bert_impl.training.settings import STRATEGIES

    own = "text_classification/text_regression"
    formats = ", ".join(FORMATS)
    command.define_settings_flags(
        registry,
        FinetuneSettings,
        {
            "task_name": f"One of {', '.join(FINETUNING_TASKS)}.",
            "data_dir": "A GLUE task's TSVs, or CoNLL-2003's train/valid/test.txt.",
            "train_file": (
                f"SQuAD training JSON; or {own} training data ({formats}, by extension; "
                ".json: one object per line), whose sorted labels are the classes; or "
                "conll2003/ner: a CoNLL file (word first, tag last on each line, a "
                "blank line between sentences)."
            ),
            "validation_file": f"{own} or conll2003/ner: the --do_eval file.",
            "test_file": (
                f"{own} or conll2003/ner: the --do_predict file (its labels, if any, "
                "are checked against the training labels)."
            ),
            "text_column": f"{own}: the text column (default {text_classification.DEFAULT_TEXT_COLUMN!r}).",
            "text_pair_column": f"{own}: a second text column for sentence pairs (default: none).",
            "label_column": f"{own}: the label column (default {text_classification.DEFAULT_LABEL_COLUMN!r}).",
            "predict_file": "SQuAD JSON to evaluate/predict.",
            "output_dir": "Where everything is written.",
            "init_checkpoint": "A .keras file, a Hugging Face directory or a TF1 BERT checkpoint prefix.",
            "bert_config_file": "bert_config.json or config.json.",
            "config": "Preset (tiny ... large) when no checkpoint.",
            "vocab_file": "Vocabulary; default: the .keras model's, or the checkpoint's vocab.txt.",
            "do_lower_case": (
                "Lower-case input (uncased models); default: the .keras model's casing, "
                "else true."
            ),
            "do_train": "Train.",
            "do_eval": "Evaluate on the dev set.",
            "do_predict": "Predict the test set.",
            "max_seq_length": "Tokens per sequence; default: the .keras model's, else 128.",
            "train_batch_size": "Global training batch size.",
            "eval_batch_size": "Evaluation batch size.",
            "predict_batch_size": "Prediction batch size.",
            "learning_rate": "Peak learning rate.",
            "num_train_epochs": "Training epochs.",
            "warmup_proportion": "Fraction of steps warming up.",
            "weight_decay": "AdamW weight decay.",
            "optimizer": "Optimizer.",
            "strategy": f"One of {', '.join(STRATEGIES)}.",
            "tpu": "TPU name/address, or 'local'.",
            "mixed_precision": "mixed_bfloat16 or mixed_float16 (loss-scaled).",
            "jit_compile": "Compile the train step with XLA.",
            "steps_per_execution": "Steps per compiled call.",
            "save_checkpoints_steps": "Checkpoint interval.",
            "seed": "Seed of initialisation, shuffling, dropout.",
            "max_train_examples": "Train on the first N examples.",
            "bucket_lengths": (
                "Text classification/regression: pad each batch only to its longest "
                "sequence rounded up to a bucket ('auto': 16, 32, 64, ... max_seq_length; "
                "or a comma list). Same results as fixed padding, less work on short texts."
            ),
            "doc_stride": "SQuAD window stride.",
            "max_query_length": "SQuAD question pieces kept.",
            "n_best_size": "SQuAD candidates per question.",
            "max_answer_length": "SQuAD longest answer (pieces).",
            "null_score_diff_threshold": "SQuAD v2.0: answer '' above this.",
        },
        choices={"optimizer": ["adamw", "lamb"]},
    )


def main(flag_values):
    from keras_bert_impl.tasks.finetuning import run_finetuning
    from keras_bert_impl.tasks.settings import FinetuneSettings

    command.require_flags(flag_values, "task_name", "output_dir")
    result = run_finetuning(command.settings_from_flags(flag_values, FinetuneSettings))
    for key, value in sorted(result.get("eval_results", {}).items()):
        print(f"{key} = {value}")
    return result


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)
