"""The layers and models use keras.ops only: the same checkpoint must give the
same outputs on the JAX backend (how the model runs on JAX-only machines)."""

import textwrap

import numpy as np
import pytest

from keras_bert_impl import BertBackbone
from keras_bert_impl.convert import from_huggingface
from tests.model_helpers import max_abs_diff
from tests.model_helpers import real_checkpoint_dir
from tests.model_helpers import run_on_jax
from tests.model_helpers import tiny_inputs

pytest.importorskip("jax", reason="jax (test extra) is not installed")

_JAX_SCRIPT = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np
    assert keras.backend.backend() == "jax", keras.backend.backend()
    from keras_bert_impl import BertBackbone
    from keras_bert_impl.convert import from_huggingface
    inputs = dict(np.load(sys.argv[2]))
    model = from_huggingface(sys.argv[1], BertBackbone)
    out = model(inputs)
    assert "tensorflow" not in sys.modules, "the model pulled in TensorFlow"
    np.savez(sys.argv[3], **{k: np.asarray(v) for k, v in out.items()})
    """
)


def test_backbone_matches_between_jax_and_tensorflow(tmp_path):
    checkpoint = real_checkpoint_dir()
    inputs = tiny_inputs(batch=4, length=24, vocab_size=30522, seed=7)
    np.savez(tmp_path / "inputs.npz", **inputs)
    run_on_jax(_JAX_SCRIPT, checkpoint, tmp_path / "inputs.npz", tmp_path / "jax.npz")
    jax_out = np.load(tmp_path / "jax.npz")
    tf_out = from_huggingface(checkpoint, BertBackbone)(inputs)
    mask = inputs["padding_mask"]
    assert (
        max_abs_diff(jax_out["sequence_output"], tf_out["sequence_output"], mask) < 1e-5
    )
    assert max_abs_diff(jax_out["pooled_output"], tf_out["pooled_output"]) < 1e-5
