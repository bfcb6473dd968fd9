"""Fine-tuning throughput against transformers' PyTorch loop, and the SST-2
result of a `kbi-finetune` run, into BENCHMARKS.md (`python -m benchmarks.finetune_throughput`).

Both sides train the same all-MiniLM-L6-v2 classifier (ours imported from
its Hugging Face files) on the same SST-2 batches (ids from our tokenizer,
padded to --max_seq_length), AdamW + warm-up/decay + clipping, in
interleaved rounds so that both see the same machine load; the ratio is
taken per round.

    python -m benchmarks.finetune_throughput --data_dir=../shared/data/sst2 \\
        --finetune_output_dir=/tmp/sst2 --benchmarks_file=BENCHMARKS.md
"""

import json
import os
import sys
import time

import numpy as np

from keras_bert_impl.cli import command

HEADING = "## Fine-tuning: SST-2 with all-MiniLM-L6-v2 (CPU)"


def _batches(data_dir, checkpoint, seq_length, batch_size, count):
    import tensorflow as tf

    from keras_bert_impl.data import tasks
    from keras_bert_impl.text import Packer, Tokenizer

    examples = tasks.read_tsv_examples(os.path.join(data_dir, "train.tsv"))
    tokenizer = Tokenizer(os.path.join(checkpoint, "vocab.txt"), lowercase=True)
    subset = tasks.TextExamples(
        texts=(examples.texts[0][: batch_size * count],),
        labels=examples.labels[: batch_size * count],
        label_vocabulary=examples.label_vocabulary,
        source=examples.source,
    )
    packer = Packer.from_tokenizer(tokenizer, seq_length)
    dataset = tasks.text_classification_dataset(
        subset, tokenizer, packer, batch_size, drop_remainder=True
    )
    return [
        (tf.nest.map_structure(lambda t: t.numpy(), x), y.numpy()) for x, y in dataset
    ]


def measure_throughput(
    data_dir,
    checkpoint,
    seq_length=64,
    batch_size=32,
    rounds=3,
    steps_per_round=8,
    warmup_steps=3,
):
    """Sequences/s of ours and of transformers, interleaved; per-round ratios."""
    import tensorflow as tf
    import torch
    import transformers

    from keras_bert_impl.convert import from_huggingface
    from keras_bert_impl.models import BertClassifier
    from keras_bert_impl.training import Trainer, TrainerSettings, create_optimizer

    steps = warmup_steps + rounds * steps_per_round
    batches = _batches(data_dir, checkpoint, seq_length, batch_size, steps)
    xs = {k: np.concatenate([b[0][k] for b in batches]) for k in batches[0][0]}
    ys = np.concatenate([b[1] for b in batches])

    trainer = Trainer(
        tf.distribute.get_strategy(),
        lambda: from_huggingface(checkpoint, BertClassifier, num_classes=2),
        lambda: create_optimizer(5e-5, 1000, 100),
        TrainerSettings(
            output_dir="/tmp/unused",
            num_train_steps=steps,
            global_batch_size=batch_size,
            verbose=0,
            tensorboard=False,
        ),
    )
    iterator = trainer.distributed_iterator(
        tf.data.Dataset.from_tensor_slices((xs, ys)).batch(batch_size).repeat()
    )

    model = transformers.BertForSequenceClassification.from_pretrained(
        checkpoint, num_labels=2
    )
    model.train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=5e-5, eps=1e-6, weight_decay=0.01
    )
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, 100, 1000)
    cursor = [0]

    def torch_steps(n):
        for _ in range(n):
            x, y = batches[cursor[0] % len(batches)]
            cursor[0] += 1
            loss = model(
                input_ids=torch.tensor(x["token_ids"], dtype=torch.long),
                token_type_ids=torch.tensor(x["segment_ids"], dtype=torch.long),
                attention_mask=torch.tensor(x["padding_mask"], dtype=torch.long),
                labels=torch.tensor(y, dtype=torch.long),
            ).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()

    trainer.run_steps(iterator, warmup_steps)
    torch_steps(warmup_steps)
    ours, theirs = [], []
    for _ in range(rounds):
        began = time.perf_counter()
        trainer.run_steps(iterator, steps_per_round)
        ours.append(steps_per_round * batch_size / (time.perf_counter() - began))
        began = time.perf_counter()
        torch_steps(steps_per_round)
        theirs.append(steps_per_round * batch_size / (time.perf_counter() - began))
    ratios = [a / b for a, b in zip(ours, theirs)]
    return {
        "ours": ours,
        "transformers": theirs,
        "ratios": ratios,
        "torch_threads": torch.get_num_threads(),
    }


