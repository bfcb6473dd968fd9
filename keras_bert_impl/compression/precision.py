"""Lower-precision copies of a model for inference: bfloat16 compute or int8 weights.

- `"bfloat16"`: the `mixed_bfloat16` policy. Weights stay float32 variables and are cast
  to bfloat16 for the matmuls; LayerNorm, the attention softmax and the task heads stay
  float32 (the layers choose that themselves), and outputs are float32 as before.
- `"int8"`: Keras' own weight quantization (`keras.Model.quantize("int8")`): every
  `Dense` kernel becomes int8 with a per-output-channel scale and the activations are
  quantized per row on the fly (int8 x int8 -> int32 matmul); `Embedding` tables become
  int8 with a per-row scale. Kept in float: LayerNorm, the learned position table
  (`PositionEmbedding`, a lookup, not a matmul) and, in a `BertPretrainer`, the token
  table, which the masked-LM head also reads as its (tied) output matrix.
- `"int8_weight_only"`: the same int8 weights, but no activation quantizer: each call
  casts the int8 kernel to float32 and runs a float matmul (dequantize, then matmul).
  The graph needs no int8 x int8 -> int32 `BatchMatMulV3` kernel, whose CPU
  registration older TensorFlow (and TF Serving) releases may lack.

The copy keeps the preprocessor and label names, so it predicts on raw text, saves and
reloads as `.keras`, and exports like the float model.
"""

import keras

PRECISIONS = ("float32", "bfloat16", "int8", "int8_weight_only")

_POLICY = {
    "float32": "float32",
    "bfloat16": "mixed_bfloat16",
    "int8": "float32",
    "int8_weight_only": "float32",
}

# Layers `keras.Model.quantize` knows; it refuses their subclasses.
_QUANTIZABLE = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Embedding)


def check_precision(precision):
    """Returns `precision` if it is one of `PRECISIONS`, else raises ValueError."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"Unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}."
        )
    return precision


def model_precision(model):
    """The precision of a model built by `with_precision` (or any of ours)."""
    model.build()
    quantized = [layer for layer in model._flatten_layers() if layer.quantization_mode]
    if quantized:
        weight_only = all(
            getattr(
                getattr(layer, "quantization_config", None), "activation_quantizer", 1
            )
            is None
            for layer in quantized
            if isinstance(layer, keras.layers.Dense)
        )
        return "int8_weight_only" if weight_only else "int8"
    if model.dtype_policy.compute_dtype == "bfloat16":
        return "bfloat16"
    return "float32"


def _with_policy(config, policy):
    """The model's config with every dtype policy set to `policy` (the task's and its
    backbone's; the heads fix their own float32)."""
    config = dict(config)
    config["dtype"] = policy
    if isinstance(config.get("backbone"), dict):
        backbone = dict(config["backbone"])
        backbone["config"] = _with_policy(backbone["config"], policy)
        config["backbone"] = backbone
    return config


def _tied_layers(model):
    """Layers whose weights are read by another layer as plain floats."""
    head = getattr(model, "mlm_head", None)
    return {id(head.token_embedding)} if head is not None else set()


def with_precision(model, precision):
    """A copy of a task model (or backbone) that runs in `precision`.

    Args:
        model: a float32 `BertBackbone` or task model (`BertClassifier`,
            `BertTokenClassifier`, `BertQuestionAnswerer`, `BertPretrainer`).
        precision: one of `PRECISIONS`: "float32", "bfloat16", "int8",
            "int8_weight_only".

    Returns:
        A new model with the same weights (int8: quantized from them) and the same
        preprocessor; `model` is left unchanged.

    Raises:
        ValueError: an unknown precision, or a model already quantized.
    """
    check_precision(precision)
    if model_precision(model).startswith("int8"):
        raise ValueError(
            f"{type(model).__name__} {model.name!r} is already int8-quantized; start from "
            "the float model."
        )
    config = _with_policy(model.get_config(), _POLICY[precision])
    copy = type(model).from_config(config)
    copy.build()
    copy.set_weights(model.get_weights())
    if precision.startswith("int8"):
        tied = _tied_layers(copy)
        config = None
        if precision == "int8_weight_only":
            config = keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)
        copy.quantize(
            "int8",
            config=config,
            filters=lambda layer: type(layer) in _QUANTIZABLE and id(layer) not in tied,
        )
    return copy
