"""SIGTERM: kbi-serve stops accepting on both APIs, lets requests in flight finish within
the grace (10 s), cuts the rest and exits 0 at once; idle REST connections hold nothing up.

A request stays in flight exactly as long as a test needs: the fault model's `read`
signature opens a FIFO, which blocks (in the kernel's wait_for_partner) until the test
opens its other end; the read then fails ("Illegal seek": ReadFile preads), which is the
model's own answer, sent only if the request was let finish.
"""

import os
import signal
import socket
import threading

import grpc
import pytest
import tensorflow as tf
from serving_helpers import kbi_serve, save_fault_model, wait_for
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


def _blocked_reads(pid):
    """Threads of process `pid` waiting in open() for a FIFO's other end."""
    count = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/wchan") as f:
                count += f.read().strip() == "wait_for_partner"
        except OSError:  # the thread ended meanwhile
            pass
    return count


def _grpc_read(target, path, results):
    channel = grpc.insecure_channel(target)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "read"
    request.inputs["path"].CopyFrom(tf.make_tensor_proto(str(path)))
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        results["grpc"] = stub.Predict(request, timeout=120).outputs["content"].string_val
    except grpc.RpcError as error:
        results["grpc"] = (error.code(), error.details())
    finally:
        channel.close()


def _rest_read(server, path, results):
    try:
        results["rest"] = server.rest(
            "/v1/models/default:predict",
            {"signature_name": "read", "inputs": {"path": str(path)}},
        )
    except OSError as error:  # the connection was cut
        results["rest"] = type(error).__name__


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    base = tmp_path_factory.mktemp("fault_model")
    save_fault_model(base / "1")
    return base


def _fifos(tmp_path):
    paths = tmp_path / "grpc.fifo", tmp_path / "rest.fifo"
    for path in paths:
        os.mkfifo(path)
    return paths


def _reads_in_flight(server, grpc_fifo, rest_fifo, results):
    """A gRPC and a REST request, both blocked on their FIFO in the server."""
    calls = [
        threading.Thread(target=_grpc_read, args=(server.grpc_target, grpc_fifo, results)),
        threading.Thread(target=_rest_read, args=(server, rest_fifo, results)),
    ]
    for call in calls:
        call.start()
    assert wait_for(lambda: _blocked_reads(server.process.pid) == 2)
    return calls


def test_requests_in_flight_finish_on_both_apis_and_the_process_exits_0(model, tmp_path):
    grpc_fifo, rest_fifo = _fifos(tmp_path)
    with kbi_serve(f"--model_base_path={model}") as server:
        results = {}
        calls = _reads_in_flight(server, grpc_fifo, rest_fifo, results)
        idle = socket.create_connection(("127.0.0.1", server.rest_port))
        server.process.send_signal(signal.SIGTERM)
        assert wait_for(lambda: "finishing requests in flight" in server.log())

        # No new connections once stopping (REST listener closed).
        def refused():
            try:
                socket.create_connection(("127.0.0.1", server.rest_port), timeout=5).close()
                return False
            except ConnectionRefusedError:
                return True

        assert wait_for(refused)
        for fifo in (grpc_fifo, rest_fifo):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # each read goes on
        for call in calls:
            call.join(timeout=120)
        assert server.process.wait(timeout=60) == 0
        idle.close()
    code, details = results["grpc"]
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "Illegal seek" in details
    status, document = results["rest"]
    assert status == 400 and "Illegal seek" in document["error"]
    assert wait_for(lambda: "Server stopped" in server.log(), timeout=10)


def test_requests_past_the_grace_are_cut_and_the_process_does_not_linger(model, tmp_path):
    grpc_fifo, rest_fifo = _fifos(tmp_path)
    with kbi_serve(f"--model_base_path={model}") as server:
        results = {}
        calls = _reads_in_flight(server, grpc_fifo, rest_fifo, results)
        server.process.send_signal(signal.SIGTERM)
        # The reads never complete; the server gives them its 10 s grace, then exits.
        assert server.process.wait(timeout=90) == 0
        for call in calls:
            call.join(timeout=60)
    assert results["grpc"][0] in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    assert isinstance(results["rest"], str)  # the connection closed without an answer
    assert wait_for(lambda: "Server stopped" in server.log(), timeout=10)
