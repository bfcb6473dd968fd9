"""Maps `BertConfig.hidden_act` names onto Keras activations."""

import functools

import keras


def get_activation(name):
    """Returns the activation callable for a `BertConfig.hidden_act` name.

    `"gelu"` is the exact erf form (Hugging Face), `"gelu_approximate"` the
    tanh form of the original BERT code; mixing them up costs about 1e-3 in
    the hidden states of a pretrained model.
    """
    if name == "gelu":
        return functools.partial(keras.activations.gelu, approximate=False)
    if name == "gelu_approximate":
        return functools.partial(keras.activations.gelu, approximate=True)
    if name in ("relu", "silu", "tanh"):
        return keras.activations.get(name)
    raise ValueError(
        f"Unknown activation {name!r}; expected one of 'gelu', "
        "'gelu_approximate', 'relu', 'silu', 'tanh'."
    )


def truncated_normal(stddev):
    """BERT's weight initializer: a normal truncated at two standard deviations."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


def layer_norm_dtype(dtype_policy):
    """LayerNorm runs in float32 under mixed precision: its variance of a
    bfloat16/float16 residual stream loses too many digits otherwise."""
    if dtype_policy.compute_dtype in ("float16", "bfloat16"):
        return "float32"
    return dtype_policy
