"""TF Serving's own expectations (model_servers/tensorflow_model_server_test.py) on its
half_plus_two testdata, replayed against kbi-serve in a subprocess, over gRPC and REST."""

import json
import os

import grpc
import pytest
import tensorflow as tf
from google.protobuf import text_format
from serving_helpers import TF_SERVING_DATA, kbi_serve, run_kbi_serve_to_exit
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

RPC_TIMEOUT = 5.0
HALF_PLUS_TWO = os.path.join(TF_SERVING_DATA, "saved_model_half_plus_two_cpu")
HALF_PLUS_THREE = os.path.join(TF_SERVING_DATA, "saved_model_half_plus_three")
TWO_VERSIONS = os.path.join(TF_SERVING_DATA, "saved_model_half_plus_two_2_versions")


def _model_config_file(directory):
    """TF Serving's good_model_config.txt with its placeholders filled in (as its test does),
    plus the model under "default" and a two-version model with labels."""
    with open(os.path.join(TF_SERVING_DATA, "good_model_config.txt")) as f:
        text = f.read()
    text = text.replace("${TEST_HALF_PLUS_TWO_DIR}", HALF_PLUS_TWO)
    text = text.replace("${TEST_HALF_PLUS_THREE_DIR}", HALF_PLUS_THREE)
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    models = config.model_config_list.config
    models.add(name="default", base_path=HALF_PLUS_TWO, model_platform="tensorflow")
    two = models.add(name="two_versions", base_path=TWO_VERSIONS, model_platform="tensorflow")
    two.model_version_policy.all.SetInParent()
    two.version_labels["stable"] = 123
    two.version_labels["canary"] = 124
    path = os.path.join(directory, "good_model_config.conf")
    with open(path, "w") as f:
        f.write(text_format.MessageToString(config))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = _model_config_file(tmp_path_factory.mktemp("config"))
    with kbi_serve(f"--model_config_file={config}") as running:
        yield running


@pytest.fixture(scope="module")
def prediction_stub(server):
    channel = grpc.insecure_channel(server.grpc_target)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def _verify_predict(
    stub, expected_output, model_name="default", specify_output=True, batch_input=False,
    signature_name="serving_default",
):
    """TensorflowModelServerTestBase.VerifyPredictRequest."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].float_val.append(2.0)
    request.inputs["x"].tensor_shape.dim.add().size = 1
    if batch_input:
        request.inputs["x"].tensor_shape.dim.add().size = 1
    if specify_output:
        request.output_filter.append("y")
    result = stub.Predict(request, RPC_TIMEOUT)
    assert "y" in result.outputs
    assert result.outputs["y"].dtype == types_pb2.DT_FLOAT
    assert len(result.outputs["y"].float_val) == 1
    assert result.outputs["y"].float_val[0] == expected_output
    assert result.model_spec.name == model_name
    assert result.model_spec.signature_name == signature_name
    assert result.model_spec.version.value == 123


def test_get_model_status(server):
    channel = grpc.insecure_channel(server.grpc_target)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    result = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        request, RPC_TIMEOUT
    )
    assert len(result.model_version_status) == 1
    assert result.model_version_status[0].version == 123
    assert result.model_version_status[0].status.error_code == 0
    channel.close()


def test_get_model_metadata(prediction_stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "default"
    request.metadata_field.append("signature_def")
    result = prediction_stub.GetModelMetadata(request, RPC_TIMEOUT)
    assert result.model_spec.name == "default"
    assert result.model_spec.version.value == 123
    assert len(result.metadata) == 1
    assert "signature_def" in result.metadata


def test_classify(prediction_stub):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "classify_x_to_y"
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend([2.0])
    result = prediction_stub.Classify(request, RPC_TIMEOUT)
    assert len(result.result.classifications) == 1
    assert len(result.result.classifications[0].classes) == 1
    assert result.result.classifications[0].classes[0].score == 3.0
    assert result.model_spec.signature_name == "classify_x_to_y"
    assert result.model_spec.version.value == 123


def test_regress(prediction_stub):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "regress_x_to_y"
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend([2.0])
    result = prediction_stub.Regress(request, RPC_TIMEOUT)
    assert len(result.result.regressions) == 1
    assert result.result.regressions[0].value == 3.0


def test_predict_saved_model(prediction_stub):
    _verify_predict(prediction_stub, 3.0)
    _verify_predict(prediction_stub, 3.0, specify_output=False)
    _verify_predict(prediction_stub, 3.0, batch_input=True)


def test_good_model_config(prediction_stub):
    for specify_output in (True, False):
        _verify_predict(prediction_stub, 3.0, "half_plus_two", specify_output)
        _verify_predict(prediction_stub, 4.0, "half_plus_three", specify_output)


def test_bad_model_config():
    code, output = run_kbi_serve_to_exit(
        f"--model_config_file={os.path.join(TF_SERVING_DATA, 'bad_model_config.txt')}"
    )
    assert code != 0
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in output


def test_classify_rest(server):
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    assert server.rest("/v1/models/default:classify", body) == (
        200,
        {"results": [[["", 3.0]]]},
    )


def test_regress_rest(server):
    body = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
    assert server.rest("/v1/models/default:regress", body) == (200, {"results": [3.0]})


def test_predict_rest(server):
    assert server.rest("/v1/models/default:predict", {"instances": [2.0, 3.0, 4.0]}) == (
        200,
        {"predictions": [3.0, 3.5, 4.0]},
    )


def test_predict_columnar_rest(server):
    assert server.rest("/v1/models/default:predict", {"inputs": [2.0, 3.0, 4.0]}) == (
        200,
        {"outputs": [3.0, 3.5, 4.0]},
    )


def test_get_status_rest(server):
    assert server.rest("/v1/models/default") == (
        200,
        {
            "model_version_status": [
                {
                    "version": "123",
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        },
    )


def test_get_model_metadata_rest(server):
    with open(os.path.join(TF_SERVING_DATA, "half_plus_two_model_metadata.json")) as f:
        expected = json.load(f)
    assert server.rest("/v1/models/default/metadata") == (200, expected)


def test_versions_and_labels(server):
    """model_version_policy all + version_labels: /versions/N, /labels/L and gRPC labels."""
    code, body = server.rest("/v1/models/two_versions")
    assert code == 200
    assert [s["version"] for s in body["model_version_status"]] == ["124", "123"]
    for path, version in (
        ("/v1/models/two_versions/versions/123", 123),
        ("/v1/models/two_versions/labels/stable", 123),
        ("/v1/models/two_versions/labels/canary", 124),
        ("/v1/models/two_versions", 124),
    ):
        code, body = server.rest(path + ":predict", {"instances": [[2.0]]})
        assert (code, body) == (200, {"predictions": [[3.0]]}), path
        code, body = server.rest(path + "/metadata")
        assert body["model_spec"]["version"] == str(version), path
    assert server.rest("/v1/models/two_versions/labels/nope:predict", {"instances": [1.0]}) == (
        400,
        {"error": "Unrecognized servable version label: nope"},
    )
    assert server.rest("/v1/models/two_versions/versions/7:predict", {"instances": [1.0]}) == (
        404,
        {"error": "Servable not found for request: Specific(two_versions, 7)"},
    )
    channel = grpc.insecure_channel(server.grpc_target)
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "two_versions"
    request.model_spec.version_label = "stable"
    request.metadata_field.append("signature_def")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    assert stub.GetModelMetadata(request, RPC_TIMEOUT).model_spec.version.value == 123
    channel.close()


def test_one_log_line_per_load(server):
    log = server.log()
    for name in ("default", "half_plus_two", "half_plus_three"):
        assert log.count(f"Successfully loaded servable version {{name: {name} version: 123}}") == 1
    assert "Running gRPC ModelServer at 127.0.0.1:" in log


def test_tensor_proto_inputs_of_every_kind(prediction_stub):
    """A float tensor as tensor_content (how tf.make_tensor_proto packs it) works as well."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0], [2.0]], tf.float32))
    result = prediction_stub.Predict(request, RPC_TIMEOUT)
    assert tf.make_ndarray(result.outputs["y"]).tolist() == [[2.5], [3.0]]


