"""Every TensorFlow / Keras internal the package reaches (keras_bert_impl.internals)
is called here: a release that moves one fails this file, with the hook's message."""

import importlib
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_bert_impl import internals


def test_session_callable_runs_by_tensor_name():
    from tensorflow.core.protobuf import config_pb2

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        tf.identity(x * 2.0, name="y")
    options = config_pb2.CallableOptions(feed=["x:0"], fetch=["y:0"])
    with tf.compat.v1.Session(graph=graph) as session:
        (result,) = internals.session_callable(session, options)(np.array([1.5], "float32"))
    np.testing.assert_array_equal(result, [3.0])


def test_saved_model_fingerprint_is_tensorflows(tmp_path):
    from tensorflow.core.protobuf import fingerprint_pb2

    module = tf.Module()
    module.f = tf.function(lambda x: x + 1.0, input_signature=[tf.TensorSpec([], tf.float32)])
    tf.saved_model.save(module, str(tmp_path))
    fingerprint = fingerprint_pb2.FingerprintDef.FromString(
        internals.saved_model_fingerprint(str(tmp_path))
    )
    with open(tmp_path / "fingerprint.pb", "rb") as f:
        written = fingerprint_pb2.FingerprintDef.FromString(f.read())
    assert fingerprint.saved_model_checksum == written.saved_model_checksum != 0


def test_save_context_is_the_one_saving_uses():
    save_context = importlib.import_module("tensorflow.python.saved_model.save_context")
    assert not save_context.in_save_context()
    with internals.save_context(tf.saved_model.SaveOptions()):
        assert save_context.in_save_context()


def test_tensorflow_library_and_kernels():
    assert os.path.isfile(internals.tensorflow_library_file())
    assert internals.registered_kernels("MatMul")
    assert internals.registered_kernels("NoSuchOp") == []


def test_apply_op_builds_an_op_without_wrapper():
    graph = tf.Graph()
    with graph.as_default():
        (total,) = internals.apply_op("AddV2", x=1.5, y=2.0)
    with tf.compat.v1.Session(graph=graph) as session:
        assert session.run(total) == 3.5


def test_int8_dense_hooks():
    dense = keras.layers.Dense(3)
    dense.build((None, 4))
    dense.quantize("int8")
    assert keras.backend.standardize_dtype(internals.stored_kernel(dense).dtype) == "int8"
    inputs = np.ones((2, 4), "float32")
    expected = np.asarray(dense(inputs))
    calls = []
    original = internals.int8_call(dense)

    def recording(x, *args, **kwargs):
        calls.append(x.shape)
        return original(x, *args, **kwargs)

    internals.set_int8_call(dense, recording)
    np.testing.assert_array_equal(np.asarray(dense(inputs)), expected)
    assert calls == [(2, 4)]
    internals.reset_int8_call(dense)
    dense(inputs)
    assert len(calls) == 1


def test_sublayers_walks_nested_layers():
    inner = keras.Sequential([keras.layers.Dense(2), keras.layers.Dense(3)])
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(1)])
    every = internals.sublayers(outer)
    assert every[0] is outer
    for layer in [inner, *inner.layers, *outer.layers]:
        assert any(layer is seen for seen in every)
    direct = internals.sublayers(outer, include_self=False, recursive=False)
    assert not any(layer is outer for layer in direct)
    assert not any(layer is inner.layers[0] for layer in direct)


def test_the_clean_process_scripts_names_exist():
    """export/clean_load.py and export/servability.py run scripts without this
    package; the internals they name are checked here instead."""
    pywrap_tf_session = importlib.import_module("tensorflow.python.client.pywrap_tf_session")
    assert hasattr(pywrap_tf_session, "TF_GetAllOpList")
    assert hasattr(tf.compat.v1.Session, "_make_callable_from_options")


def test_a_moved_internal_is_named_with_the_tested_releases():
    with pytest.raises(internals.InternalMovedError) as info:
        internals.stored_kernel(keras.layers.Dropout(0.1))
    message = str(info.value)
    assert message.startswith("keras.layers.Dense._kernel is missing in TensorFlow ")
    assert "read int8 kernels as stored" in message
    assert "written against TensorFlow 2.21 / Keras 3.15" in message


def test_adam_slots_are_the_moments_keras_adam_updates():
    variable = keras.Variable(np.ones(3, np.float32))
    optimizer = keras.optimizers.Adam(0.1)
    optimizer.apply_gradients([(tf.constant([1.0, 2.0, 3.0]), variable)])
    momentum, velocity = internals.adam_slots(optimizer, variable)
    np.testing.assert_allclose(momentum.numpy(), [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(velocity.numpy(), [0.001, 0.004, 0.009], rtol=1e-5)
