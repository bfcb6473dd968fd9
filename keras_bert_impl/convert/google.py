"""Import original google-research/bert TF1 checkpoints (`bert_model.ckpt`)."""

import os

import numpy as np

from keras_bert_impl.config import BertConfig
from keras_bert_impl.convert.weight_map import load_canonical

# Heads whose Google names sit outside the `bert/` and `cls/` scopes:
# run_classifier.py's classifier and run_squad.py's span head.
_SPECIAL = {
    "output_weights": "classifier/kernel",
    "output_bias": "classifier/bias",
    "cls/squad/output_weights": "qa_outputs/kernel",
    "cls/squad/output_bias": "qa_outputs/bias",
}
# Stored [out, in]; Keras kernels are [in, out].
_TRANSPOSED = (
    "cls/seq_relationship/output_weights",
    "output_weights",
    "cls/squad/output_weights",
)


def _is_training_state(name):
    # Adam slots, the step counter and other bookkeeping saved beside the weights.
    return (
        name == "global_step"
        or name.endswith(("/adam_m", "/adam_v"))
        or name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")
    )


def from_google_checkpoint(checkpoint_prefix, config_path, model_cls, **kwargs):
    """Builds `model_cls` from a TF1 BERT checkpoint and its `bert_config.json`.

    Args:
        checkpoint_prefix: e.g. `uncased_L-12_H-768_A-12/bert_model.ckpt`.
        config_path: the `bert_config.json` beside it (Google's "gelu" is the
            tanh approximation, and is read as `gelu_approximate`).
        model_cls: `BertBackbone` or a task model; `BertPretrainer` loads the
            `cls/` heads of a pretraining checkpoint.
        **kwargs: passed to `model_cls`.

    Raises:
        ValueError: listing unknown, missing or mis-shaped tensors.
    """
    import tensorflow as tf

    checkpoint_prefix = os.fspath(checkpoint_prefix)
    config = BertConfig.from_json_file(config_path)
    try:
        reader = tf.train.load_checkpoint(checkpoint_prefix)
    except (tf.errors.NotFoundError, ValueError) as e:
        raise FileNotFoundError(
            f"No TensorFlow checkpoint at {checkpoint_prefix} (expected "
            f"{checkpoint_prefix}.index and .data-* files): {e}"
        ) from None
    tensors = {}
    for name in reader.get_variable_to_shape_map():
        if _is_training_state(name):
            continue
        value = np.asarray(reader.get_tensor(name), dtype=np.float32)
        if name in _TRANSPOSED:
            value = value.T
        canonical = _SPECIAL.get(
            name, name[len("bert/") :] if name.startswith("bert/") else name
        )
        tensors[canonical] = value
    model = model_cls(config, **kwargs)
    load_canonical(model, tensors, checkpoint_prefix)
    return model
