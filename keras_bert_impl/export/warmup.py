"""assets.extra/tf_serving_warmup_requests: PredictionLog records TF Serving replays on load.

The first requests after a load would otherwise pay for graph optimisation and memory
allocation; the server replays these before the version serves traffic.
"""

import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def _string_proto(values):
    return tf.make_tensor_proto(np.asarray([v.encode("utf-8") for v in values], dtype=object))


def predict_log(model_name, signature_name, inputs):
    """A PredictionLog with a PredictRequest; `inputs` name -> list of str or an array."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
            proto = _string_proto(value)
        else:
            proto = tf.make_tensor_proto(np.asarray(value))
        request.inputs[name].CopyFrom(proto)
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )


def example_log(model_name, signature_name, texts, regression=False):
    """A PredictionLog with a Classify (or Regress) request on {"text": ...} examples."""
    request = (
        regression_pb2.RegressionRequest() if regression else classification_pb2.ClassificationRequest()
    )
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for text in texts:
        example = request.input.example_list.examples.add()
        example.features.feature["text"].bytes_list.value.append(text.encode("utf-8"))
    if regression:
        return prediction_log_pb2.PredictionLog(
            regress_log=prediction_log_pb2.RegressLog(request=request)
        )
    return prediction_log_pb2.PredictionLog(
        classify_log=prediction_log_pb2.ClassifyLog(request=request)
    )


def write_warmup_file(saved_model_dir, logs):
    """Writes the records into `saved_model_dir/assets.extra/tf_serving_warmup_requests`."""
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup_file(saved_model_dir):
    """The PredictionLog records of a SavedModel's warmup file ([] when it has none)."""
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    if not os.path.exists(path):
        return []
    logs = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs
