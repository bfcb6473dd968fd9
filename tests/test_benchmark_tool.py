"""The backbone benchmark tool on a tiny config: it runs, agrees, reports
ratios. Times themselves are never asserted (the machine is shared)."""

import math
import re
import types

import numpy as np
import pytest

from benchmarks import backbone_forward
from keras_bert_impl.compression import cpu_features
from benchmarks.benchmarks_file import machine_line, replace_section
from tests.model_helpers import tiny_config


def _quiet(_):
    return None


def _compare(**overrides):
    kwargs = {
        "seq_length": 8,
        "batch_sizes": (2,),
        "xla_modes": (False, True),
        "rounds": 2,
        "warmup": 0,
        "min_round_seconds": 0.0,
        "log": _quiet,
    }
    kwargs.update(overrides)
    return backbone_forward.compare_backbones(tiny_config(), **kwargs)


def test_compare_backbones_times_both_models_and_reports_ratios():
    results = _compare()

    cells = [(t.batch_size, t.xla, t.model) for t in results]
    assert cells == [
        (batch, xla, model)
        for batch in (2,)
        for xla in (False, True)
        for model in (backbone_forward.OURS, backbone_forward.KERAS_HUB)
    ]
    for timing in results:
        assert len(timing.wall_seconds) == len(timing.cpu_seconds) == 2
        assert all(t > 0 for t in timing.wall_seconds)
        if timing.model == backbone_forward.OURS:
            assert timing.speedups_wall == timing.speedups_cpu == []
            assert timing.max_abs_diff is None
        else:
            assert len(timing.speedups_wall) == len(timing.speedups_cpu) == 2
            assert all(r > 0 and math.isfinite(r) for r in timing.speedups_wall)
            # Same weights, same function: the agreement check really ran.
            assert timing.max_abs_diff <= 1e-5

    table = backbone_forward.markdown_table(results)
    assert len(table.splitlines()) == 2 + len(results)
    assert "| 2 | on | keras-hub |" in table
    assert "× (" in table


def test_torch_peer_runs_with_xla_off_only():
    pytest.importorskip("transformers")
    results = _compare(include_torch=True, torch_threads=1)

    torch_rows = [t for t in results if t.model == backbone_forward.TORCH]
    assert [t.xla for t in torch_rows] == [False]
    assert torch_rows[0].max_abs_diff <= 1e-5
    assert len(torch_rows[0].speedups_wall) == 2


def test_a_peer_computing_something_else_stops_the_run(monkeypatch):
    convert = backbone_forward.from_keras_hub

    def perturbed(backbone, model_cls):
        model = convert(backbone, model_cls)
        kernel = model.pooled_dense.kernel
        noise = np.random.default_rng(0).normal(size=kernel.shape)
        kernel.assign(kernel.numpy() + noise.astype("float32"))
        return model

    monkeypatch.setattr(backbone_forward, "from_keras_hub", perturbed)
    with pytest.raises(RuntimeError, match="keras-hub differs from keras_bert_impl"):
        _compare(batch_sizes=(1,), xla_modes=(False,))


def test_sequence_longer_than_the_config_is_refused():
    with pytest.raises(ValueError, match="max_position_embeddings=32"):
        _compare(seq_length=33)


def _flag_values(**overrides):
    values = {
        "quick": False,
        "config": "base",
        "seq_length": 128,
        "batch_sizes": ["1", "16"],
        "xla": ["off", "on"],
        "rounds": 7,
        "warmup": 1,
        "min_round_seconds": 2.0,
        "torch": False,
        "torch_threads": 0,
        "max_abs_diff": 1e-4,
        "seed": 0,
    }
    values.update(overrides)
    return types.SimpleNamespace(**values)


def test_settings_from_flags_defaults_and_quick():
    settings = backbone_forward.settings_from_flags(_flag_values())
    assert settings["config"].hidden_size == 768
    assert settings["batch_sizes"] == [1, 16]
    assert settings["xla_modes"] == [False, True]

    quick = backbone_forward.settings_from_flags(_flag_values(quick=True))
    assert quick["config_name"] == "tiny"
    assert quick["seq_length"] == 32


@pytest.mark.parametrize(
    "overrides, flag",
    [
        ({"batch_sizes": ["1", "x"]}, "--batch_sizes"),
        ({"batch_sizes": ["0"]}, "--batch_sizes"),
        ({"xla": ["maybe"]}, "--xla"),
        ({"config": "huge"}, "--config"),
        ({"seq_length": 513}, "--seq_length"),
        ({"rounds": 0}, "--rounds"),
        ({"warmup": -1}, "--warmup"),
        ({"min_round_seconds": -1.0}, "--min_round_seconds"),
        ({"torch_threads": -2}, "--torch_threads"),
    ],
)
def test_bad_flags_name_the_flag(overrides, flag):
    with pytest.raises(ValueError, match=flag):
        backbone_forward.settings_from_flags(_flag_values(**overrides))


def test_main_writes_its_section_and_keeps_the_others(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Other\n\nother figures\n")
    backbone_forward.run(
        [
            "backbone_forward",
            "--quick",
            "--xla=off",
            "--batch_sizes=1",
            f"--benchmarks_file={path}",
        ]
    )

    text = path.read_text()
    assert "## Other\n\nother figures\n" in text
    assert text.count(backbone_forward.SECTION_HEADING) == 1
    assert "python -m benchmarks.backbone_forward" in text
    assert "| 4 | off | keras-hub |" in text
    # The section's first line: the machine it ran on.
    heading_and_machine = text.split(backbone_forward.SECTION_HEADING + "\n\n")[1]
    assert heading_and_machine.startswith("Machine: " + cpu_features.summary())


def test_replace_section_appends_then_replaces_in_place(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    machine = "Machine: a CPU"
    replace_section(str(path), "## A", "first", machine)
    path.write_text(path.read_text() + "\n## B\n\nkept\n")

    replace_section(str(path), "## A", "second\n| table |", "Machine: another CPU")
    replace_section(str(path), "## C", "third", machine)

    assert path.read_text() == (
        "# Benchmarks\n\n## A\n\nMachine: another CPU\n\nsecond\n| table |\n\n"
        "## B\n\nkept\n\n## C\n\nMachine: a CPU\n\nthird\n"
    )


def test_replace_section_refuses_a_heading_that_is_not_a_section():
    with pytest.raises(ValueError, match="'## '"):
        replace_section("unused.md", "# Title", "body", machine_line())
    for machine in ("a CPU", "Machine: a CPU\nmore"):
        with pytest.raises(ValueError, match="one line from machine_line"):
            replace_section("unused.md", "## A", "body", machine)


def test_machine_line_names_the_cpu_its_isa_features_cores_and_load(monkeypatch):
    line = machine_line()
    assert "\n" not in line and line.startswith("Machine: " + cpu_features.summary())
    assert re.search(r"; \d+ CPU cores; load average [\d.]+ / [\d.]+ / [\d.]+ ", line)
    # Capped at AVX2, an AVX-512 machine says so.
    capped = cpu_features.parse(
        "model name : Xeon\nflags : avx2 avx512f avx512bw avx512vl avx512dq\n",
        {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    )
    monkeypatch.setattr(cpu_features, "detect", lambda: capped)
    assert machine_line().startswith(
        "Machine: Xeon; avx2 (no avx512f avx512_vnni avx_vnni avx512_bf16 amx); "
        "ONEDNN_MAX_CPU_ISA=AVX2; "
    )


def test_synthetic_inputs_pad_after_the_real_tokens():
    inputs = backbone_forward.synthetic_inputs(4, 10, tiny_config(), seed=1)
    mask = inputs["padding_mask"].astype(bool)
    assert mask[0].all()
    # Real tokens first, then padding: the mask never turns back on.
    assert (np.diff(inputs["padding_mask"], axis=1) <= 0).all()
    assert (inputs["token_ids"][mask] > 0).all()
    assert (inputs["token_ids"][~mask] == 0).all()
    assert set(np.unique(inputs["segment_ids"])) <= {0, 1}
