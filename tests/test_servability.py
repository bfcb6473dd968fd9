"""Servability: a tokenizer + packer SavedModel passes the op check and runs in a clean process;
the checker catches what TF Serving cannot run."""

import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text as tf_text
import text_helpers

from keras_bert_impl.export import (
    ServabilityError,
    check_servability,
    inspect_saved_model,
    load_in_clean_subprocess,
)
from keras_bert_impl.export.servability import read_saved_model
from keras_bert_impl.text import Packer, Tokenizer
from keras_bert_impl.text.tokenizer import MIN_SERVING_VERSION

TEXTS = ["Hello, World!", "naïve café 北京 [MASK] 👍", "", "x" * 300]
PAIRS = ["a second segment", "b", "c", "d " * 200]


def _save(module, path, signatures):
    tf.saved_model.save(module, str(path), signatures=signatures)
    return path


def _preprocessor(tokenizer, packer):
    """A module that holds only a tokenizer and a packer, with a raw-string signature."""
    module = tf.Module()
    module.tokenizer = tokenizer
    module.packer = packer

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string),
            tf.TensorSpec([None], tf.string),
        ]
    )
    def preprocess(text, text_pair):
        ids, starts, ends = tokenizer.tokenize_with_offsets(text)
        outputs = packer((ids, tokenizer(text_pair)))
        outputs.update(
            starts=starts.to_tensor(),
            ends=ends.to_tensor(),
            text=tokenizer.detokenize(ids),
        )
        return outputs

    module.preprocess = preprocess
    return module, {"serving_default": preprocess}


@pytest.fixture(scope="module")
def preprocessor_dir(tmp_path_factory):
    tokenizer = Tokenizer(text_helpers.reference_vocab_file())
    packer = Packer.from_tokenizer(tokenizer, 32)
    module, signatures = _preprocessor(tokenizer, packer)
    path = _save(module, tmp_path_factory.mktemp("preprocessor") / "1", signatures)
    return path, module.preprocess(tf.constant(TEXTS), tf.constant(PAIRS))


def test_tokenizer_and_packer_export_passes_the_op_check(preprocessor_dir):
    path, _ = preprocessor_dir
    report = check_servability(path, server_version=MIN_SERVING_VERSION)
    assert report.tf_text_ops == {"FastWordpieceTokenizeWithOffsets": "2.10"}
    assert report.min_server_version == MIN_SERVING_VERSION == "2.10"
    assert "UnicodeDecodeWithOffsets" in report.core_ops
    assert not any(op.startswith("TFText>RoundRobin") for op in report.op_counts)
    with pytest.raises(
        ServabilityError,
        match="FastWordpieceTokenizeWithOffsets needs TF Serving >= 2.10",
    ):
        check_servability(path, server_version="2.9")


def test_tokenizer_and_packer_export_runs_identically_in_a_clean_process(
    preprocessor_dir,
):
    path, expected = preprocessor_dir
    outputs = load_in_clean_subprocess(
        path, "serving_default", {"text": TEXTS, "text_pair": PAIRS}
    )
    assert "keras_bert_impl" not in outputs.imported_modules
    assert "tensorflow_text" in outputs.imported_modules
    assert (
        set(outputs)
        == set(expected)
        == {
            "token_ids",
            "segment_ids",
            "padding_mask",
            "starts",
            "ends",
            "text",
        }
    )
    for name, value in expected.items():
        np.testing.assert_array_equal(outputs[name], value.numpy(), err_msg=name)


def test_the_check_reads_function_bodies(preprocessor_dir):
    path, _ = preprocessor_dir
    saved_model = read_saved_model(path)
    graph = saved_model.meta_graphs[0].graph_def
    top_level_ops = {node.op for node in graph.node}
    # The tokenizer's ops live in function bodies, not in the top-level graph.
    assert "FastWordpieceTokenizeWithOffsets" not in top_level_ops
    assert "FastWordpieceTokenizeWithOffsets" in inspect_saved_model(path).op_counts


def _small_export(path, function, spec):
    module = tf.Module()
    module.f = tf.function(function, input_signature=[spec])
    return _save(module, path, {"serving_default": module.f})


def test_python_functions_are_flagged(tmp_path):
    path = _small_export(
        tmp_path / "py",
        lambda x: {"y": tf.py_function(np.sin, [x], tf.float32)},
        tf.TensorSpec([None], tf.float32),
    )
    with pytest.raises(ServabilityError, match="EagerPyFunc.*no Python"):
        check_servability(path)


def test_xla_must_compile_functions_are_flagged(tmp_path):
    module = tf.Module()
    module.f = tf.function(
        lambda x: {"y": x * 2.0},
        input_signature=[tf.TensorSpec([None], tf.float32)],
        jit_compile=True,
    )
    path = _save(module, tmp_path / "xla", {"serving_default": module.f})
    with pytest.raises(ServabilityError, match="XLA must-compile"):
        check_servability(path)


def test_tf_text_ops_set_the_minimum_server_version(tmp_path):
    normalizer = tf_text.FastBertNormalizer(lower_case_nfd_strip_accents=True)
    path = _small_export(
        tmp_path / "normalize",
        lambda x: {"y": normalizer.normalize(x)},
        tf.TensorSpec([None], tf.string),
    )
    assert inspect_saved_model(path).min_server_version == "2.12"

    trimmer = tf_text.RoundRobinTrimmer(max_seq_length=4)
    path = _small_export(
        tmp_path / "trim",
        lambda x: {"y": trimmer.trim([x, x])[0].to_tensor()},
        tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1),
    )
    report = inspect_saved_model(path, server_version="2.19")
    assert report.min_server_version == "2.20"
    assert any(
        "TFText>RoundRobinTrim needs TF Serving >= 2.20" in p for p in report.problems
    )


def test_ops_outside_core_and_tf_text_are_flagged(preprocessor_dir, tmp_path):
    path, _ = preprocessor_dir
    copy = tmp_path / "custom"
    shutil.copytree(path, copy)
    saved_model = read_saved_model(copy)
    saved_model.meta_graphs[0].graph_def.library.function[0].node_def.add(
        name="mystery", op="MyCustomOp"
    )
    (copy / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    report = inspect_saved_model(copy)
    assert not report.ok
    assert any(
        "MyCustomOp" in problem and "neither core" in problem
        for problem in report.problems
    )


def test_not_a_saved_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a SavedModel"):
        inspect_saved_model(tmp_path)
