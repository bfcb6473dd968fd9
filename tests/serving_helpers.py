"""Starts kbi-serve in a subprocess on free 127.0.0.1 ports and always stops it."""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np

TF_SERVING_DATA = os.path.join(os.path.dirname(__file__), "data", "tf_serving")
_GRPC_LINE = re.compile(r"Running gRPC ModelServer at [^:]+:(\d+)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A running kbi-serve: `grpc_target`, `rest_url`, its log so far (`log()`)."""

    def __init__(self, process, grpc_port, rest_port):
        self.process = process
        self.grpc_port = grpc_port
        self.rest_port = rest_port
        self.grpc_target = f"127.0.0.1:{grpc_port}"
        self.rest_url = f"http://127.0.0.1:{rest_port}" if rest_port else None
        self._lines = []

    def log(self):
        return "".join(self._lines)

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
    return [sys.executable, "-m", "keras_bert_impl_tools.serve", *args]


@contextlib.contextmanager
def kbi_serve(*args, rest=True, timeout=900):
    """Runs `kbi-serve ARGS --port=0 [--rest_api_port=free]`; yields a ServerProcess."""
    rest_port = free_port() if rest else 0
    command = _command([*args, "--port=0", f"--rest_api_port={rest_port}"])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        command, stderr=subprocess.STDOUT, stdout=subprocess.PIPE, text=True, env=env
    )
    server = None
    lines = []
    try:
        deadline = time.monotonic() + timeout
        grpc_port = None
        while grpc_port is None:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(
                    f"kbi-serve exited with {process.wait()}:\n" + "".join(lines)
                )
            lines.append(line)
            match = _GRPC_LINE.search(line)
            if match:
                grpc_port = int(match.group(1))
            if time.monotonic() > deadline:
                raise TimeoutError("kbi-serve did not start:\n" + "".join(lines))
        server = ServerProcess(process, grpc_port, rest_port)
        server._lines = lines
        # Keep draining the log so the server never blocks on a full pipe.
        drain = threading.Thread(
            target=lambda: [lines.append(line) for line in process.stdout], daemon=True
        )
        drain.start()
        if rest:
            _wait_for_rest(rest_port)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_rest(port):
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)


def run_kbi_serve_to_exit(*args, timeout=120):
    """Runs kbi-serve expecting it to exit (bad configuration): (returncode, output)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        _command([*args, "--port=0"]),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def as_float32(values):
    return np.asarray(values, np.float32)
