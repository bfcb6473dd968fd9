r"""Forward-pass speed of `BertBackbone` against keras-hub's, in one process.

Both backbones carry identical weights (ours is built from the keras-hub one by
`keras_bert_impl.convert.from_keras_hub`), so the run first checks that their
outputs agree, then times them in interleaved rounds: the load of a shared
machine drifts, and alternating the models within each round exposes them to
the same drift. Every round yields one speed ratio per peer; the report gives
the medians and the spread over rounds next to them.

With `--torch`, transformers' PyTorch `BertModel`, loaded from the same
weights, runs as a third peer (eagerly: XLA rows leave it out).

Examples:
    python -m benchmarks.backbone_forward --benchmarks_file=BENCHMARKS.md
    python -m benchmarks.backbone_forward --quick
    python -m benchmarks.backbone_forward --config=small --seq_length=256 --batch_sizes=8 --torch
"""

import dataclasses
import math
import os
import shlex
import statistics
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from keras_bert_impl.cli import command

from keras_bert_impl import BertBackbone
from keras_bert_impl import BertConfig
from keras_bert_impl.convert import from_keras_hub
from keras_bert_impl.convert import to_huggingface
from benchmarks import benchmarks_file

SECTION_HEADING = "## Backbone forward (CPU)"
OURS = "keras_bert_impl"
KERAS_HUB = "keras-hub"
TORCH = "transformers (torch)"


def define_flags(f):
    """Defined when the tool runs, so importing this module adds no flags."""
    flags.DEFINE_string(
        "config", "base", "BertConfig preset of both backbones.", flag_values=f
    )
    flags.DEFINE_integer(
        "seq_length", 128, "Sequence length of every batch.", flag_values=f
    )
    flags.DEFINE_list("batch_sizes", ["1", "16"], "Batch sizes to time.", flag_values=f)
    flags.DEFINE_list(
        "xla",
        ["off", "on"],
        "XLA settings to time: off (tf.function) and/or on.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "rounds", 7, "Timed rounds per batch size and XLA setting.", flag_values=f
    )
    flags.DEFINE_integer(
        "warmup", 1, "Untimed calls per model before the rounds.", flag_values=f
    )
    flags.DEFINE_float(
        "min_round_seconds",
        2.0,
        "Each model repeats its call within a round until about this long.",
        flag_values=f,
    )
    flags.DEFINE_bool(
        "torch", False, "Also time transformers' PyTorch BertModel.", flag_values=f
    )
    flags.DEFINE_integer(
        "torch_threads",
        0,
        "torch.set_num_threads for the PyTorch peer; 0 keeps torch's default.",
        flag_values=f,
    )
    flags.DEFINE_float(
        "max_abs_diff",
        1e-4,
        "Largest |output difference| to ours a peer may show; beyond it the peers "
        "compute different functions and the run stops.",
        flag_values=f,
    )
    flags.DEFINE_integer("seed", 0, "Seed of the weights and inputs.", flag_values=f)
    flags.DEFINE_bool(
        "quick",
        False,
        "Smoke test: the tiny preset, seq 32, batches 1 and 4, 3 short rounds.",
        flag_values=f,
    )
    benchmarks_file.define_flag(f)


@dataclasses.dataclass
class Timing:
    """One model at one batch size and XLA setting.

    Attributes:
        model: `OURS`, `KERAS_HUB` or `TORCH`.
        batch_size: sequences per call.
        xla: whether the call was XLA-compiled.
        wall_seconds: per call, one entry per round.
        cpu_seconds: process CPU time per call (all threads), one per round.
        speedups_wall: per round, this model's wall time over ours
            (> 1: ours is faster); empty for ours.
        speedups_cpu: the same ratio on CPU time.
        max_abs_diff: largest |Δ| to our outputs (valid positions of
            `sequence_output`, and `pooled_output`); None for ours.
    """

    model: str
    batch_size: int
    xla: bool
    wall_seconds: list
    cpu_seconds: list
    speedups_wall: list
    speedups_cpu: list
    max_abs_diff: float | None


