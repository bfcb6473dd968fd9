"""Saving and restoring which sub-layers of a model are weight-quantized.

`keras.Model.quantize` swaps a built `Dense` / `EinsumDense` / `Embedding` for its
int8 (or int4, float8) form in place, and the layer's dtype policy records it. A
functional model rebuilds each layer from its own config, so Keras reloads that. Our
models are subclassed: a sub-layer is built by its parent's `__init__` with the
parent's float policy, so a reloaded model would expect float kernels where the file
holds int8 ones. The model's config therefore lists its quantized sub-layers by path
(`quantized_layers`) and `from_config` quantizes the same layers again before the
weights are read, which recreates the variables the file holds.

An int8 layer may also run its matmul through a backend-specific kernel (e.g.
`compression.onednn_int8`): the entry then names it (`"int8_matmul"`), and the module
that provides it registers how to switch a layer to it (`register_int8_matmul`).
"""

import warnings

import keras

from keras_bert_impl import internals

CONFIG_KEY = "quantized_layers"

# name -> function(layer, **options) that switches an int8 Dense to that matmul.
_INT8_MATMULS = {}


def register_int8_matmul(name, use):
    """Registers `use(layer, **options)`, which makes an int8 layer run its matmul the
    `name` way: it sets `layer._int8_matmul = name` and `layer._int8_matmul_options`
    (JSON values), which saved models keep per layer."""
    _INT8_MATMULS[name] = use


def named_layers(layer, prefix=""):
    """(path, layer) of every sub-layer, paths made of the stable layer names
    (`transformer_layer_0/self_attention/query`), parents before children."""
    for child in internals.sublayers(layer, include_self=False, recursive=False):
        path = f"{prefix}{child.name}"
        yield path, child
        yield from named_layers(child, path + "/")


def _entry(layer):
    """A quantized layer's mode, with its quantization config when it has one (e.g.
    weight-only int8: no activation quantizer), as the model's config stores it."""
    config = getattr(layer, "quantization_config", None)
    matmul = getattr(layer, "_int8_matmul", None)
    if config is None and matmul is None:
        return layer.quantization_mode
    entry = {"mode": layer.quantization_mode}
    if config is not None:
        entry["config"] = keras.saving.serialize_keras_object(config)
    if matmul is not None:
        entry["int8_matmul"] = matmul
        entry["int8_matmul_options"] = dict(getattr(layer, "_int8_matmul_options", {}))
    return entry


def quantized_layers(model, exclude=()):
    """{path: quantization mode or {"mode", "config"}} of `model`'s quantized
    sub-layers.

    Args:
        model: a built model.
        exclude: layers left out (with their children), e.g. a task's backbone,
            which records its own.
    """
    excluded = {id(layer) for layer in exclude}
    found = {}

    def walk(layer, prefix):
        for child in internals.sublayers(layer, include_self=False, recursive=False):
            if id(child) in excluded:
                continue
            path = f"{prefix}{child.name}"
            if child.quantization_mode is not None:
                found[path] = _entry(child)
            walk(child, path + "/")

    walk(model, "")
    return found


def requantize(model, layers):
    """Quantizes the sub-layers named in `layers` ({path: mode}) of a freshly built
    model, so that its variables match those of the saved quantized model.

    Raises:
        ValueError: a path names no layer of the model.
    """
    if not layers:
        return
    model.build()
    by_path = dict(named_layers(model))
    for path, entry in sorted(layers.items()):
        mode, config, matmul, options = entry, None, None, {}
        if isinstance(entry, dict):
            mode = entry["mode"]
            if "config" in entry:
                config = keras.saving.deserialize_keras_object(entry["config"])
            matmul = entry.get("int8_matmul")
            options = entry.get("int8_matmul_options", {})
        layer = by_path.get(path)
        if layer is None:
            raise ValueError(
                f"{type(model).__name__}: the saved config lists quantized layer "
                f"{path!r}, which this model does not have."
            )
        if layer.quantization_mode is None:
            layer.quantize(mode, config=config)
        elif layer.quantization_mode != mode:
            raise ValueError(
                f"{type(model).__name__}: layer {path!r} is {layer.quantization_mode}, "
                f"the saved config says {mode}."
            )
        if matmul is not None:
            _use_int8_matmul(model, path, layer, matmul, options)


def _use_int8_matmul(model, path, layer, matmul, options):
    use = _INT8_MATMULS.get(matmul)
    if use is None:
        # The layer's int8 weights still give the right outputs through Keras' call.
        layer._int8_matmul = matmul
        layer._int8_matmul_options = options
        warnings.warn(
            f"{type(model).__name__}: layer {path!r} was saved to run its int8 matmul "
            f"through {matmul!r}, which no imported module provides (import "
            "keras_bert_impl.compression); it runs Keras' own int8 call.",
            stacklevel=3,
        )
        return
    use(layer, **options)
