"""Pretraining step throughput against keras-hub's `BertMaskedLM`
(`python -m benchmarks.pretraining_throughput`).

Both sides train the same BERT size (a `--config` preset, its 30,522-token
vocabulary) on the same batches (sequence length `--max_seq_length`,
`--max_predictions_per_seq` masked slots per sequence, every slot real), on
TensorFlow's CPU, in fp32, with the same optimizer (BERT's AdamW: decay
exclusions, warm-up/decay schedule, global-norm clipping 1.0), dropout 0.1,
one step per compiled call (the default of `kbi-pretrain` and of `fit`):

- ours: `BertPretrainer` (masked LM **and** next-sentence prediction: the
  pooler and the NSP head are extra work on our side) run by our `Trainer`
  (`strategy.run` loop, the path `kbi-pretrain` takes);
- keras-hub: `keras_hub.models.BertMaskedLM` (masked LM only), compiled with
  the same optimizer and a weighted masked-LM accuracy, stepped through
  Keras' own `train_function` (the inside of `fit`).

Rounds are interleaved (the side going first alternates) so that both see the
same load on a shared machine; each round's ratio compares the two sides of
that round, and the median ratio is reported, for wall time and for process
CPU time (all threads).

    python -m benchmarks.pretraining_throughput --config=mini --rounds=5 --steps_per_round=4 \\
        --benchmarks_file=BENCHMARKS.md
"""

import statistics
import sys
import tempfile
import time

from keras_bert_impl.cli import command

HEADING = "## Pretraining throughput vs keras-hub BertMaskedLM (CPU)"


