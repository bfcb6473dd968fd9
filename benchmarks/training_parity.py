"""Training parity with Hugging Face transformers (`python -m benchmarks.training_parity`).

From the same initial weights (ours, exported with `to_huggingface`), the
same batches, dropout off, and the same optimizer recipe (AdamW, weight
decay 0.01 except LayerNorm and biases, epsilon 1e-6, linear warm-up then
linear decay, global-norm clipping 1.0), our trainer and a plain PyTorch loop
over transformers' `BertForPreTraining` (or `BertForSequenceClassification`)
must report the same loss at every step. Batches carry padding and padded
prediction slots (weight 0), so masking, loss weighting, the schedule and
the decay exclusions are all exercised.

    python -m benchmarks.training_parity --steps=120 --write_benchmarks
"""

import os
import shlex
import sys
import tempfile

import numpy as np

from keras_bert_impl.cli import command

BENCHMARKS_HEADING = "## Training parity with transformers (CPU)"


def _batches(kind, num_steps, batch, seq, predictions, vocab_size, num_classes, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num_steps):
        lengths = rng.integers(seq // 2, seq + 1, size=batch)
        ids = rng.integers(5, vocab_size, size=(batch, seq)).astype("int32")
        mask = (np.arange(seq)[None, :] < lengths[:, None]).astype("int32")
        segments = (np.arange(seq)[None, :] >= (lengths // 2)[:, None]) * mask
        ids[:, 0] = 2
        ids[np.arange(batch), lengths - 1] = 3
        ids = ids * mask
        x = {
            "token_ids": ids,
            "segment_ids": segments.astype("int32"),
            "padding_mask": mask,
        }
        if kind == "pretraining":
            positions = np.zeros((batch, predictions), "int32")
            weights = np.zeros((batch, predictions), "float32")
            targets = np.zeros((batch, predictions), "int32")
            for row in range(batch):
                count = int(rng.integers(1, predictions + 1))  # the rest are padding
                chosen = rng.choice(
                    np.arange(1, lengths[row] - 1), size=count, replace=False
                )
                positions[row, :count] = np.sort(chosen)
                weights[row, :count] = 1.0
                # Learnable targets (the tokens at those positions), so the
                # loss falls and the comparison covers a real descent.
                targets[row, :count] = ids[row, positions[row, :count]]
            x["mask_positions"] = positions
            y = {
                "masked_lm_ids": targets,
                "masked_lm_weights": weights,
                "next_sentence_labels": (ids[:, 1] % 2).astype("int32"),
            }
        else:
            y = (ids[:, 1] % num_classes).astype("int32")
        out.append((x, y))
    return out


def _torch_inputs(kind, x, y):
    import torch

    inputs = {
        "input_ids": torch.tensor(x["token_ids"], dtype=torch.long),
        "token_type_ids": torch.tensor(x["segment_ids"], dtype=torch.long),
        "attention_mask": torch.tensor(x["padding_mask"], dtype=torch.long),
    }
    if kind == "pretraining":
        labels = np.full(x["token_ids"].shape, -100, np.int64)
        for row in range(labels.shape[0]):
            real = y["masked_lm_weights"][row] > 0
            labels[row, x["mask_positions"][row][real]] = y["masked_lm_ids"][row][real]
        inputs["labels"] = torch.tensor(labels)
        inputs["next_sentence_label"] = torch.tensor(
            y["next_sentence_labels"], dtype=torch.long
        )
    else:
        inputs["labels"] = torch.tensor(y, dtype=torch.long)
    return inputs


def _transformers_losses(kind, directory, batches, settings):
    import torch
    import transformers

    torch.manual_seed(0)
    cls = (
        transformers.BertForPreTraining
        if kind == "pretraining"
        else transformers.BertForSequenceClassification
    )
    model = cls.from_pretrained(directory, attn_implementation="eager")
    model.train()  # dropout probabilities are 0 in the config
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        excluded = name.endswith("bias") or "LayerNorm" in name
        (no_decay if excluded else decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": settings["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=settings["learning_rate"],
        betas=(0.9, 0.999),
        eps=settings["epsilon"],
    )
    schedule = transformers.get_linear_schedule_with_warmup(
        optimizer, settings["warmup_steps"], settings["num_steps"]
    )
    losses = []
    for x, y in batches:
        loss = model(**_torch_inputs(kind, x, y)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    return np.array(losses)


def _our_losses(kind, model, batches, settings, output_dir):
    import tensorflow as tf

    from keras_bert_impl.training import Trainer, TrainerSettings, create_optimizer

    def dataset():
        xs = [b[0] for b in batches]
        ys = [b[1] for b in batches]
        stacked_x = {k: np.stack([x[k] for x in xs]) for k in xs[0]}
        stacked_y = (
            {k: np.stack([y[k] for y in ys]) for k in ys[0]}
            if isinstance(ys[0], dict)
            else np.stack(ys)
        )
        # One element per step, already batched.
        return tf.data.Dataset.from_tensor_slices((stacked_x, stacked_y)).repeat()

    trainer = Trainer(
        tf.distribute.get_strategy(),
        lambda: model,
        lambda: create_optimizer(
            settings["learning_rate"],
            settings["num_steps"],
            settings["warmup_steps"],
            weight_decay=settings["weight_decay"],
            epsilon=settings["epsilon"],
        ),
        TrainerSettings(
            output_dir=output_dir,
            num_train_steps=settings["num_steps"],
            global_batch_size=settings["batch_size"],
            steps_per_execution=10,
            save_checkpoints_steps=0,
            tensorboard=False,
            verbose=0,
        ),
    )
    history = trainer.train(dataset)
    return np.array([loss for row in history.rows for loss in row["step_losses"]])


def compare_training(
    kind="pretraining",
    num_steps=100,
    batch_size=8,
    seq_length=32,
    max_predictions=6,
    num_classes=3,
    learning_rate=None,
    warmup_steps=10,
    weight_decay=0.01,
    epsilon=1e-6,
    config=None,
    seed=0,
):
    """Per-step losses of our trainer and of transformers on the same run.

    Args:
        kind: `pretraining` (BertPretrainer vs BertForPreTraining) or
            `classifier` (BertClassifier vs BertForSequenceClassification).
        learning_rate: peak rate; default 1e-3 for pretraining, 1e-4 (a
            fine-tuning rate) for the classifier.
        config: a `BertConfig` (dropout is forced to 0); default: 2 layers,
            hidden 64, vocabulary 128.

    Returns:
        dict with `ours`, `transformers` (per-step losses) and
        `max_relative_difference`.
    """
    import keras

    from keras_bert_impl import BertConfig
    from keras_bert_impl.convert import to_huggingface
    from keras_bert_impl.models import BertClassifier, BertPretrainer

    if kind not in ("pretraining", "classifier"):
        raise ValueError(f"kind must be 'pretraining' or 'classifier', got {kind!r}.")
    config = (
        config
        or BertConfig(
            vocab_size=128,
            hidden_size=64,
            num_layers=2,
            num_heads=4,
            intermediate_size=128,
            max_position_embeddings=64,
        )
    ).replace(hidden_dropout=0.0, attention_dropout=0.0)
    if learning_rate is None:
        learning_rate = 1e-3 if kind == "pretraining" else 1e-4
    keras.utils.set_random_seed(seed)
    if kind == "pretraining":
        model = BertPretrainer(config)
    else:
        model = BertClassifier(config, num_classes=num_classes, dropout=0.0)
    model.build()
    settings = dict(
        learning_rate=learning_rate,
        num_steps=num_steps,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        epsilon=epsilon,
        batch_size=batch_size,
    )
    batches = _batches(
        kind,
        num_steps,
        batch_size,
        seq_length,
        max_predictions,
        config.vocab_size,
        num_classes,
        seed + 1,
    )
    with tempfile.TemporaryDirectory() as directory:
        to_huggingface(model, os.path.join(directory, "hf"))
        theirs = _transformers_losses(
            kind, os.path.join(directory, "hf"), batches, settings
        )
        ours = _our_losses(
            kind, model, batches, settings, os.path.join(directory, "run")
        )
    relative = np.abs(ours - theirs) / np.abs(theirs)
    return {
        "ours": ours,
        "transformers": theirs,
        "max_relative_difference": float(relative.max()),
        "first_loss": float(theirs[0]),
        "last_loss": float(theirs[-1]),
    }


def _section(results, command):
    lines = [
        "Same initial weights (ours → `to_huggingface`), same batches (padding and padded "
        "prediction slots included), dropout 0, AdamW (decay 0.01 except LayerNorm/bias, "
        "eps 1e-6; peak rate 1e-3 pretraining, 1e-4 classifier), linear warm-up 10 steps "
        "then linear decay, global-norm clip 1.0; tiny config (2 layers, hidden 64); "
        "transformers "
        + _versions()
        + " in a plain PyTorch loop; our trainer on TF/Keras.",
        "",
        "| model | steps | loss step 1 → last | max relative difference over all steps |",
        "|---|---|---|---|",
    ]
    for kind, r in results.items():
        lines.append(
            f"| {kind} | {len(r['ours'])} | {r['first_loss']:.4f} → {r['last_loss']:.4f} "
            f"| {r['max_relative_difference']:.2e} |"
        )
    lines += ["", "Command: `" + command + "`"]
    return "\n".join(lines)


def _versions():
    import torch
    import transformers

    return f"{transformers.__version__} / torch {torch.__version__}"


def define_flags(f):
    """Defines the tool's flags into the registry `f`."""
    from absl import flags

    flags.DEFINE_integer("steps", 120, "Training steps compared.", flag_values=f)
    from benchmarks import benchmarks_file

    benchmarks_file.define_flag(f)


def main(f):
    from benchmarks import benchmarks_file

    machine = benchmarks_file.machine_line()
    results = {}
    for kind in ("pretraining", "classifier"):
        results[kind] = compare_training(kind, num_steps=f.steps)
        print(
            f"{kind}: {f.steps} steps, loss {results[kind]['first_loss']:.4f} → "
            f"{results[kind]['last_loss']:.4f}, max relative difference "
            f"{results[kind]['max_relative_difference']:.2e}"
        )
    command = shlex.join(["python", "-m", "benchmarks.training_parity", *sys.argv[1:]])
    body = _section(results, command)
    benchmarks_file.publish(f.benchmarks_file, BENCHMARKS_HEADING, body, machine)
    return results


def run(argv=None):
    """Console entry point (flags defined here, not at import)."""
    return command.run_with_registry(main, define_flags, argv)


if __name__ == "__main__":
    raise SystemExit(run())
