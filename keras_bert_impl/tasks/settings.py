"""What `kbi-finetune` may be asked, without TensorFlow (the command builds its
flags and `--help` from this)."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class FinetuneSettings:
    """Settings of a fine-tuning run (google-research/bert flag names)."""

    task_name: str
    output_dir: str
    data_dir: str | None = None
    train_file: str | None = None
    predict_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    init_checkpoint: str | None = None
    bert_config_file: str | None = None
    config: str | None = None
    vocab_file: str | None = None
    do_lower_case: bool | None = None  # None: the saved model's, else True
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False
    max_seq_length: int | None = None  # None: the saved model's, else 128
    train_batch_size: int = 32
    eval_batch_size: int = 64
    predict_batch_size: int = 64
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    warmup_proportion: float = 0.1
    weight_decay: float = 0.01
    optimizer: str = "adamw"
    strategy: str = "default"
    tpu: str | None = None
    mixed_precision: str | None = None
    jit_compile: bool = False
    steps_per_execution: int = 1
    save_checkpoints_steps: int = 1000
    seed: int = 12345
    max_train_examples: int | None = None
    bucket_lengths: str | None = None
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0
    verbose: int = 1
