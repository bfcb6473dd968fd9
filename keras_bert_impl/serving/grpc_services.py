"""gRPC PredictionService and ModelService (tensorflow_serving.apis stubs) over a ServingApi."""

import logging

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from keras_bert_impl.serving import status

logger = logging.getLogger("kbi-serve")


def _answer(context, call, request):
    """Runs `call(request)`; errors become the RPC's status, never a crashed server."""
    try:
        return call(request)
    except status.ServingError as error:
        context.abort(error.code, error.message)
    except Exception as error:  # noqa: BLE001 - reported to the client, server stays up
        logger.exception("Unexpected error while serving a request")
        context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, api):
        self.api = api

    def Predict(self, request, context):  # noqa: N802 (gRPC method names)
        return _answer(context, self.api.predict, request)

    def Classify(self, request, context):  # noqa: N802
        return _answer(context, self.api.classify, request)

    def Regress(self, request, context):  # noqa: N802
        return _answer(context, self.api.regress, request)

    def GetModelMetadata(self, request, context):  # noqa: N802
        return _answer(context, self.api.get_model_metadata, request)

    def MultiInference(self, request, context):  # noqa: N802
        return _answer(context, self.api.multi_inference, request)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, api):
        self.api = api

    def GetModelStatus(self, request, context):  # noqa: N802
        return _answer(context, self.api.get_model_status, request)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "HandleReloadConfigRequest is not supported by kbi-serve; use "
            "--model_config_file_poll_wait_seconds",
        )


def add_services(server, api):
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(api), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(api), server)
