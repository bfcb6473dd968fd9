"""TF Serving's request/response protos on top of a `Servable` (shared by gRPC, REST, warmup)."""

from tensorflow_serving.apis import (
    classification_pb2,
    predict_pb2,
    regression_pb2,
)

from keras_bert_impl.serving import status
from keras_bert_impl.serving import tensors


def serialized_examples(input_proto):
    """tensorflow.serving.Input -> list of serialized tf.Example bytes.

    With `example_list_with_context`, the context is merged into every example the way
    TF Serving does it: a proto merge, i.e. the concatenation of the serializations.
    """
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        return [e.SerializeToString() for e in input_proto.example_list.examples]
    if kind == "example_list_with_context":
        context = input_proto.example_list_with_context.context.SerializeToString()
        return [
            context + e.SerializeToString()
            for e in input_proto.example_list_with_context.examples
        ]
    raise status.invalid_argument("Input is empty.")


def _fill_model_spec(spec, servable, signature_name):
    spec.name = servable.name
    spec.version.value = servable.version
    spec.signature_name = signature_name


def predict(servable, request, as_tensor_content=False):
    """PredictRequest -> PredictResponse; outputs in typed fields unless `as_tensor_content`.

    Classify, Regress and MultiInference replies carry no TensorProto (labels and scores are
    scalar fields), so the option is Predict's alone, as in tensorflow_model_server.
    """
    inputs = {alias: tensors.to_numpy(proto) for alias, proto in request.inputs.items()}
    name, outputs = servable.predict(
        request.model_spec.signature_name, inputs, list(request.output_filter)
    )
    response = predict_pb2.PredictResponse()
    _fill_model_spec(response.model_spec, servable, name)
    for alias, value in outputs.items():
        response.outputs[alias].CopyFrom(tensors.to_response_proto(value, as_tensor_content))
    return response


def classify(servable, request):
    """ClassificationRequest -> ClassificationResponse."""
    name, classes, scores = servable.classify(
        request.model_spec.signature_name, serialized_examples(request.input)
    )
    response = classification_pb2.ClassificationResponse()
    _fill_model_spec(response.model_spec, servable, name)
    fill_classifications(response.result, classes, scores)
    return response


def fill_classifications(result, classes, scores):
    """Fills a ClassificationResult from classes and/or scores `[batch, k]`."""
    rows = (classes if classes is not None else scores).shape[0]
    width = (classes if classes is not None else scores).shape[1]
    for i in range(rows):
        classification = result.classifications.add()
        for j in range(width):
            item = classification.classes.add()
            if classes is not None:
                item.label = bytes(classes[i, j]).decode("utf-8", errors="replace")
            if scores is not None:
                item.score = float(scores[i, j])


def regress(servable, request):
    """RegressionRequest -> RegressionResponse."""
    name, values = servable.regress(
        request.model_spec.signature_name, serialized_examples(request.input)
    )
    response = regression_pb2.RegressionResponse()
    _fill_model_spec(response.model_spec, servable, name)
    for value in values:
        response.result.regressions.add().value = float(value)
    return response
