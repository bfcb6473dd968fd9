"""A taken port ends kbi-serve's start with one line and a non-zero exit (instead of gRPC's
SO_REUSEPORT sharing it), and a missing base path is logged on every poll, naming it, with
FileSystemStoragePathSource's words (sources/storage_path/file_system_storage_path_source.cc)."""

import logging
import os
import shutil
import socket

import numpy as np
from serving_helpers import TF_SERVING_DATA, run_kbi_serve_to_exit, wait_for

from keras_bert_impl.serving import Client, ModelServer, ServerOptions, ServingError

HALF_PLUS_TWO = os.path.join(TF_SERVING_DATA, "saved_model_half_plus_two_cpu")


def _error_lines(output):
    return [line for line in output.splitlines() if line.strip()]


def test_a_grpc_port_held_by_another_server_is_refused():
    first = ModelServer(
        ServerOptions(port=0, model_base_path=HALF_PLUS_TWO, file_system_poll_wait_seconds=0)
    ).start()
    try:
        code, output = run_kbi_serve_to_exit(
            f"--model_base_path={HALF_PLUS_TWO}", f"--port={first.grpc_port}"
        )
        assert code != 0
        lines = _error_lines(output)
        assert len(lines) == 1, output
        assert f"--port={first.grpc_port}" in lines[0] and "already in use" in lines[0]
        # The first server still answers every request alone.
        with Client(f"127.0.0.1:{first.grpc_port}", "default", max_retries=0) as client:
            assert client.predict({"x": np.array([2.0], np.float32)})["y"].tolist() == [3.0]
    finally:
        first.stop()


def test_a_taken_rest_port_is_refused_without_a_traceback():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, output = run_kbi_serve_to_exit(
            f"--model_base_path={HALF_PLUS_TWO}", f"--rest_api_port={port}"
        )
    assert code != 0
    lines = _error_lines(output)
    assert len(lines) == 1 and "Traceback" not in output, output
    assert f"--rest_api_port={port}" in lines[0] and "already in use" in lines[0]


def test_rest_port_equal_to_grpc_port_is_refused():
    code, output = run_kbi_serve_to_exit(
        f"--model_base_path={HALF_PLUS_TWO}", "--port=8765", "--rest_api_port=8765"
    )
    assert code != 0
    assert _error_lines(output) == [
        "kbi-serve: --rest_api_port cannot be the same as --port"
    ], output


def test_a_missing_base_path_is_logged_on_every_poll_until_it_appears(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="kbi-serve")
    base = tmp_path / "not_yet"
    message = f"Could not find base path {base} for servable default"
    server = ModelServer(
        ServerOptions(port=0, model_base_path=str(base), file_system_poll_wait_seconds=1)
    ).start()
    try:
        assert wait_for(lambda: caplog.text.count(message) >= 3)
        base.mkdir()
        assert wait_for(lambda: "No versions of servable default found under base path" in (
            caplog.text
        ))
        shutil.copytree(HALF_PLUS_TWO + "/00000123", base / "1")
        with Client(f"127.0.0.1:{server.grpc_port}", "default", max_retries=0) as client:

            def available():
                try:
                    return client.get_model_status()[0][:2] == (1, "AVAILABLE")
                except ServingError:  # NOT_FOUND until the poll sees the version
                    return False

            assert wait_for(available)
    finally:
        server.stop()
