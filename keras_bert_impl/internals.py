"""Every TensorFlow and Keras internal the package reaches, in one place.

Each hook below uses a private name of the releases the package pins (TESTED_WITH):
nothing public does the job (the reason is at each hook). A hook looks its internal
up when it is called; where a release moved it, the hook raises `InternalMovedError`
naming the internal, what it is for and the releases it was written against, rather
than an AttributeError deep inside an export. `tests/test_internals.py` calls every
hook, so an upgrade that moves one fails there first.

TensorFlow is imported inside the hooks: the package root also runs on JAX.
(Two scripts that must run in a clean process, without this package, reach
`Session._make_callable_from_options` and `pywrap_tf_session` themselves:
`export/clean_load.py` and `export/servability.py`; the same test covers those
names.)
"""

import importlib

TESTED_WITH = {"tensorflow": "2.21", "keras": "3.15"}


class InternalMovedError(RuntimeError):
    """A TensorFlow / Keras internal the package relies on is not where it was."""


def _moved(name, purpose):
    import keras
    import tensorflow as tf

    return InternalMovedError(
        f"{name} is missing in TensorFlow {tf.__version__} / Keras {keras.__version__}; "
        f"keras_bert_impl uses it to {purpose} and was written against TensorFlow "
        f"{TESTED_WITH['tensorflow']} / Keras {TESTED_WITH['keras']}."
    )


def _attribute(owner, attribute, name, purpose):
    try:
        return getattr(owner, attribute)
    except AttributeError:
        raise _moved(name, purpose) from None


def _module_attribute(module, attribute, purpose):
    name = f"{module}.{attribute}"
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError):
        raise _moved(name, purpose) from None


def session_callable(session, options):
    """A callable running `options` (a `CallableOptions`: feeds and fetches by
    tensor name) in a TF1 session, as TF Serving's C++ session does. The public
    `Session.make_callable` takes graph tensors, not the names a SignatureDef holds."""
    make = _attribute(
        session,
        "_make_callable_from_options",
        "tf.compat.v1.Session._make_callable_from_options",
        "run SignatureDefs by tensor name in a session",
    )
    return make(options)


def sublayers(layer, include_self=True, recursive=True):
    """The layers under `layer`, depth first, as Keras walks them itself
    (`Model.quantize`). The public `Model.layers` lists direct children only,
    and a plain layer's children not at all."""
    flatten = _attribute(
        layer,
        "_flatten_layers",
        "keras.layers.Layer._flatten_layers",
        "walk a model's nested layers (quantization and precision checks)",
    )
    return list(flatten(include_self=include_self, recursive=recursive))


def saved_model_fingerprint(saved_model_dir):
    """The serialized `FingerprintDef` of a SavedModel directory, written anew after
    the package edits `saved_model.pb` (its method names): tf.saved_model has no
    public fingerprint writer."""
    fingerprinting = _module_attribute(
        "tensorflow.python.saved_model.pywrap_saved_model",
        "fingerprinting",
        "rewrite fingerprint.pb after setting the signatures' method names",
    )
    return fingerprinting.CreateFingerprintDef(saved_model_dir)


def save_context(options):
    """TensorFlow's save context: traces made inside it match the ones
    `tf.saved_model.save` makes with the same options (so an export traces once)."""
    module = _module_attribute(
        "tensorflow.python.saved_model", "save_context", "trace signatures once per export"
    )
    return module.save_context(options)


def tensorflow_library_file():
    """The path of TensorFlow's C++ library (its modification time keys a cache)."""
    module = _module_attribute(
        "tensorflow.python", "pywrap_tensorflow", "key the cache of core op names"
    )
    return module.__file__


def registered_kernels(op_type):
    """The kernels this TensorFlow build registers for `op_type` (an op with no
    `tf.raw_ops` entry, such as oneDNN's `_QuantizedMatMul`)."""
    get = _module_attribute(
        "tensorflow.python.framework.kernels",
        "get_registered_kernels_for_op",
        "check that this build has oneDNN's quantized matmul",
    )
    return list(get(op_type).kernel)


def apply_op(op_type, **arguments):
    """The output of an op that has no Python wrapper (oneDNN's `_QuantizedMatMul`),
    added to the current graph by TensorFlow's op library."""
    apply = _module_attribute(
        "tensorflow.python.framework.op_def_library",
        "_apply_op_helper",
        "build oneDNN's quantized matmul, which has no Python wrapper",
    )
    _, _, op, _ = apply(op_type, **arguments)
    return op.outputs


def adam_slots(optimizer, variable):
    """The first and second moments Keras' Adam keeps for `variable`. The fused AdamW
    update writes these same slots, so checkpoints and saved optimizers do not change;
    Keras exposes them by index only, through private names."""
    index = _attribute(
        optimizer,
        "_get_variable_index",
        "keras.optimizers.Optimizer._get_variable_index",
        "find a variable's Adam moments for the fused AdamW update",
    )(variable)
    purpose = "read Adam's moments for the fused AdamW update"
    momentums = _attribute(optimizer, "_momentums", "keras.optimizers.Adam._momentums", purpose)
    velocities = _attribute(
        optimizer, "_velocities", "keras.optimizers.Adam._velocities", purpose
    )
    return momentums[index], velocities[index]


def stored_kernel(dense):
    """An int8-quantized Keras `Dense`'s stored int8 kernel (`Dense.kernel` adds a
    LoRA delta where one is enabled)."""
    return _attribute(
        dense, "_kernel", "keras.layers.Dense._kernel", "read int8 kernels as stored"
    )


def int8_call(dense):
    """The method an int8-quantized Keras `Dense` computes with."""
    return _attribute(
        dense, "_int8_call", "keras.layers.Dense._int8_call", "run int8 layers"
    )


def set_int8_call(dense, function):
    """Makes `function` (bound to this layer, or a wrapper of its call) what this
    int8 `Dense` computes with; `reset_int8_call` restores Keras' own."""
    int8_call(dense)  # fails loudly when Keras renamed it
    dense._int8_call = function


def reset_int8_call(dense):
    if "_int8_call" in vars(dense):
        del dense._int8_call
