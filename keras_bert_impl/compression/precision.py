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
- `"int8_onednn"`: the same int8 weights, multiplied with uint8 activations by
  oneDNN's quantized matmul (`compression.onednn_int8`): the int8 that is faster than
  float32 on x86 CPUs. Each layer's activation range is measured once on calibration
  text. TensorFlow backend with oneDNN only; elsewhere the layers run as
  `"int8_weight_only"` (with a warning).

The copy keeps the preprocessor and label names, so it predicts on raw text, saves and
reloads as `.keras`, and exports like the float model. Where the CPU lacks the
instructions a precision is fast with (`cpu_features`), `with_precision` says so in a
one-line warning: bfloat16 without AVX512_BF16 or AMX runs slower than float32, and
int8_onednn without VNNI keeps 7-bit activations for a smaller speed-up.
"""

import warnings

import keras

from keras_bert_impl import internals
from keras_bert_impl.compression import cpu_features
from keras_bert_impl.compression.onednn_int8 import (
    ONEDNN,
    activation_levels,
    input_ranges,
    onednn_available,
    use_onednn_int8,
)

PRECISIONS = ("float32", "bfloat16", "int8", "int8_weight_only", "int8_onednn")

_POLICY = {
    "float32": "float32",
    "bfloat16": "mixed_bfloat16",
    "int8": "float32",
    "int8_weight_only": "float32",
    "int8_onednn": "float32",
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


def native_support_warning(precision):
    """One line saying what `precision` loses on this CPU (`cpu_features.detect()`),
    or None where the CPU runs it natively (or is unknown, for bfloat16)."""
    features = cpu_features.detect()
    if precision == "bfloat16" and features.known and not features.native_bfloat16:
        return (
            "precision 'bfloat16' runs without native support on this CPU (no "
            f"AVX512_BF16 or AMX: {features.summary()}): slower than float32."
        )
    if precision == "int8_onednn" and onednn_available() and activation_levels() < 256:
        return (
            "precision 'int8_onednn' runs without VNNI on this CPU "
            f"({features.summary()}): 7-bit activations (twice the rounding error of "
            "8 bits) and a smaller speed-up over float32."
        )
    return None


def model_precision(model):
    """The precision of a model built by `with_precision` (or any of ours)."""
    model.build()
    quantized = [layer for layer in internals.sublayers(model) if layer.quantization_mode]
    if quantized:
        if any(getattr(layer, "_int8_matmul", None) == ONEDNN for layer in quantized):
            return "int8_onednn"
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


def encode_batches(model, texts, batch_size):
    """Consecutive batches of `texts` (a list of strings, or a (first, second) pair of
    lists) through `model.preprocessor`, as numpy token dicts, each batch cut to its
    longest row (as a length-bucketing server runs it)."""
    import numpy as np

    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is None:
        raise ValueError(
            f"{type(model).__name__} has no preprocessor to encode texts; pass token "
            "dicts instead."
        )
    pairs = isinstance(texts, tuple)
    count = len(texts[0]) if pairs else len(texts)
    for start in range(0, count, batch_size):
        end = start + batch_size
        batch = tuple(part[start:end] for part in texts) if pairs else texts[start:end]
        inputs = {k: np.asarray(v) for k, v in preprocessor(batch).items()}
        length = max(1, int(inputs["padding_mask"].sum(axis=1).max()))
        yield {k: v[:, :length] for k, v in inputs.items()}


def _calibration_batches(model, calibration, batch_size):
    """Model inputs from `calibration`: texts (see `encode_batches`), or an iterable of
    input dicts, used as they are."""
    if isinstance(calibration, tuple) or (
        isinstance(calibration, list)
        and calibration
        and isinstance(calibration[0], str)
    ):
        return encode_batches(model, calibration, batch_size)
    return calibration


def with_precision(model, precision, calibration=None, calibration_batch_size=32):
    """A copy of a task model (or backbone) that runs in `precision`.

    Args:
        model: a float32 `BertBackbone` or task model (`BertClassifier`,
            `BertTokenClassifier`, `BertQuestionAnswerer`, `BertPretrainer`).
        precision: one of `PRECISIONS`: "float32", "bfloat16", "int8",
            "int8_weight_only", "int8_onednn".
        calibration: for "int8_onednn" (required): texts the model will see, a list
            of strings or a (first, second) pair of lists (a few hundred sentences
            from the training data), or an iterable of model input dicts; each int8
            layer's input range is their min and max.
        calibration_batch_size: texts per calibration batch.

    Returns:
        A new model with the same weights (int8: quantized from them) and the same
        preprocessor; `model` is left unchanged.

    Raises:
        ValueError: an unknown precision, a model already quantized, or
            "int8_onednn" without calibration data.

    Warns:
        UserWarning: one line (`native_support_warning`) where this CPU lacks the
            instructions that make `precision` fast.
    """
    check_precision(precision)
    if precision == "int8_onednn" and calibration is None:
        raise ValueError(
            "precision 'int8_onednn' needs calibration data: pass calibration= a few "
            "hundred training texts (or model input dicts)."
        )
    if model_precision(model).startswith("int8"):
        raise ValueError(
            f"{type(model).__name__} {model.name!r} is already int8-quantized; start from "
            "the float model."
        )
    warning = native_support_warning(precision)
    if warning:
        warnings.warn(warning, stacklevel=2)
    config = _with_policy(model.get_config(), _POLICY[precision])
    copy = type(model).from_config(config)
    copy.build()
    copy.set_weights(model.get_weights())
    if precision.startswith("int8"):
        tied = _tied_layers(copy)
        config = None
        if precision != "int8":
            config = keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)
        copy.quantize(
            "int8",
            config=config,
            filters=lambda layer: type(layer) in _QUANTIZABLE and id(layer) not in tied,
        )
    if precision == "int8_onednn":
        layers = {
            layer.path: layer
            for layer in internals.sublayers(copy)
            if type(layer) is keras.layers.Dense and layer.quantization_mode == "int8"
        }
        batches = _calibration_batches(copy, calibration, calibration_batch_size)
        ranges = input_ranges(copy, layers, batches)
        for path, layer in layers.items():
            use_onednn_int8(layer, ranges[path])
    return copy