def _multi_inference_request(*tasks, feature="x"):
    """multi_inference_test.cc's request: x = 2 as a tf.Example, one task per (model,
    signature, method)."""
    request = inference_pb2.MultiInferenceRequest()
    example = request.input.example_list.examples.add()
    example.features.feature[feature].float_list.value.append(2.0)
    for model, signature, method in tasks:
        task = request.tasks.add()
        task.model_spec.name = model
        task.model_spec.signature_name = signature
        task.method_name = f"tensorflow/serving/{method}"
    return request


def test_multi_inference(prediction_stub):
    # multi_inference_test.cc's expectations on half_plus_two: y = x / 2 + 2, y2 = x / 2 + 3.
    request = _multi_inference_request(
        ("default", "regress_x_to_y", "regress"),
        ("default", "regress_x_to_y2", "regress"),
        ("default", "classify_x_to_y", "classify"),
    )
    result = prediction_stub.MultiInference(request, RPC_TIMEOUT)
    assert [r.model_spec.signature_name for r in result.results] == [
        "regress_x_to_y", "regress_x_to_y2", "classify_x_to_y"
    ]
    assert all(r.model_spec.version.value == 123 for r in result.results)
    assert result.results[0].regression_result.regressions[0].value == 3.0
    assert result.results[1].regression_result.regressions[0].value == 4.0
    assert result.results[2].classification_result.classifications[0].classes[0].score == 3.0
    for tasks, code, message in (
        (
            [("default", "regress_x_to_y", "regress"), ("half_plus_three", "regress_x_to_y", "regress")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
        ),
        (
            [("default", "regress_x_to_y", "regress")] * 2,
            grpc.StatusCode.INVALID_ARGUMENT,
            "Duplicate evaluation of signature: regress_x_to_y",
        ),
        (
            [("default", "serving_default", "predict")],
            grpc.StatusCode.UNIMPLEMENTED,
            "Unsupported signature method_name: tensorflow/serving/predict",
        ),
        (
            [("default", "regress_x_to_y", "regress"), ("default", "regress_x2_to_y3", "regress")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "Input tensor must be the same for all Signatures.",
        ),
        (
            [("default", "nope", "regress")],
            grpc.StatusCode.INVALID_ARGUMENT,
            "Requested signature not found in model graph: nope",
        ),
        (
            [("nope", "regress_x_to_y", "regress")],
            grpc.StatusCode.NOT_FOUND,
            None,
        ),
    ):
        with pytest.raises(grpc.RpcError) as error:
            prediction_stub.MultiInference(_multi_inference_request(*tasks), RPC_TIMEOUT)
        assert error.value.code() == code, tasks
        assert message is None or error.value.details() == message
    # The server is still healthy afterwards.
    assert prediction_stub.MultiInference(request, RPC_TIMEOUT).results[0].regression_result
