"""Our trainer against transformers' PyTorch training on the same run
(the full 120-step comparison is `python -m benchmarks.training_parity`, in BENCHMARKS.md)."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from benchmarks.training_parity import compare_training  # noqa: E402


@pytest.mark.parametrize("kind", ["pretraining", "classifier"])
def test_per_step_losses_match_transformers(kind):
    result = compare_training(kind, num_steps=25)
    assert len(result["ours"]) == len(result["transformers"]) == 25
    assert result["max_relative_difference"] < 1e-3
    if kind == "pretraining":  # learnable targets: a real descent is compared
        assert result["last_loss"] < result["first_loss"] - 0.1
