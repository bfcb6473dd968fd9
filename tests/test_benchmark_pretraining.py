"""benchmarks.pretraining_throughput: its batches are valid pretraining batches and
bad flags are one-line errors (the measurement itself is in BENCHMARKS.md)."""

import numpy as np
import pytest

from benchmarks import pretraining_throughput
from model_helpers import tiny_config


def test_synthetic_batches_mask_distinct_real_positions():
    x, y = pretraining_throughput.synthetic_batches(tiny_config(), 4, 16, 5, 3)
    assert x["token_ids"].shape == (12, 16) and y["masked_lm_ids"].shape == (12, 5)
    positions = x["mask_positions"]
    lengths = x["padding_mask"].sum(1)
    assert (lengths >= 8).all() and (positions >= 1).all()
    assert (positions < lengths[:, None]).all()  # real tokens, never [CLS]
    assert all(len(set(row)) == 5 for row in positions)
    np.testing.assert_array_equal(
        np.take_along_axis(x["token_ids"], positions, 1), y["masked_lm_ids"]
    )
    assert (x["token_ids"][x["padding_mask"] == 0] == 0).all()


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--max_predictions_per_seq=200", "--max_predictions_per_seq=200 must be"),
        ("--rounds=0", "--rounds must be >= 1"),
    ],
)
def test_bad_flags_are_one_line_errors(flag, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        pretraining_throughput.run(["pretraining_throughput", flag])
    assert exit_info.value.code == 1
    assert message in capsys.readouterr().err
