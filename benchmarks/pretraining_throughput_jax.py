"""BERT pretraining throughput and MFU on an accelerator, JAX backend
(`python -m benchmarks.pretraining_throughput_jax`).

Runs our `BertPretrainer` (MLM + NSP) under Keras' JAX backend with
`mixed_bfloat16`, XLA-compiled `fit` steps on synthetic batches of the
pretraining layout, and reports sequences/s and model FLOPs utilisation:

    MFU = (sequences/s x training FLOPs per sequence) / peak bf16 FLOP/s

Training FLOPs per sequence = 3 x forward (forward + 2x backward), the
forward counting every matmul: 2 x (QKV/output/FFN weights) x seq_length
per layer, the attention products 2 x 2 x seq_length^2 x hidden per layer,
the pooler, the MLM transform and tied decoder on the predicted positions,
and the NSP head.

    KERAS_BACKEND=jax python -m benchmarks.pretraining_throughput_jax \\
        --config=base --batch_size=256 --seq_length=128 --peak_tflops=989

(989 TFLOP/s: H100/H200 SXM dense bf16.) Prepared for a GPU machine; a CPU
run with `--config=tiny` only checks that it works.
"""

import os
import time

from keras_bert_impl.cli import command

os.environ.setdefault("KERAS_BACKEND", "jax")


def training_flops_per_sequence(config, seq_length, predictions):
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_layers
    per_layer = 2 * seq_length * (4 * h * h + 2 * h * i) + 2 * 2 * seq_length**2 * h
    forward = layers * per_layer
    forward += 2 * h * h  # pooler on [CLS]
    forward += 2 * predictions * (h * h + h * config.vocab_size)  # MLM head
    forward += 2 * h * 2  # NSP head
    return 3 * forward


def synthetic_batch(config, batch_size, seq_length, predictions, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = {
        "token_ids": rng.integers(
            5, config.vocab_size, (batch_size, seq_length)
        ).astype("int32"),
        "segment_ids": (np.arange(seq_length)[None] >= seq_length // 2)
        .repeat(batch_size, 0)
        .astype("int32"),
        "padding_mask": np.ones((batch_size, seq_length), "int32"),
        "mask_positions": np.sort(
            rng.permuted(
                np.tile(np.arange(1, seq_length - 1), (batch_size, 1)), axis=1
            )[:, :predictions],
            1,
        ).astype("int32"),
    }
    y = {
        "masked_lm_ids": rng.integers(
            5, config.vocab_size, (batch_size, predictions)
        ).astype("int32"),
        "masked_lm_weights": np.ones((batch_size, predictions), "float32"),
        "next_sentence_labels": rng.integers(0, 2, batch_size).astype("int32"),
    }
    return x, y


def benchmark(
    config_name="base",
    batch_size=256,
    seq_length=128,
    predictions=20,
    steps=50,
    warmup_steps=5,
    peak_tflops=989.0,
    dtype="mixed_bfloat16",
):
    import jax
    import keras

    from keras_bert_impl import BertConfig, BertPretrainer
    from keras_bert_impl.training.optimization import create_optimizer

    config = BertConfig.preset(config_name)
    model = BertPretrainer(config, dtype=dtype)
    model.compile(
        optimizer=create_optimizer(1e-4, 10000, 100),
        jit_compile=True,
        steps_per_execution=1,
    )
    x, y = synthetic_batch(config, batch_size, seq_length, predictions)
    model.train_on_batch(x, y)  # compile
    for _ in range(warmup_steps):
        model.train_on_batch(x, y)
    jax.block_until_ready(model.trainable_variables[0].value)
    began = time.perf_counter()
    for _ in range(steps):
        logs = model.train_on_batch(x, y, return_dict=True)
    jax.block_until_ready(model.trainable_variables[0].value)
    seconds = time.perf_counter() - began
    sequences_per_second = steps * batch_size / seconds
    flops = training_flops_per_sequence(config, seq_length, predictions)
    return {
        "device": str(jax.devices()[0]),
        "keras_backend": keras.backend.backend(),
        "config": config_name,
        "batch_size": batch_size,
        "seq_length": seq_length,
        "sequences_per_second": sequences_per_second,
        "training_tflops_per_sequence": flops / 1e12,
        "mfu": sequences_per_second * flops / (peak_tflops * 1e12),
        "final_loss": float(logs["loss"]),
    }


def define_flags(f):
    """Defines the tool's flags into the registry `f`."""
    from absl import flags

    flags.DEFINE_string("config", "base", "Preset.", flag_values=f)
    flags.DEFINE_integer("batch_size", 256, "Global batch.", flag_values=f)
    flags.DEFINE_integer("seq_length", 128, "Sequence length.", flag_values=f)
    flags.DEFINE_integer("max_predictions_per_seq", 20, "MLM slots.", flag_values=f)
    flags.DEFINE_integer("steps", 50, "Timed steps.", flag_values=f)
    flags.DEFINE_float(
        "peak_tflops", 989.0, "Peak dense bf16 TFLOP/s of the chip.", flag_values=f
    )
    flags.DEFINE_string("dtype", "mixed_bfloat16", "Dtype policy.", flag_values=f)


def main(f):
    result = benchmark(
        f.config,
        f.batch_size,
        f.seq_length,
        f.max_predictions_per_seq,
        f.steps,
        peak_tflops=f.peak_tflops,
        dtype=f.dtype,
    )
    for key, value in result.items():
        print(f"{key} = {value}")
    return result


def run(argv=None):
    """Console entry point (flags defined here, not at import)."""
    return command.run_with_registry(main, define_flags, argv)


if __name__ == "__main__":
    raise SystemExit(run())
