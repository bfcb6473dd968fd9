"""The five TF Serving calls on proto messages; the gRPC services and the REST API both use it."""

from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from keras_bert_impl.serving import multi_inference
from keras_bert_impl.serving import requests
from keras_bert_impl.serving import status

SIGNATURE_DEF_FIELD = "signature_def"


class ServingApi:
    """Predict, Classify, Regress, GetModelMetadata and GetModelStatus over a ModelManager."""

    def __init__(self, manager, serialization_as_tensor_content=False):
        self.manager = manager
        self.serialization_as_tensor_content = serialization_as_tensor_content

    def _servable(self, request):
        if not request.HasField("model_spec"):
            raise status.invalid_argument("Missing ModelSpec")
        return self.manager.servable(request.model_spec)

    def predict(self, request):
        return requests.predict(
            self._servable(request), request, self.serialization_as_tensor_content
        )

    def classify(self, request):
        return requests.classify(self._servable(request), request)

    def regress(self, request):
        return requests.regress(self._servable(request), request)

    def multi_inference(self, request):
        return multi_inference.multi_inference(self.manager, request)

    def get_model_metadata(self, request):
        if not request.HasField("model_spec"):
            raise status.invalid_argument("Missing ModelSpec")
        if not request.metadata_field:
            raise status.invalid_argument(
                "GetModelMetadataRequest must specify at least one metadata_field"
            )
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise status.invalid_argument(f"Metadata field {field} is not supported")
        servable = self.manager.servable(request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.metadata[SIGNATURE_DEF_FIELD].Pack(servable.signature_def_map())
        return response

    def get_model_status(self, request):
        if not request.HasField("model_spec"):
            raise status.invalid_argument("Missing ModelSpec")
        response = get_model_status_pb2.GetModelStatusResponse()
        for version, state, error in self.manager.version_states(request.model_spec):
            entry = response.model_version_status.add()
            entry.version = version
            entry.state = state
            entry.status.SetInParent()  # error_code OK, as the server always reports it
            if error is not None:
                entry.status.error_code = error.code.value[0]
                entry.status.error_message = error.message
        return response