def synthetic_batches(config, batch_size, seq_length, predictions, count, seed=0):
    """`count` batches in the pretraining layout: two segments, real lengths
    from half to full, `predictions` distinct masked positions per row."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = batch_size * count
    lengths = rng.integers(seq_length // 2, seq_length + 1, n)
    positions = np.arange(seq_length)[None]
    padding_mask = (positions < lengths[:, None]).astype("int32")
    token_ids = rng.integers(5, config.vocab_size, (n, seq_length)).astype("int32")
    token_ids *= padding_mask
    segment_ids = ((positions >= lengths[:, None] // 2) * padding_mask).astype("int32")
    # Distinct positions among the real tokens, [CLS] excluded, sorted.
    scores = rng.random((n, seq_length)) + (1 - padding_mask) * 2
    scores[:, 0] = 3
    mask_positions = np.sort(np.argsort(scores, axis=1)[:, :predictions], 1)
    x = {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
        "mask_positions": mask_positions.astype("int32"),
    }
    y = {
        "masked_lm_ids": np.take_along_axis(token_ids, mask_positions, 1),
        "masked_lm_weights": np.ones((n, predictions), "float32"),
        "next_sentence_labels": rng.integers(0, 2, n).astype("int32"),
    }
    return x, y


def _keras_hub_masked_lm(config, optimizer, jit_compile):
    import keras
    import keras_hub

    from benchmarks.backbone_forward import keras_hub_backbone

    model = keras_hub.models.BertMaskedLM(keras_hub_backbone(config), preprocessor=None)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy("accuracy")],
        jit_compile=jit_compile,
    )
    return model


def measure_throughput(
    config_name="mini",
    batch_size=32,
    seq_length=128,
    predictions=20,
    rounds=5,
    steps_per_round=4,
    warmup_steps=2,
    jit_compile=False,
    seed=0,
):
    """Sequences/s of both sides per interleaved round, and their ratios.

    Returns:
        A dict: `ours` / `keras_hub` (seq/s per round), `wall_ratios` and
        `cpu_ratios` (ours / keras-hub per round, above 1 = ours faster),
        `parameters` of each side, and the settings.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_bert_impl import BertConfig, BertPretrainer
    from keras_bert_impl.training import Trainer, TrainerSettings, create_optimizer

    config = BertConfig.preset(config_name)
    steps = warmup_steps + rounds * steps_per_round
    x, y = synthetic_batches(config, batch_size, seq_length, predictions, steps, seed)

    def optimizer():
        return create_optimizer(1e-4, 10_000, 100)

    keras.utils.set_random_seed(seed)
    trainer = Trainer(
        tf.distribute.get_strategy(),
        lambda: BertPretrainer(config),
        optimizer,
        TrainerSettings(
            output_dir=tempfile.mkdtemp(prefix="kbi-benchmark-"),
            num_train_steps=steps,
            global_batch_size=batch_size,
            jit_compile=jit_compile,
            tensorboard=False,
            verbose=0,
        ),
    )
    ours_data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).repeat()
    ours_iterator = trainer.distributed_iterator(ours_data)

    hub = _keras_hub_masked_lm(config, optimizer(), jit_compile)
    hub_data = (
        tf.data.Dataset.from_tensor_slices(
            (x, y["masked_lm_ids"], y["masked_lm_weights"])
        )
        .batch(batch_size)
        .repeat()
    )
    # fit builds the optimizer and metrics and traces the train function;
    # the timed steps then call that function as fit's loop does.
    hub.fit(hub_data, steps_per_epoch=warmup_steps, epochs=1, verbose=0)
    hub_iterator = iter(
        hub.distribute_strategy.experimental_distribute_dataset(hub_data)
    )
    for _ in range(warmup_steps):
        trainer.run_steps(ours_iterator, 1)

    def ours_steps():
        for _ in range(steps_per_round):
            trainer.run_steps(ours_iterator, 1)

    def hub_steps():
        for _ in range(steps_per_round):
            hub.train_function(hub_iterator)
        hub.optimizer.iterations.numpy()  # waits for the last step

    sides = {"ours": ours_steps, "keras_hub": hub_steps}
    wall = {name: [] for name in sides}
    cpu = {name: [] for name in sides}
    for round_index in range(rounds):
        order = list(sides) if round_index % 2 == 0 else list(sides)[::-1]
        for name in order:
            began, began_cpu = time.perf_counter(), time.process_time()
            sides[name]()
            wall[name].append(time.perf_counter() - began)
            cpu[name].append(time.process_time() - began_cpu)
        print(
            f"round {round_index + 1}: "
            + ", ".join(
                f"{n} {steps_per_round * batch_size / wall[n][-1]:.2f} seq/s"
                for n in sides
            ),
            flush=True,
        )
    sequences = steps_per_round * batch_size
    return {
        "ours": [sequences / s for s in wall["ours"]],
        "keras_hub": [sequences / s for s in wall["keras_hub"]],
        "wall_ratios": [h / o for o, h in zip(wall["ours"], wall["keras_hub"])],
        "cpu_ratios": [h / o for o, h in zip(cpu["ours"], cpu["keras_hub"])],
        "parameters": {
            "ours": int(
                sum(np.prod(v.shape) for v in trainer.model.trainable_variables)
            ),
            "keras_hub": int(sum(np.prod(v.shape) for v in hub.trainable_variables)),
        },
        "config": config,
        "settings": dict(
            config_name=config_name,
            batch_size=batch_size,
            seq_length=seq_length,
            predictions=predictions,
            rounds=rounds,
            steps_per_round=steps_per_round,
            warmup_steps=warmup_steps,
            jit_compile=jit_compile,
        ),
    }