def synthetic_inputs(batch_size, seq_length, config, seed=0):
    """A padded batch of random tokens, lengths between half and all of
    `seq_length` (the first row full), the second half of each in segment 1."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1, config.vocab_size, (batch_size, seq_length))
    lengths = rng.integers(max(1, seq_length // 2), seq_length + 1, batch_size)
    lengths[0] = seq_length
    positions = np.arange(seq_length)[None, :]
    padding_mask = positions < lengths[:, None]
    second_segment = min(1, config.type_vocab_size - 1)
    segment_ids = np.where(positions >= lengths[:, None] // 2, second_segment, 0)
    return {
        "token_ids": np.where(padding_mask, token_ids, 0).astype("int32"),
        "segment_ids": np.where(padding_mask, segment_ids, 0).astype("int32"),
        "padding_mask": padding_mask.astype("int32"),
    }


class _KerasPeer:
    """A Keras backbone called through `tf.function`, XLA on or off."""

    supports_xla = True

    def __init__(self, name, model):
        self.name = name
        self.model = model

    def prepare(self, inputs, xla):
        tensors = {k: tf.constant(v) for k, v in inputs.items()}
        # No Python control flow depends on tensor values: skip AutoGraph.
        forward = tf.function(
            lambda x: self.model(x, training=False), jit_compile=xla, autograph=False
        )
        return lambda: forward(tensors)

    @staticmethod
    def to_numpy(outputs):
        return {k: outputs[k].numpy() for k in ("sequence_output", "pooled_output")}

    @staticmethod
    def wait(outputs):
        # Reading a value back guarantees the computation has finished.
        outputs["pooled_output"].numpy()


class _TorchPeer:
    """transformers' `BertModel` in inference mode (eager PyTorch)."""

    supports_xla = False

    def __init__(self, ours, threads=0):
        import torch
        import transformers

        if threads:
            torch.set_num_threads(threads)
        self.name = TORCH
        self._torch = torch
        with tempfile.TemporaryDirectory() as directory:
            to_huggingface(ours, directory)
            # Same tanh GELU as keras-hub's; torch's fused op, not the Python
            # formula `gelu_new` that to_huggingface writes.
            self.model = transformers.BertModel.from_pretrained(
                directory, hidden_act="gelu_pytorch_tanh"
            ).eval()

    def prepare(self, inputs, xla):
        del xla  # Only called with XLA off.
        tensors = {
            "input_ids": self._torch.from_numpy(inputs["token_ids"].astype("int64")),
            "token_type_ids": self._torch.from_numpy(
                inputs["segment_ids"].astype("int64")
            ),
            "attention_mask": self._torch.from_numpy(
                inputs["padding_mask"].astype("int64")
            ),
        }

        def forward():
            with self._torch.inference_mode():
                return self.model(**tensors)

        return forward

    @staticmethod
    def to_numpy(outputs):
        return {
            "sequence_output": outputs.last_hidden_state.numpy(),
            "pooled_output": outputs.pooler_output.numpy(),
        }

    @staticmethod
    def wait(outputs):
        del outputs  # Eager CPU torch returns finished tensors.


def _keras_hub():
    try:
        import keras_hub
    except ImportError:
        raise ValueError(
            "python -m benchmarks.backbone_forward measures against keras-hub, which is not installed: "
            'pip install -e ".[peers]"'
        ) from None
    return keras_hub


def keras_hub_backbone(config):
    """keras-hub's `BertBackbone` with `config`'s shape (its GELU is tanh)."""
    return _keras_hub().models.BertBackbone(
        vocabulary_size=config.vocab_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size,
        dropout=config.hidden_dropout,
        max_sequence_length=config.max_position_embeddings,
        num_segments=config.type_vocab_size,
    )