def measure_optimizer_step(checkpoint, batch, rounds=5, applies_per_round=5):
    """Milliseconds per `apply_gradients` of Keras' AdamW and of FusedAdamW, both as
    `create_optimizer` sets them up (schedule, decay exclusions, clipping), on the
    classifier's gradients for `batch` (the word embeddings' one sparse, as in
    training); interleaved rounds, median per optimizer."""
    import keras
    import tensorflow as tf

    from keras_bert_impl.convert import from_huggingface
    from keras_bert_impl.models import BertClassifier
    from keras_bert_impl.training import create_optimizer
    from keras_bert_impl.training.optimization import WEIGHT_DECAY_EXCLUSIONS

    model = from_huggingface(checkpoint, BertClassifier, num_classes=2)
    x, y = batch
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        value = loss(y, model(x, training=True))
    gradients = tape.gradient(value, model.trainable_variables)
    fused = create_optimizer(5e-5, 1000, 100)
    plain = keras.optimizers.AdamW.from_config(fused.get_config())
    plain.exclude_from_weight_decay(var_names=list(WEIGHT_DECAY_EXCLUSIONS))
    optimizers = {"Keras AdamW": plain, "FusedAdamW": fused}
    applies = {
        name: tf.function(
            lambda g, o=optimizer: o.apply_gradients(zip(g, model.trainable_variables))
        )
        for name, optimizer in optimizers.items()
    }
    times = {name: [] for name in applies}
    for apply in applies.values():
        apply(gradients)  # trace and build the slots
    for _ in range(rounds):
        for name, apply in applies.items():
            for _ in range(applies_per_round):
                began = time.perf_counter()
                apply(gradients)
                optimizers[name].iterations.numpy()  # wait for the update
                times[name].append(1000 * (time.perf_counter() - began))
    return {name: float(np.median(t)) for name, t in times.items()}


def define_flags(f):
    """Defines the tool's flags into the registry `f`."""
    from absl import flags

    flags.DEFINE_string("data_dir", None, "SST-2 directory (train.tsv).", flag_values=f)
    flags.DEFINE_string(
        "init_checkpoint",
        None,
        "MiniLM directory (default: the gt package).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "finetune_output_dir",
        None,
        "A kbi-finetune --output_dir to report.",
        flag_values=f,
    )
    flags.DEFINE_integer("rounds", 3, "Interleaved rounds.", flag_values=f)
    flags.DEFINE_integer(
        "steps_per_round", 8, "Steps per round and side.", flag_values=f
    )
    from benchmarks import benchmarks_file

    benchmarks_file.define_flag(f)


def main(f):
    if not f.data_dir:
        raise ValueError("--data_dir is required.")
    checkpoint = f.init_checkpoint
    if not checkpoint:
        from keras_bert_impl.convert.installed import installed_checkpoint_dir

        checkpoint = installed_checkpoint_dir()
    from benchmarks import benchmarks_file

    machine = benchmarks_file.machine_line()
    speed = measure_throughput(
        f.data_dir, checkpoint, rounds=f.rounds, steps_per_round=f.steps_per_round
    )
    print(json.dumps(speed))
    batch = _batches(f.data_dir, checkpoint, 64, 32, 1)[0]
    optimizer_ms = measure_optimizer_step(checkpoint, batch, rounds=f.rounds)
    print(json.dumps(optimizer_ms))
    lines = [
        "Training step throughput, seq 64, batch 32, same batches, interleaved rounds "
        f"({f.rounds} x {f.steps_per_round} steps per side), on the shared 2-core machine "
        f"(torch threads: {speed['torch_threads']}):",
        "",
        "| round | ours (seq/s) | transformers PyTorch (seq/s) | ratio |",
        "|---|---|---|---|",
    ]
    for i, (a, b, r) in enumerate(
        zip(speed["ours"], speed["transformers"], speed["ratios"])
    ):
        lines.append(f"| {i + 1} | {a:.1f} | {b:.1f} | {r:.2f}x |")
    lines.append(f"| median | | | {np.median(speed['ratios']):.2f}x |")
    step_ms = 1000 * 32 / float(np.median(speed["ours"]))
    keras_ms, fused_ms = optimizer_ms["Keras AdamW"], optimizer_ms["FusedAdamW"]
    lines += [
        "",
        "Optimizer step (one `apply_gradients` on the same batch's gradients, AdamW as "
        "`create_optimizer` sets it up: schedule, weight decay exclusions, global-norm "
        f"clipping; median of {f.rounds} interleaved rounds x 5; ours above uses FusedAdamW):",
        "",
        "| optimizer | ms per step | share of our training step |",
        "|---|---|---|",
        f"| Keras AdamW | {keras_ms:.1f} | {100 * keras_ms / step_ms:.0f}% |",
        f"| FusedAdamW | {fused_ms:.1f} | {100 * fused_ms / step_ms:.0f}% |",
        f"| FusedAdamW vs Keras AdamW | {keras_ms / fused_ms:.2f}x faster | |",
    ]
    command = " ".join(
        ["python", "-m", "benchmarks.finetune_throughput"] + sys.argv[1:]
    )
    lines += ["", f"Command: `{command}`"]
    if f.finetune_output_dir:
        results_path = os.path.join(f.finetune_output_dir, "eval_results.json")
        if os.path.exists(results_path):
            with open(results_path) as handle:
                results = json.load(handle)
            command_file = os.path.join(f.finetune_output_dir, "command.txt")
            run_command = (
                open(command_file).read().strip()
                if os.path.exists(command_file)
                else "?"
            )
            lines += [
                "",
                f"Dev accuracy (`dev.tsv`, {results['eval_examples']} sentences): "
                f"**{results['accuracy']:.4f}**"
                + (
                    f" after {results['global_step']} steps"
                    if "global_step" in results
                    else ""
                ),
                "",
                f"Command: `{run_command}`",
            ]
    benchmarks_file.publish(f.benchmarks_file, HEADING, "\n".join(lines), machine)
    return speed


def run(argv=None):
    """Console entry point (flags defined here, not at import)."""
    return command.run_with_registry(main, define_flags, argv)


if __name__ == "__main__":
    raise SystemExit(run())
