"""kbi-check-servable fails, naming the culprit, on what TF Serving cannot run: planted
tf.py_function, jit_compile=True functions, ops newer than the target server, and warmup
requests that fail in a clean process."""

import re

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from keras_bert_impl.export import warmup
from keras_bert_impl.export.check import check_servable
from tool_helpers import run_tool


def _save(path, function, spec, warmup_inputs=None, jit_compile=False):
    module = tf.Module()
    module.f = tf.function(function, input_signature=[spec], jit_compile=jit_compile)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.f})
    if warmup_inputs is not None:
        warmup.write_warmup_file(
            str(path), [warmup.predict_log("m", "serving_default", warmup_inputs)]
        )
    return str(path)


def test_planted_jit_compile_function_is_named(tmp_path):
    path = _save(
        tmp_path / "xla",
        lambda x: {"y": x * 2.0},
        tf.TensorSpec([None], tf.float32),
        jit_compile=True,
    )
    report = check_servable(path, clean_load=False)
    assert any("XLA must-compile (jit_compile=True)" in p for p in report.problems)


def test_op_newer_than_the_target_server_is_named(tmp_path):
    normalizer = tf_text.FastBertNormalizer(lower_case_nfd_strip_accents=True)
    path = _save(
        tmp_path / "normalize",
        lambda x: {"y": normalizer.normalize(x)},
        tf.TensorSpec([None], tf.string),
        warmup_inputs={"x": ["Héllo"]},
    )
    report = check_servable(path, server_version="2.10")
    assert report.problems == ["op FastBertNormalize needs TF Serving >= 2.12, target is 2.10"]
    assert report.replayed == ["serving_default"]  # it does run; the server just lacks it
    assert check_servable(path, server_version="2.12").ok


def test_a_failing_warmup_request_is_named(tmp_path):
    path = _save(
        tmp_path / "bad_warmup",
        lambda x: {"y": x + 1.0},
        tf.TensorSpec([None], tf.float32),
        warmup_inputs={"wrong_name": np.array([1.0], np.float32)},
    )
    report = check_servable(path)
    assert len(report.problems) == 1
    assert report.problems[0].startswith("warmup request 0 (serving_default):")
    assert "wrong_name" in report.problems[0]


def test_planted_py_function_is_named_and_the_command_exits_non_zero(tmp_path):
    path = _save(
        tmp_path / "py",
        lambda x: {"y": tf.py_function(np.cos, [x], tf.float32)},
        tf.TensorSpec([None], tf.float32),
    )
    result = run_tool(
        "check_servable", f"--saved_model_dir={path}", "--server_version=2.20",
        timeout=300,
    )
    assert result.returncode == 1
    assert "PROBLEM: op EagerPyFunc" in result.stdout
    assert "the server has no Python" in result.stdout
    assert "NOT SERVABLE" in result.stdout


def test_command_rejects_a_bad_server_version(tmp_path):
    version = "2.x"
    result = run_tool(
        "check_servable", f"--saved_model_dir={tmp_path}", f"--server_version={version}",
        timeout=300,
    )
    assert result.returncode != 0
    assert f"--server_version={version}" in result.stderr


def test_keras_model_saved_as_a_module_attribute_fails_like_in_tf_serving(tmp_path):
    """tf.saved_model.load runs it, but the server's session restores a second copy of the
    variables while the graph reads the first: the clean load must catch that."""
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    module = tf.Module()
    module.model = model
    module.f = tf.function(
        lambda x: {"y": model(x)},
        input_signature=[tf.TensorSpec([None, 3])],
        autograph=False,
    )
    path = str(tmp_path / "keras_attribute")
    tf.saved_model.save(module, path, signatures={"serving_default": module.f})
    warmup.write_warmup_file(
        path, [warmup.predict_log("m", "serving_default", {"x": np.ones((1, 3), np.float32)})]
    )
    assert tf.saved_model.load(path).signatures["serving_default"](x=tf.ones((1, 3)))
    report = check_servable(path)
    assert len(report.problems) == 1
    # Keras numbers layer names per process (sequential_2/dense_13 after other
    # tests' models), so only the shape of the name is fixed.
    assert re.search(r"Could not find variable sequential\w*/dense\w*/", report.problems[0])
