"""kbi-serve's model lifecycle: new versions load and old ones unload while requests keep
succeeding, config-file reloads, graceful SIGTERM, and the Client's UNAVAILABLE retries."""

import logging
import os
import shutil
import signal
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import TF_SERVING_DATA, free_port, kbi_serve, wait_for
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from keras_bert_impl.serving import Client, ModelServer, ServerOptions, ServingError

TWO_VERSIONS = os.path.join(TF_SERVING_DATA, "saved_model_half_plus_two_2_versions")
HALF_PLUS_THREE = os.path.join(TF_SERVING_DATA, "saved_model_half_plus_three")


def _predict_request(name="default"):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([[2.0]], tf.float32))
    return request


def test_new_version_replaces_the_old_without_dropping_requests(tmp_path, caplog):
    base = tmp_path / "model"
    base.mkdir()
    shutil.copytree(os.path.join(TWO_VERSIONS, "00000123"), base / "1")
    caplog.set_level(logging.INFO, logger="kbi-serve")
    server = ModelServer(
        ServerOptions(port=0, model_base_path=str(base), file_system_poll_wait_seconds=1)
    ).start()
    errors, versions, stop = [], [], threading.Event()

    def hammer():
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        while not stop.is_set():
            try:
                response = stub.Predict(_predict_request(), timeout=30)
                versions.append(response.model_spec.version.value)
                assert tf.make_ndarray(response.outputs["y"]).tolist() == [[3.0]]
            except Exception as error:  # noqa: BLE001 - collected and asserted below
                errors.append(error)
        channel.close()

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        assert wait_for(lambda: len(versions) > 20)
        # A new version appears atomically (written elsewhere, renamed into place).
        shutil.copytree(os.path.join(TWO_VERSIONS, "00000124"), tmp_path / "staging")
        os.rename(tmp_path / "staging", base / "2")
        with Client(f"127.0.0.1:{server.grpc_port}", "default") as client:
            assert wait_for(
                lambda: [s[:2] for s in client.get_model_status()]
                == [(2, "AVAILABLE"), (1, "END")]
            ), client.get_model_status()
        served_before = len(versions)
        assert wait_for(lambda: len(versions) > served_before + 20)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        server.stop()
    assert errors == []
    assert versions[0] == 1 and versions[-1] == 2
    # Once version 2 serves, version 1 never answers again.
    assert 1 not in versions[versions.index(2) + 8:]
    log = caplog.text
    assert log.count("Successfully loaded servable version {name: default version: 2}") == 1
    assert log.count("Successfully unloaded servable version {name: default version: 1}") == 1


def test_model_config_file_reload(tmp_path):
    """TF Serving's testModelConfigReload: the config file changes, the models follow."""
    config = tmp_path / "models.config"

    def write(name, path):
        config.write_text(
            f'model_config_list {{ config {{ name: "{name}" base_path: "{path}" '
            'model_platform: "tensorflow" } }\n'
        )

    write("half_plus_two", TWO_VERSIONS)
    server = ModelServer(
        ServerOptions(
            port=0, model_config_file=str(config), model_config_file_poll_wait_seconds=1
        )
    ).start()
    target = f"127.0.0.1:{server.grpc_port}"
    try:
        with Client(target, "half_plus_two") as client:
            assert client.predict({"x": np.array([[2.0]], np.float32)})["y"].tolist() == [[3.0]]
        write("half_plus_three", HALF_PLUS_THREE)
        with Client(target, "half_plus_three", max_retries=0) as client:

            def served():
                try:
                    return client.predict({"x": np.array([2.0], np.float32)})["y"].tolist()
                except ServingError:
                    return None

            assert wait_for(lambda: served() == [4.0])
        with Client(target, "half_plus_two", max_retries=0) as client:
            with pytest.raises(ServingError) as error:
                client.predict({"x": np.array([[2.0]], np.float32)})
            assert error.value.code == grpc.StatusCode.NOT_FOUND
    finally:
        server.stop()


def test_client_retries_unavailable_only(tmp_path):
    port = free_port()
    server = ModelServer(
        ServerOptions(port=port, model_base_path=TWO_VERSIONS, file_system_poll_wait_seconds=0)
    )
    starter = threading.Timer(1.0, server.start)
    starter.start()
    try:
        # Nothing listens yet: UNAVAILABLE, retried with back-off until the server is up.
        with Client(f"127.0.0.1:{port}", "default", max_retries=8, backoff=0.2) as client:
            assert client.predict({"x": np.array([[2.0]], np.float32)})["y"].tolist() == [[3.0]]
            started = time.monotonic()
            with pytest.raises(ServingError) as error:
                client.predict({"nope": np.array([1.0], np.float32)})
            assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert time.monotonic() - started < 1.0  # not retried
        with Client(f"127.0.0.1:{free_port()}", "default", max_retries=2, backoff=0.05) as client:
            with pytest.raises(ServingError) as error:
                client.get_model_status()
            assert error.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        starter.join()
        server.stop()


def test_sigterm_stops_gracefully():
    with kbi_serve(f"--model_base_path={TWO_VERSIONS}", rest=False) as server:
        with Client(server.grpc_target, "default") as client:
            assert client.get_model_status()[0][1] == "AVAILABLE"
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0
        assert wait_for(lambda: "Server stopped" in server.log(), timeout=10)
        assert "finishing requests in flight" in server.log()
