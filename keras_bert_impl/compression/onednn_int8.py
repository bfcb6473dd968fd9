"""int8 matmuls through oneDNN: the int8 that runs faster than float32 on x86 CPUs.

Keras' int8 `Dense` multiplies int8 activations by int8 weights with `ops.matmul`, which
TensorFlow runs as an int8 `BatchMatMulV3`: a portable loop on CPU, several times slower
than the float32 matmul it replaces. TensorFlow's x86-64 builds link oneDNN, and with it
`_QuantizedMatMul`: oneDNN's inner product of uint8 activations and int8 weights (int32
sums), with the bias, an exact GELU and the conversion back to float fused
in. TF Serving builds the same kernels (`build --define=build_with_onednn_v2=true` in
its `.bazelrc`); the op is registered without a Python wrapper, so it is built here with
TensorFlow's op library.

A layer switched to this path keeps Keras' int8 weights (an int8 kernel and a scale per
output column, `Dense.quantize("int8")`), so it saves and loads as any int8 layer.
Each call:
1. quantizes its input to uint8 over a fixed range [low, high] measured once on
   calibration text (`input_ranges`; values outside are clipped), so that a sentence
   gets the same answer whatever it is batched or padded with (a range taken from
   each batch would depend on both): q = round((x - low) / step) (`QuantizeV2`);
2. multiplies q by the int8 kernel, scaled back to float by step and the per-column
   kernel scales, and adds a bias that puts back what subtracting `low` took out,
   low * (column sums of the kernel), next to the layer's own bias;
3. applies the exact GELU in the same op, or the layer's other activation after it.

How many codes q takes depends on the CPU that runs the call (`activation_levels`):
with VNNI (AVX512_VNNI or AVX_VNNI) oneDNN sums uint8 x int8 products in int32, and q
uses all 256 codes. Without it (AVX2, or AVX-512 without VNNI) oneDNN adds products in
pairs in int16 (`vpmaddubsw`), which saturates above 32767: 255 * 127 * 2 does not fit,
127 * 127 * 2 does, so q keeps to 0..127 (7 bits; ONNX Runtime's `reduce_range`
makes the same trade on such CPUs, in the weights). A saved model keeps only [low,
high], so it is exact on whatever CPU loads it; a traced function or export keeps the
codes of the CPU that traced it (trace on the CPU class that serves it, or under
`ONEDNN_MAX_CPU_ISA=AVX2` for a graph exact on every x86-64 CPU).

Error bound: each input is off by at most half a step, step = (high - low) / (levels -
2) at most (`quantization_range`), so each output (before the activation) is within
0.5 * step * sum_k |w_kn| of the same layer in float with the dequantized kernel w: the
bound about doubles without VNNI. Inputs outside [low, high] are clipped first.

The matmul runs in SCALED mode with that bias passed in: its MIN_FIRST mode would make
the correction itself, but in a single-threaded loop over the kernel on every call,
assuming QuantizeV2's oneDNN rounding of `low` (its Eigen kernel rounds differently;
the range here starts on a whole step, so both kernels give the same codes).

A traced function (`predict`, an export) reads each layer's int8 kernel once: the op
keeps it reordered for VNNI, and the kernel's column sums are a constant of the graph
(at batch 1 that makes it as fast as float32 instead of 0.7x). The int8 weights of such
a model are frozen: to change them, quantize the float model again (eager calls always
read them).

Without oneDNN's kernels (other Keras backends, non-x86 TensorFlow builds) a layer keeps
Keras' own int8 call with dequantized weights (the numbers of `int8_weight_only`), and
`use_onednn_int8` says so in a warning.
"""

import functools
import math
import types
import warnings

import keras
import numpy as np

from keras_bert_impl import internals
from keras_bert_impl.compression import cpu_features
from keras_bert_impl.models import quantization

ONEDNN = "onednn"

# Keeps the step positive for an all-zero range (QuantizeV2 then widens it).
_SMALLEST_STEP = 1e-30


def onednn_available():
    """Whether this process can run oneDNN's quantized matmul: the TensorFlow backend,
    in a build that has the `_QuantizedMatMul` kernel (with or without
    TF_ENABLE_ONEDNN_OPTS)."""
    if keras.backend.backend() != "tensorflow":
        return False
    return bool(internals.registered_kernels("_QuantizedMatMul"))


def _is_exact_gelu(activation):
    func = getattr(activation, "func", activation)
    keywords = getattr(activation, "keywords", None) or {}
    return func is keras.activations.gelu and not keywords.get("approximate", False)