def _max_abs_diff(ours, theirs, padding_mask):
    valid = padding_mask.astype(bool)
    sequence = np.abs(ours["sequence_output"] - theirs["sequence_output"])[valid]
    pooled = np.abs(ours["pooled_output"] - theirs["pooled_output"])
    return float(max(sequence.max(), pooled.max()))


def _time_calls(peer, forward, iterations):
    """Mean wall and process CPU seconds of one call over `iterations`."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        peer.wait(forward())
    return (
        (time.perf_counter() - wall) / iterations,
        (time.process_time() - cpu) / iterations,
    )


def _time_cell(peers, inputs, xla, rounds, warmup, min_round_seconds, tolerance):
    batch_size = len(inputs["token_ids"])
    peers = [p for p in peers if p.supports_xla or not xla]
    forwards = {p.name: p.prepare(inputs, xla) for p in peers}

    # The first call traces (and compiles) and doubles as the agreement check.
    reference = peers[0].to_numpy(forwards[peers[0].name]())
    diffs = {peers[0].name: None}
    for peer in peers[1:]:
        outputs = peer.to_numpy(forwards[peer.name]())
        diffs[peer.name] = _max_abs_diff(reference, outputs, inputs["padding_mask"])
        if diffs[peer.name] > tolerance:
            raise RuntimeError(
                f"{peer.name} differs from {peers[0].name} by "
                f"{diffs[peer.name]:.3g} > {tolerance:g} at batch {batch_size}, "
                f"XLA {'on' if xla else 'off'}: they do not compute the same "
                "function, so timing them against each other means nothing."
            )

    slowest = 0.0
    for peer in peers:
        for _ in range(warmup):
            slowest = max(slowest, _time_calls(peer, forwards[peer.name], 1)[0])
    iterations = max(1, math.ceil(min_round_seconds / max(slowest, 1e-9)))

    wall = {p.name: [] for p in peers}
    cpu = {p.name: [] for p in peers}
    for round_index in range(rounds):
        # Rotate who goes first so no model always runs right after another.
        shift = round_index % len(peers)
        for peer in peers[shift:] + peers[:shift]:
            w, c = _time_calls(peer, forwards[peer.name], iterations)
            wall[peer.name].append(w)
            cpu[peer.name].append(c)

    ours = peers[0].name
    return [
        Timing(
            model=p.name,
            batch_size=batch_size,
            xla=xla,
            wall_seconds=wall[p.name],
            cpu_seconds=cpu[p.name],
            speedups_wall=[]
            if p.name == ours
            else [t / o for t, o in zip(wall[p.name], wall[ours])],
            speedups_cpu=[]
            if p.name == ours
            else [t / o for t, o in zip(cpu[p.name], cpu[ours])],
            max_abs_diff=diffs[p.name],
        )
        for p in peers
    ]


def compare_backbones(
    config,
    seq_length=128,
    batch_sizes=(1, 16),
    xla_modes=(False, True),
    rounds=7,
    warmup=1,
    min_round_seconds=2.0,
    include_torch=False,
    torch_threads=0,
    max_abs_diff=1e-4,
    seed=0,
    log=print,
):
    """Times our `BertBackbone` against keras-hub's (and optionally torch's).

    Args:
        config: a `BertConfig`; keras-hub's backbone takes its shape, and ours
            is converted from that (so `hidden_act` is keras-hub's tanh GELU).
        seq_length: tokens per sequence.
        batch_sizes: batch sizes to time.
        xla_modes: booleans, whether `tf.function` compiles with XLA.
        rounds: timed rounds per batch size and XLA setting.
        warmup: untimed calls per model after the first (tracing) call.
        min_round_seconds: each model repeats its call within a round until it
            has run about this long (at least once).
        include_torch: also time transformers' `BertModel` with the same weights.
        torch_threads: `torch.set_num_threads` for it; 0 keeps torch's default.
        max_abs_diff: largest output difference a peer may show before the run
            stops with an error.
        seed: seed of the weights and inputs.
        log: called with a progress line per timed cell.

    Returns:
        A list of `Timing`, ours first within each batch size and XLA setting.

    Raises:
        ValueError: for a sequence length the config cannot take.
        RuntimeError: if a peer's outputs differ from ours by more than
            `max_abs_diff`.
    """
    if not 1 <= seq_length <= config.max_position_embeddings:
        raise ValueError(
            f"seq_length must be in [1, max_position_embeddings="
            f"{config.max_position_embeddings}], got {seq_length}."
        )
    keras.utils.set_random_seed(seed)
    hub = keras_hub_backbone(config)
    ours = from_keras_hub(hub, BertBackbone)
    peers = [_KerasPeer(OURS, ours), _KerasPeer(KERAS_HUB, hub)]
    if include_torch:
        peers.append(_TorchPeer(ours, torch_threads))

    results = []
    for batch_size in batch_sizes:
        inputs = synthetic_inputs(batch_size, seq_length, config, seed)
        for xla in xla_modes:
            cell = _time_cell(
                peers, inputs, xla, rounds, warmup, min_round_seconds, max_abs_diff
            )
            results.extend(cell)
            log(
                f"batch {batch_size}, XLA {'on' if xla else 'off'}: "
                + ", ".join(
                    f"{t.model} {1e3 * statistics.median(t.wall_seconds):.1f} ms"
                    for t in cell
                )
            )
    return results


def _ratio_text(ratios):
    if not ratios:
        return "—"
    return f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"


def markdown_table(results):
    """The timings as a markdown table, one row per model and setting."""
    lines = [
        (
            "| batch | XLA | model | median ms / call | min–max ms | sequences / s "
            "| ours' speed-up, wall (min–max) | ours' speed-up, CPU time (min–max) "
            "| max abs Δ to ours |"
        ),
        "|---:|:---:|:---|---:|---:|---:|---:|---:|---:|",
    ]
    for t in results:
        median = statistics.median(t.wall_seconds)
        diff = "—" if t.max_abs_diff is None else f"{t.max_abs_diff:.1e}"
        lines.append(
            f"| {t.batch_size} | {'on' if t.xla else 'off'} | {t.model} "
            f"| {1e3 * median:.1f} "
            f"| {1e3 * min(t.wall_seconds):.1f}–{1e3 * max(t.wall_seconds):.1f} "
            f"| {t.batch_size / median:.1f} | {_ratio_text(t.speedups_wall)} "
            f"| {_ratio_text(t.speedups_cpu)} | {diff} |"
        )
    return "\n".join(lines)


def _environment(include_torch):
    versions = [
        f"tensorflow {tf.__version__}",
        f"keras {keras.__version__}",
        f"keras-hub {_keras_hub().__version__}",
    ]
    if include_torch:
        import torch
        import transformers

        versions += [
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
            f"transformers {transformers.__version__}",
        ]
    return f"{', '.join(versions)}; {os.cpu_count()} CPUs"


def report_markdown(results, command, settings, load_before, load_after):
    """The section body: what was run, the table, and how to read it."""
    return "\n".join(
        [
            "Forward pass (`training=False`) of our `BertBackbone` and keras-hub's "
            "`BertBackbone` with identical weights (ours converted by "
            "`from_keras_hub`), fp32, on CPU, inside `tf.function` with XLA off "
            "or on (`jit_compile`)"
            + (
                "; transformers' PyTorch `BertModel` with the same weights runs "
                "eagerly as a third peer (XLA-off rows only)"
                if settings["torch"]
                else ""
            )
            + ".",
            "",
            "```",
            command,
            "```",
            "",
            (
                f"Config `{settings['config']}`, seq {settings['seq_length']}, "
                f"{settings['rounds']} interleaved rounds per row (models "
                "alternate within each round; the one going first rotates). "
                f"{_environment(settings['torch'])}; 1-minute load average "
                f"{load_before:.2f} before, {load_after:.2f} after (the machine "
                "is shared, so absolute times drift: read the ratios)."
            ),
            "",
            markdown_table(results),
            "",
            (
                "*ours' speed-up* = the peer's time / our time within the same "
                "round, median over rounds (min–max in brackets): above 1 means "
                "ours is faster. The CPU-time ratio counts the process's CPU "
                "seconds (all threads), which other users' load disturbs less "
                "than wall time. *max abs Δ* is over valid positions of "
                "`sequence_output` and over `pooled_output`."
            ),
        ]
    )


def _positive_ints(flag, values):
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        numbers = []
    if not numbers or min(numbers) < 1:
        raise ValueError(
            f"--{flag} must be a comma-separated list of positive integers, "
            f"got {','.join(values)!r}."
        )
    return numbers


def _xla_modes(values):
    modes = {"off": False, "on": True}
    unknown = [v for v in values if v not in modes]
    if not values or unknown:
        raise ValueError(
            f"--xla takes a comma-separated list of 'off' and 'on', got "
            f"{','.join(values)!r}."
        )
    return [modes[v] for v in values]


def settings_from_flags(flag_values):
    """Validated keyword arguments for `compare_backbones` plus the config.

    Raises:
        ValueError: naming the flag that holds a value it cannot take.
    """
    if flag_values.quick:
        config_name, seq_length, batch_sizes = "tiny", 32, [1, 4]
        rounds, min_round_seconds = 3, 0.2
    else:
        config_name, seq_length = flag_values.config, flag_values.seq_length
        batch_sizes = _positive_ints("batch_sizes", flag_values.batch_sizes)
        rounds, min_round_seconds = flag_values.rounds, flag_values.min_round_seconds
    if rounds < 1:
        raise ValueError(f"--rounds must be at least 1, got {rounds}.")
    if flag_values.torch_threads < 0:
        raise ValueError(
            f"--torch_threads must be at least 0, got {flag_values.torch_threads}."
        )
    if flag_values.warmup < 0:
        raise ValueError(f"--warmup must be at least 0, got {flag_values.warmup}.")
    if min_round_seconds < 0:
        raise ValueError(
            f"--min_round_seconds must be at least 0, got {min_round_seconds}."
        )
    try:
        config = BertConfig.preset(config_name)
    except ValueError as error:
        raise ValueError(f"--config: {error}") from error
    if not 1 <= seq_length <= config.max_position_embeddings:
        raise ValueError(
            f"--seq_length must be in [1, {config.max_position_embeddings}] "
            f"(max_position_embeddings of '{config_name}'), got {seq_length}."
        )
    return {
        "config_name": config_name,
        "config": config,
        "seq_length": seq_length,
        "batch_sizes": batch_sizes,
        "xla_modes": _xla_modes(flag_values.xla),
        "rounds": rounds,
        "warmup": flag_values.warmup,
        "min_round_seconds": min_round_seconds,
        "include_torch": flag_values.torch,
        "torch_threads": flag_values.torch_threads,
        "max_abs_diff": flag_values.max_abs_diff,
        "seed": flag_values.seed,
    }


def main(flag_values):
    try:
        settings = settings_from_flags(flag_values)
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    command = shlex.join(["python", "-m", "benchmarks.backbone_forward"] + sys.argv[1:])
    config_name = settings.pop("config_name")
    machine = benchmarks_file.machine_line()
    load_before = os.getloadavg()[0]
    results = compare_backbones(**settings)
    load_after = os.getloadavg()[0]
    body = report_markdown(
        results,
        command,
        {
            "config": config_name,
            "seq_length": settings["seq_length"],
            "rounds": settings["rounds"],
            "torch": settings["include_torch"],
        },
        load_before,
        load_after,
    )
    benchmarks_file.publish(flag_values.benchmarks_file, SECTION_HEADING, body, machine)


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)


if __name__ == "__main__":
    raise SystemExit(run())