def section(result, command):
    """The BENCHMARKS.md section for a `measure_throughput` result."""
    import keras
    import keras_hub
    import tensorflow as tf

    s, c = result["settings"], result["config"]
    rows = [
        f"| {i + 1} | {o:.2f} | {h:.2f} | {w:.2f}x | {p:.2f}x |"
        for i, (o, h, w, p) in enumerate(
            zip(
                result["ours"],
                result["keras_hub"],
                result["wall_ratios"],
                result["cpu_ratios"],
            )
        )
    ]
    wall = statistics.median(result["wall_ratios"])
    cpu = statistics.median(result["cpu_ratios"])
    return "\n".join(
        [
            f"Command: `{command}`",
            "",
            f"Config `{s['config_name']}` ({c.num_layers} layers, hidden {c.hidden_size}, "
            f"{c.num_heads} heads, vocabulary {c.vocab_size:,}), sequence length "
            f"{s['seq_length']}, batch {s['batch_size']}, {s['predictions']} masked slots per "
            "sequence (all real), real lengths from half to full, dropout 0.1, fp32, XLA "
            f"{'on' if s['jit_compile'] else 'off'}, BERT's AdamW (`create_optimizer`: "
            "FusedAdamW) on both sides, one step per "
            f"compiled call; the same synthetic batches on both sides. {s['rounds']} "
            f"interleaved rounds of {s['steps_per_round']} steps per side after "
            f"{s['warmup_steps']} untimed steps (the side going first alternates). "
            f"tensorflow {tf.__version__}, keras {keras.__version__}, keras-hub "
            f"{keras_hub.__version__}; the machine's 2 CPU cores are shared with other jobs, "
            "so read the ratios.",
            "",
            "- ours: `BertPretrainer` (masked LM + next-sentence prediction: NSP **is** "
            "included on our side, so ours does the pooler and NSP head on top) "
            "trained by our `Trainer` (what `kbi-pretrain` runs);",
            "- keras-hub: `BertMaskedLM` (masked LM only, no NSP) stepped by Keras' "
            "`train_function`, i.e. `fit`'s inner loop.",
            "",
            f"Trainable parameters: ours {result['parameters']['ours']:,}, keras-hub "
            f"{result['parameters']['keras_hub']:,}.",
            "",
            "| round | ours (seq/s) | keras-hub (seq/s) | ours / keras-hub, wall | "
            "ours / keras-hub, CPU time |",
            "|---|---|---|---|---|",
            *rows,
            f"| median | | | **{wall:.2f}x** | **{cpu:.2f}x** |",
            "",
            "Ratios above 1 mean ours trains faster; the CPU-time ratio counts the "
            "process's CPU seconds in each side's timed steps, which other jobs on the "
            "machine disturb less than wall time.",
        ]
    )


def define_flags(f):
    """Defines the tool's flags into the registry `f`."""
    from absl import flags

    flags.DEFINE_string(
        "config", "mini", "Config preset of both models.", flag_values=f
    )
    flags.DEFINE_integer("train_batch_size", 32, "Batch size.", flag_values=f)
    flags.DEFINE_integer("max_seq_length", 128, "Sequence length.", flag_values=f)
    flags.DEFINE_integer(
        "max_predictions_per_seq", 20, "Masked slots per sequence.", flag_values=f
    )
    flags.DEFINE_integer("rounds", 5, "Interleaved rounds.", flag_values=f)
    flags.DEFINE_integer(
        "steps_per_round", 4, "Timed steps per round and side.", flag_values=f
    )
    flags.DEFINE_integer("warmup_steps", 2, "Untimed steps per side.", flag_values=f)
    flags.DEFINE_bool("jit_compile", False, "XLA on both sides.", flag_values=f)
    from benchmarks import benchmarks_file

    benchmarks_file.define_flag(f)


def main(f):
    for name in ("train_batch_size", "max_seq_length", "rounds", "steps_per_round"):
        if f[name].value < 1:
            raise ValueError(f"--{name} must be >= 1, got {f[name].value}.")
    if not 0 < f.max_predictions_per_seq < f.max_seq_length:
        raise ValueError(
            f"--max_predictions_per_seq={f.max_predictions_per_seq} must be between 1 "
            f"and --max_seq_length - 1 ({f.max_seq_length - 1})."
        )
    from benchmarks import benchmarks_file

    machine = benchmarks_file.machine_line()
    result = measure_throughput(
        config_name=f.config,
        batch_size=f.train_batch_size,
        seq_length=f.max_seq_length,
        predictions=f.max_predictions_per_seq,
        rounds=f.rounds,
        steps_per_round=f.steps_per_round,
        warmup_steps=f.warmup_steps,
        jit_compile=f.jit_compile,
    )
    command_line = ["python", "-m", "benchmarks.pretraining_throughput", *sys.argv[1:]]
    body = section(result, " ".join(command_line))
    benchmarks_file.publish(f.benchmarks_file, HEADING, body, machine)
    return result


def run(argv=None):
    """Console entry point (flags defined here, not at import)."""
    return command.run_with_registry(main, define_flags, argv)


if __name__ == "__main__":
    raise SystemExit(run())