def _quantized_matmul_op(fused_ops, weight_is_constant, *arguments):
    """oneDNN's `_QuantizedMatMul` in the current graph. The op is internal (no
    `tf.raw_ops` entry), so it is built with TensorFlow's op library."""
    import tensorflow as tf

    quantized, kernel, bias, max_input, kernel_range = arguments
    outputs = internals.apply_op(
        "_QuantizedMatMul",
        name="quantized_matmul",
        device_inputs=[quantized, kernel, bias],
        host_inputs=[0.0, max_input, -kernel_range, kernel_range],
        Tdevice_outputs=[tf.float32],
        Thost_outputs=[],
        T1=tf.quint8,
        T2=tf.qint8,
        Tbias=tf.float32,
        Tout=tf.float32,
        U=tf.float32,
        transpose_a=False,
        transpose_b=False,
        fused_ops=list(fused_ops),
        input_quant_mode="SCALED",
        output_quant_mode="SCALED",
        # The op then keeps its kernel reordered for VNNI after the first call.
        is_weight_const=weight_is_constant,
        is_bias_const=False,
        leakyrelu_alpha=0.2,
    )
    return outputs[0]


@functools.lru_cache(maxsize=None)
def _eager_quantized_matmul(fused_ops):
    """The op wrapped in a tf.function, for eager callers. All layers share this one
    function, so it must not keep a kernel from one call to the next."""
    import tensorflow as tf

    return tf.function(
        functools.partial(_quantized_matmul_op, fused_ops, False),
        autograph=False,
        reduce_retracing=True,
    )


def _quantized_matmul(fused_ops, *arguments):
    import tensorflow as tf

    # The op has no gradient; the layer's custom gradient stands in for it.
    arguments = [tf.stop_gradient(argument) for argument in arguments]
    if tf.executing_eagerly():
        return _eager_quantized_matmul(fused_ops)(*arguments)
    # Traced: one op per layer, which may keep its layer's kernel.
    return _quantized_matmul_op(fused_ops, True, *arguments)


def activation_levels(features=None):
    """How many uint8 codes the activations use on the CPU of `features` (default:
    this one, `cpu_features.detect()`): 256 with VNNI, else 128, whose uint8 x int8
    pair sums fit oneDNN's int16 (module docstring); 128 where the CPU is unknown."""
    features = cpu_features.detect() if features is None else features
    return 256 if features.int8_dot_product else 128


