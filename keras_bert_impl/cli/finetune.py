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

from absl import flags

from keras_bert_impl.cli import command


def define_flags(flag_values):
    from keras_bert_impl.data.table_files import FORMATS
    from keras_bert_impl.training.finetuning import TASK_NAMES
    from keras_bert_impl.training import text_tasks
    from keras_bert_impl.training.strategy import STRATEGIES

    f = flag_values
    flags.DEFINE_string(
        "task_name", None, f"One of {', '.join(TASK_NAMES)}.", flag_values=f
    )
    own = "text_classification/text_regression"
    formats = ", ".join(FORMATS)
    flags.DEFINE_string(
        "data_dir", None, "GLUE TSVs or CoNLL train/valid/test.txt.", flag_values=f
    )
    flags.DEFINE_string(
        "train_file",
        None,
        f"SQuAD training JSON; or {own} training data ({formats}, by extension; "
        ".json: one object per line). Its sorted labels are the classes.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "validation_file", None, f"{own}: the --do_eval file.", flag_values=f
    )
    flags.DEFINE_string(
        "test_file",
        None,
        f"{own}: the --do_predict file (its label column, if any, is checked "
        "against the training labels).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "text_column",
        None,
        f"{own}: the text column (default {text_tasks.DEFAULT_TEXT_COLUMN!r}).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "text_pair_column",
        None,
        f"{own}: a second text column for sentence pairs (default: none).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "label_column",
        None,
        f"{own}: the label column (default {text_tasks.DEFAULT_LABEL_COLUMN!r}).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "predict_file", None, "SQuAD JSON to evaluate/predict.", flag_values=f
    )
    flags.DEFINE_string(
        "output_dir", None, "Where everything is written.", flag_values=f
    )
    flags.DEFINE_string(
        "init_checkpoint",
        None,
        "A .keras file, a Hugging Face directory or a TF1 BERT checkpoint prefix.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "bert_config_file", None, "bert_config.json or config.json.", flag_values=f
    )
    flags.DEFINE_string(
        "config", None, "Preset (tiny ... large) when no checkpoint.", flag_values=f
    )
    flags.DEFINE_string(
        "vocab_file", None, "Vocabulary; default: the .keras model's, or the checkpoint's vocab.txt.", flag_values=f
    )
    flags.DEFINE_bool(
        "do_lower_case",
        None,
        "Lower-case input (uncased models); default: the .keras model's casing, "
        "else true.",
        flag_values=f,
    )
    flags.DEFINE_bool("do_train", False, "Train.", flag_values=f)
    flags.DEFINE_bool("do_eval", False, "Evaluate on the dev set.", flag_values=f)
    flags.DEFINE_bool("do_predict", False, "Predict the test set.", flag_values=f)
    flags.DEFINE_integer(
        "max_seq_length",
        None,
        "Tokens per sequence; default: the .keras model's, else 128.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "train_batch_size", 32, "Global training batch size.", flag_values=f
    )
    flags.DEFINE_integer("eval_batch_size", 64, "Evaluation batch size.", flag_values=f)
    flags.DEFINE_integer(
        "predict_batch_size", 64, "Prediction batch size.", flag_values=f
    )
    flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate.", flag_values=f)
    flags.DEFINE_float("num_train_epochs", 3.0, "Training epochs.", flag_values=f)
    flags.DEFINE_float(
        "warmup_proportion", 0.1, "Fraction of steps warming up.", flag_values=f
    )
    flags.DEFINE_float("weight_decay", 0.01, "AdamW weight decay.", flag_values=f)
    flags.DEFINE_enum(
        "optimizer", "adamw", ["adamw", "lamb"], "Optimizer.", flag_values=f
    )
    flags.DEFINE_string(
        "strategy", "default", f"One of {', '.join(STRATEGIES)}.", flag_values=f
    )
    flags.DEFINE_string("tpu", None, "TPU name/address, or 'local'.", flag_values=f)
    flags.DEFINE_string(
        "mixed_precision",
        None,
        "mixed_bfloat16 or mixed_float16 (loss-scaled).",
        flag_values=f,
    )
    flags.DEFINE_bool(
        "jit_compile", False, "Compile the train step with XLA.", flag_values=f
    )
    flags.DEFINE_integer(
        "steps_per_execution", 1, "Steps per compiled call.", flag_values=f
    )
    flags.DEFINE_integer(
        "save_checkpoints_steps", 1000, "Checkpoint interval.", flag_values=f
    )
    flags.DEFINE_integer(
        "seed", 12345, "Seed of initialisation, shuffling, dropout.", flag_values=f
    )
    flags.DEFINE_integer(
        "max_train_examples", None, "Train on the first N examples.", flag_values=f
    )
    flags.DEFINE_string(
        "bucket_lengths",
        None,
        "Text classification/regression: pad each batch only to its longest "
        "sequence rounded up to a bucket ('auto': 16, 32, 64, ... max_seq_length; "
        "or a comma list). Same results as fixed padding, less work on short texts.",
        flag_values=f,
    )
    flags.DEFINE_integer("doc_stride", 128, "SQuAD window stride.", flag_values=f)
    flags.DEFINE_integer(
        "max_query_length", 64, "SQuAD question pieces kept.", flag_values=f
    )
    flags.DEFINE_integer(
        "n_best_size", 20, "SQuAD candidates per question.", flag_values=f
    )
    flags.DEFINE_integer(
        "max_answer_length", 30, "SQuAD longest answer (pieces).", flag_values=f
    )
    flags.DEFINE_float(
        "null_score_diff_threshold",
        0.0,
        "SQuAD v2.0: answer '' above this.",
        flag_values=f,
    )


def main(flag_values):
    from keras_bert_impl.training.finetuning import FinetuneSettings, run_finetuning

    command.require_flags(flag_values, "task_name", "output_dir")
    result = run_finetuning(command.settings_from_flags(flag_values, FinetuneSettings))
    for key, value in sorted(result.get("eval_results", {}).items()):
        print(f"{key} = {value}")
    return result


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)
