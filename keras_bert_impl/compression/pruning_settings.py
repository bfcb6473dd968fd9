"""What `kbi-prune` may be asked, without TensorFlow (the command builds its
flags and `--help` from this)."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class PruneSettings:
    """What `kbi-prune` does (its flags, by the same names)."""

    init_checkpoint: str
    train_file: str
    output_dir: str
    head_fraction: float = 0.5
    ffn_fraction: float = 0.0
    importance_examples: int = 2000
    recovery_examples: int = 0
    learning_rate: float = 2e-5
    train_batch_size: int = 32
    max_seq_length: int | None = None
    bucket_lengths: str | None = None
    vocab_file: str | None = None
    do_lower_case: bool = True
    eval_file: str | None = None
    text_columns: tuple = ("sentence",)
    label_column: str = "label"
    seed: int = 12345