def quantization_range(low, high, levels=256):
    """The range of the `levels` codes (at most 256) `_int8_dense` quantizes [low,
    high] to: it holds 0 and starts on a whole step, so that QuantizeV2's MIN_FIRST
    codes are round((x - low) / step) in both its oneDNN kernel (which subtracts low)
    and its Eigen one (which subtracts round(low / step)); (low, low + (levels - 1) *
    step) with step at most (high - low) / (levels - 2)."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    step = max((high - low) / (levels - 2), _SMALLEST_STEP)
    low = math.floor(low / step) * step
    return low, low + (levels - 1) * step


def _int8_dense(rows, kernel, kernel_scale, bias, column_sums, input_range, gelu):
    """[exact GELU](rows @ (kernel / kernel_scale) + bias) for float32 `rows` [m, k]
    and an int8 `kernel` [k, n] whose float columns sum to `column_sums`, with rows
    quantized to the `activation_levels` of this CPU over `input_range`."""
    import tensorflow as tf

    levels = activation_levels()  # of the CPU that runs (or traces) the call
    low, top = quantization_range(*input_range, levels)
    if levels < 256:
        # Codes above levels - 1 would overflow oneDNN's int16 pair sums; QuantizeV2
        # clips at code 255 only.
        rows = tf.minimum(rows, top)
    high = low + (top - low) / (levels - 1) * 255.0  # the same step over uint8
    quantized, low, high = tf.raw_ops.QuantizeV2(
        input=rows,
        min_range=low,
        max_range=high,
        T=tf.quint8,
        mode="MIN_FIRST",
        round_mode="HALF_AWAY_FROM_ZERO",
    )
    fused_ops = (
        ("BiasAdd", "GeluExact", "Dequantize") if gelu else ("BiasAdd", "Dequantize")
    )
    return _quantized_matmul(
        fused_ops,
        quantized,
        tf.bitcast(kernel, tf.qint8),
        # What subtracting low took out.
        bias + low * column_sums,
        high - low,
        127.0 / kernel_scale,
    )


def _onednn_int8_call(layer, inputs, training=None):
    """`Dense._int8_call` through oneDNN. Gradients (to the inputs, as in Keras' int8
    call) are those of the same layer with the dequantized kernel in float."""
    import tensorflow as tf

    kernel = tf.convert_to_tensor(internals.stored_kernel(layer))
    kernel_scale = tf.convert_to_tensor(layer.kernel_scale)
    bias = (
        tf.zeros([layer.units])
        if layer.bias is None
        else tf.convert_to_tensor(layer.bias)
    )
    activation = layer.activation
    # oneDNN applies the exact GELU inside the matmul; other activations run after it.
    exact_gelu = _is_exact_gelu(activation)
    with tf.init_scope():  # read now: a traced function keeps them (module docstring)
        column_sums = np.sum(
            keras.ops.convert_to_numpy(internals.stored_kernel(layer)), axis=0, dtype="float32"
        ) / keras.ops.convert_to_numpy(layer.kernel_scale)

    def float_dense(inputs):
        float_kernel = tf.cast(kernel, tf.float32) / kernel_scale
        outputs = tf.tensordot(inputs, float_kernel, axes=1) + bias
        return keras.activations.gelu(outputs) if exact_gelu else outputs

    @tf.custom_gradient
    def dense(inputs):
        rows = tf.reshape(inputs, [-1, kernel.shape[0]])
        outputs = _int8_dense(
            rows,
            kernel,
            kernel_scale,
            bias,
            column_sums,
            layer._int8_input_range,
            exact_gelu,
        )
        outputs = tf.reshape(
            outputs, tf.concat([tf.shape(inputs)[:-1], [layer.units]], axis=0)
        )

        def gradient(upstream):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                float_outputs = float_dense(inputs)
            return tape.gradient(float_outputs, inputs, output_gradients=upstream)

        return outputs, gradient

    outputs = dense(tf.cast(inputs, tf.float32))
    if exact_gelu or activation in (None, keras.activations.linear):
        return outputs
    return activation(outputs)


def use_onednn_int8(layer, input_range):
    """Makes an int8-quantized `Dense` run its matmul through oneDNN (see the module
    docstring); the choice and the range are saved with the model
    (`models.quantization`).

    Args:
        layer: an int8-quantized `keras.layers.Dense`.
        input_range: (low, high) of the layer's inputs (`input_ranges`).

    Returns:
        Whether the oneDNN path is in use: False where this process cannot run it, and
        the layer keeps Keras' own int8 call.

    Raises:
        ValueError: `layer` is not an int8-quantized `Dense`, has LoRA on, or
            `input_range` is not a finite (low, high) with low <= high.
    """
    if not isinstance(layer, keras.layers.Dense) or layer.quantization_mode != "int8":
        raise ValueError(
            f"{layer.name!r} is not an int8-quantized Dense layer (it is a "
            f"{type(layer).__name__}, quantization {layer.quantization_mode}); "
            "quantize it with `quantize('int8')` first."
        )
    if layer.lora_enabled:
        raise ValueError(
            f"{layer.name!r} has LoRA enabled; the oneDNN int8 call has no LoRA term."
        )
    low, high = (float(value) for value in input_range)
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(
            f"{layer.name!r}: input_range must be finite (low, high) with low <= high, "
            f"got {tuple(input_range)}."
        )
    layer._int8_matmul = ONEDNN
    layer._int8_matmul_options = {"input_range": [low, high]}
    layer._int8_input_range = (low, high)
    if not onednn_available():
        warnings.warn(
            "oneDNN's quantized matmul needs the TensorFlow backend (this is "
            f"{keras.backend.backend()}) in a build with oneDNN (x86-64); int8 layers "
            "run Keras' int8 call instead.",
            stacklevel=2,
        )
        return False
    internals.set_int8_call(layer, types.MethodType(_onednn_int8_call, layer))
    return True


def input_ranges(model, layers, batches):
    """{layer path: (low, high)} of the inputs each of `layers` sees while `model` runs
    on `batches` (its input dicts), eagerly.

    Args:
        model: a model whose `layers` are int8-quantized `Dense` layers.
        layers: {path: layer}.
        batches: iterable of model inputs (e.g. token dicts).
    """
    ranges = {}

    def recording(path, call):
        def record(inputs, *args, **kwargs):
            values = keras.ops.convert_to_numpy(inputs)
            low, high = float(values.min()), float(values.max())
            old = ranges.get(path, (low, high))
            ranges[path] = (min(old[0], low), max(old[1], high))
            return call(inputs, *args, **kwargs)

        return record

    for path, layer in layers.items():
        internals.set_int8_call(layer, recording(path, internals.int8_call(layer)))
    count = 0
    try:
        for batch in batches:
            model(batch, training=False)
            count += 1
    finally:
        for layer in layers.values():
            internals.reset_int8_call(layer)
    if not count:
        raise ValueError("The calibration data is empty: pass at least one text.")
    missing = sorted(set(layers) - set(ranges))
    if missing:
        raise ValueError(f"Calibration never reached layers {missing}.")
    return ranges


quantization.register_int8_matmul(ONEDNN, use_onednn_int8)

__all__ = [
    "ONEDNN",
    "activation_levels",
    "input_ranges",
    "onednn_available",
    "quantization_range",
    "use_onednn_int8",
]
