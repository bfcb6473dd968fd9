"""Predict replies in TensorProto's typed fields by default, packed bytes on request.

tensorflow_model_server serializes Predict outputs with Tensor::AsProtoField
(PredictResponseTensorSerializationOption::kAsProtoField in
servables/tensorflow/predict_util.cc) unless --enable_serialization_as_tensor_content
(model_servers/server.cc) selects kAsProtoContent.
"""

import os

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import TF_SERVING_DATA
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from keras_bert_impl.serving import Client, ModelServer, ServerOptions
from keras_bert_impl.serving.tensors import to_response_proto

HALF_PLUS_TWO = os.path.join(TF_SERVING_DATA, "saved_model_half_plus_two_cpu")


@pytest.mark.parametrize(
    "array, field",
    [
        (np.array([[1.5], [2.0]], np.float32), "float_val"),
        (np.array([1.5, -2.0], np.float64), "double_val"),
        (np.array([1, -7], np.int32), "int_val"),
        (np.array([3], np.uint8), "int_val"),
        (np.array([2**40], np.int64), "int64_val"),
        (np.array([True, False]), "bool_val"),
        (np.array([0.5, 1.0], np.float16), "half_val"),
        (np.array([1 + 2j], np.complex64), "scomplex_val"),
        (np.array([b"a", b"\xff"], object), "string_val"),
        (np.float32(3.5), "float_val"),
    ],
)
def test_typed_fields_hold_every_value_and_read_back(array, field):
    typed = to_response_proto(array)
    assert [f.name for f, _ in typed.ListFields()][-1] == field
    assert not typed.tensor_content
    packed = to_response_proto(array, as_tensor_content=True)
    for proto in (typed, packed):
        back = tf.make_ndarray(proto)
        assert back.shape == np.shape(array)
        assert back.tolist() == np.asarray(array).tolist()


def _predict(port):
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([[2.0], [4.0]], tf.float32))
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return stub.Predict(request, timeout=30).outputs["y"]
    finally:
        channel.close()


@pytest.mark.parametrize("as_content", [False, True])
def test_predict_reply_encoding_follows_the_flag(as_content):
    server = ModelServer(
        ServerOptions(
            port=0,
            model_base_path=HALF_PLUS_TWO,
            file_system_poll_wait_seconds=0,
            enable_serialization_as_tensor_content=as_content,
        )
    ).start()
    try:
        y = _predict(server.grpc_port)
        # What a client written from TF Serving's tutorials reads (outputs["y"].float_val).
        assert list(y.float_val) == ([] if as_content else [3.0, 4.0])
        assert bool(y.tensor_content) == as_content
        assert [d.size for d in y.tensor_shape.dim] == [2, 1]
        with Client(f"127.0.0.1:{server.grpc_port}", "default") as client:
            got = client.predict({"x": np.array([[2.0], [4.0]], np.float32)})["y"]
        assert got.tolist() == [[3.0], [4.0]]
    finally:
        server.stop()
