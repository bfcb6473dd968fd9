"""Checks on the dict of tensors every BERT model takes.

What is checked where:
- always (shapes are known when a model is called or traced): the dict's keys,
  integer/bool dtypes, rank 2, equal shapes, and a static sequence length
  within `max_position_embeddings`;
- only when the values are concrete (eager calls, numpy inputs): token ids in
  `[0, vocab_size)`, segment ids in `[0, type_vocab_size)`, mask positions in
  `[0, seq_length)`. Inside `tf.function`/`jit` the values are unknown;
  TensorFlow's CPU gather then fails on an out-of-range id with
  InvalidArgumentError, while GPUs and TPUs return zeros silently, so clean
  ids upstream (the package's tokenizer never produces an out-of-range id).
"""

import numpy as np
from keras import backend

REQUIRED_KEYS = ("token_ids",)
OPTIONAL_KEYS = ("segment_ids", "padding_mask")


class BertInputError(ValueError):
    """An input that does not fit the model: names the input and the limit.

    Keras re-raises errors from `call()` wrapped in its own context ("Exception
    encountered when calling ...", ANSI bold, the arguments); it leaves alone
    an error that already carries its marker, so the user's first line is ours.
    """

    _keras_call_info_injected = True


def _concrete_value(tensor):
    """The tensor as numpy, or None while it is symbolic (traced)."""
    try:
        return np.asarray(tensor)
    except Exception:  # symbolic tensors refuse conversion; any reason will do
        return None


def _check_range(name, tensor, upper, what):
    value = _concrete_value(tensor)
    if value is None or value.size == 0:
        return
    low, high = int(value.min()), int(value.max())
    if low < 0 or high >= upper:
        bad = low if low < 0 else high
        raise BertInputError(
            f"Input '{name}' holds {bad}, outside [0, {upper}): {what}."
        )


def validate_inputs(inputs, config, extra_keys=()):
    """Raises ValueError naming the input and the limit it breaks.

    Args:
        inputs: the model's input dict.
        config: the model's `BertConfig`.
        extra_keys: further int keys the model accepts (e.g. `mask_positions`).
    """
    allowed = REQUIRED_KEYS + OPTIONAL_KEYS + tuple(extra_keys)
    if not isinstance(inputs, dict):
        raise BertInputError(
            f"BERT models take a dict with keys {allowed}; got {type(inputs).__name__}."
        )
    missing = [k for k in REQUIRED_KEYS + tuple(extra_keys) if k not in inputs]
    unknown = sorted(set(inputs) - set(allowed))
    if missing or unknown:
        raise BertInputError(
            f"Input dict keys must be {allowed} (only segment_ids and padding_mask "
            f"are optional); missing {missing}, unknown {unknown}."
        )
    token_shape = tuple(inputs["token_ids"].shape)
    for name in allowed:
        if name not in inputs:
            continue
        tensor = inputs[name]
        dtype = backend.standardize_dtype(tensor.dtype)
        if not (dtype.startswith("int") or dtype.startswith("uint") or dtype == "bool"):
            raise BertInputError(
                f"Input '{name}' must be an integer tensor, got dtype {dtype}."
            )
        if len(tensor.shape) != 2:
            raise BertInputError(
                f"Input '{name}' must have rank 2 [batch, length], got shape "
                f"{tuple(tensor.shape)}."
            )
        if name in OPTIONAL_KEYS and not _same_shape(tensor.shape, token_shape):
            raise BertInputError(
                f"Input '{name}' has shape {tuple(tensor.shape)} but 'token_ids' "
                f"has shape {token_shape}; they must match."
            )
    seq_length = token_shape[1]
    if seq_length is not None and seq_length > config.max_position_embeddings:
        raise BertInputError(
            f"Input 'token_ids' has sequence length {seq_length}, longer than "
            f"max_position_embeddings={config.max_position_embeddings}."
        )
    _check_range(
        "token_ids",
        inputs["token_ids"],
        config.vocab_size,
        f"ids must be below vocab_size={config.vocab_size}",
    )
    if "segment_ids" in inputs:
        _check_range(
            "segment_ids",
            inputs["segment_ids"],
            config.type_vocab_size,
            f"ids must be below type_vocab_size={config.type_vocab_size}",
        )
    if "mask_positions" in inputs and seq_length is not None:
        _check_range(
            "mask_positions",
            inputs["mask_positions"],
            seq_length,
            f"positions must be below the sequence length {seq_length}",
        )


def _same_shape(a, b):
    return len(a) == len(b) and all(
        x is None or y is None or x == y for x, y in zip(a, b)
    )
