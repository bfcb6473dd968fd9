"""Starts kbi-serve in a subprocess on free 127.0.0.1 ports and always stops it."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np

from keras_bert_impl.serving.local_process import local_server

TF_SERVING_DATA = os.path.join(os.path.dirname(__file__), "data", "tf_serving")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A running kbi-serve: `grpc_target`, `rest_url`, its log so far (`log()`)."""

    def __init__(self, server, rest_port):
        self.process = server.process
        self.grpc_port = server.grpc_port
        self.rest_port = rest_port
        self.grpc_target = server.target
        self.rest_url = f"http://127.0.0.1:{rest_port}" if rest_port else None
        self._server = server

    def log(self):
        return self._server.log

    def rest(self, path, body=None, raw=None):
        """(HTTP status, parsed JSON) of a GET (body None) or POST."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.rest_url + path, data=data)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


def _command(args):
    return [sys.executable, "-m", "keras_bert_impl.cli", "serve", *args]


@contextlib.contextmanager
def kbi_serve(*args, rest=True, timeout=900):
    """Runs `kbi-serve ARGS --port=0 [--rest_api_port=free]`; yields a ServerProcess."""
    rest_port = free_port() if rest else 0
    with local_server(
        *args,
        f"--rest_api_port={rest_port}",
        timeout=timeout,
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
    ) as server:
        if rest:
            _wait_for_rest(rest_port)
        yield ServerProcess(server, rest_port)


def _wait_for_rest(port):
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)


def run_kbi_serve_to_exit(*args, timeout=120):
    """Runs kbi-serve expecting it to exit (bad configuration): (returncode, output).
    `--port=0` is added unless ARGS name a port."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    has_port = any(arg.startswith("--port=") for arg in args)
    result = subprocess.run(
        _command([*args] if has_port else [*args, "--port=0"]),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def wait_for(condition, timeout=60.0, step=0.1):
    """True once `condition()` holds; False after `timeout` seconds (a bound, not a
    measurement)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def as_float32(values):
    return np.asarray(values, np.float32)


def save_fault_model(path):
    """A tiny TF2 SavedModel for fault tests: `serving_default` (ids int32 [None] ->
    ids_plus_one), `text` (text string [None] -> length) and `read` (path string [] ->
    content: the file's bytes; on a FIFO it blocks until something is written, which
    holds a request in flight for as long as a test needs)."""
    import tensorflow as tf

    class FaultModel(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="ids")])
        def ids(self, ids):
            return {"ids_plus_one": ids + 1}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def text(self, text):
            return {"length": tf.strings.length(text)}

        @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="path")])
        def read(self, path):
            return {"content": tf.io.read_file(path)}

    model = FaultModel()
    tf.saved_model.save(
        model,
        str(path),
        signatures={"serving_default": model.ids, "text": model.text, "read": model.read},
    )
    return path


def http_exchange(port, data, timeout=30):
    """Sends raw bytes to 127.0.0.1:port; (status, Content-Type, parsed JSON body)."""
    import http.client

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.getheader("Content-Type"), json.loads(response.read())
