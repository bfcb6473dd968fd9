"""What a training run may be asked, without TensorFlow: `kbi-pretrain`'s
settings and the choices every run shares (the commands build their flags and
`--help` from these)."""

import dataclasses

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
MIXED_PRECISION = (None, "mixed_bfloat16", "mixed_float16")
INPUT_FORMATS = ("tfrecord", "sentences", "raw")


def check_mixed_precision(value):
    """`--mixed_precision` is unset or a policy the trainer runs."""
    if value not in MIXED_PRECISION:
        raise ValueError(
            f"Unknown --mixed_precision={value!r}; valid values are '', "
            "'mixed_bfloat16', 'mixed_float16'."
        )


@dataclasses.dataclass(frozen=True)
class PretrainSettings:
    """Settings of a pretraining run (google-research/bert flag names)."""

    input_file: str
    output_dir: str
    bert_config_file: str | None = None
    config: str | None = None
    init_checkpoint: str | None = None
    vocab_file: str | None = None
    do_lower_case: bool | None = (
        None  # None: the saved model's, else read off the vocabulary
    )
    dynamic_masking: bool = False
    input_format: str = "tfrecord"
    do_whole_word_mask: bool = False
    train_batch_size: int = 32
    eval_batch_size: int = 8
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    num_train_steps: int = 100000
    num_warmup_steps: int = 10000
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    optimizer: str = "adamw"
    do_train: bool = True
    do_eval: bool = False
    eval_input_file: str | None = None
    max_eval_steps: int = 100
    save_checkpoints_steps: int = 1000
    steps_per_execution: int = 1
    strategy: str = "default"
    tpu: str | None = None
    mixed_precision: str | None = None
    jit_compile: bool = False
    seed: int = 12345
    verbose: int = 1
