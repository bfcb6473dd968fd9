"""`kbi-serve` in a child process: started, waited for, always stopped.

What a developer does by hand (start the server, wait until it listens, call
it, stop it with SIGTERM), as a context manager for scripts and tests. The
child is the installed `kbi-serve` console script (the same program a user
runs), so it loads models in a process of its own, as
`tensorflow_model_server` does.
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import grpc

_GRPC_LINE = re.compile(r"Running gRPC ModelServer at [^:]+:(\d+)")


def kbi_serve_command():
    """The `kbi-serve` beside this Python, else the module it runs."""
    script = os.path.join(os.path.dirname(sys.executable), "kbi-serve")
    if os.path.exists(script):
        return [script]
    found = shutil.which("kbi-serve")
    return [found] if found else [sys.executable, "-m", "keras_bert_impl.cli", "serve"]


class LocalServer:
    """A running `kbi-serve` child process.

    Attributes:
        process: the `subprocess.Popen`.
        grpc_port: the port its gRPC API listens on (127.0.0.1).
        lines: its log so far (stdout and stderr, drained by a thread).
    """

    def __init__(self, process, grpc_port, lines):
        self.process = process
        self.grpc_port = grpc_port
        self.lines = lines

    @property
    def target(self):
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def log(self):
        return "".join(self.lines)

    def stop(self, timeout=30):
        """SIGTERM (the server finishes requests in flight), then kill after `timeout`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _read_grpc_port(process, lines, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(
                f"kbi-serve exited with code {process.wait()} before listening:\n"
                + "".join(lines[-20:])
            )
        lines.append(line)
        match = _GRPC_LINE.search(line)
        if match:
            return int(match.group(1))
    raise TimeoutError(
        f"kbi-serve did not listen within {timeout} s:\n" + "".join(lines[-20:])
    )


@contextlib.contextmanager
def local_server(*args, timeout=300, env=None, command=None):
    """Runs `kbi-serve ARGS --port=0` and yields a `LocalServer` once it listens.

    Args:
        *args: kbi-serve flags (`--model_name=...`, `--model_base_path=...`,
            `--rest_api_port=...`); `--port=0` (a free port) is added.
        timeout: seconds to wait for the gRPC port.
        env: extra environment variables of the child.
        command: the program to run instead of this installation's kbi-serve (another
            checkout's, to compare two versions).
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    process = subprocess.Popen(
        [*(command or kbi_serve_command()), *args, "--port=0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines = []
    server = None
    try:
        port = _read_grpc_port(process, lines, timeout)
        # Keep draining the log so the child never blocks on a full pipe.
        threading.Thread(
            target=lambda: lines.extend(process.stdout), daemon=True
        ).start()
        server = LocalServer(process, port, lines)
        yield server
    finally:
        if server is not None:
            server.stop()
        elif process.poll() is None:
            process.kill()
            process.wait()


def wait_until_available(client, timeout=300):
    """Polls GetModelStatus until every served version is AVAILABLE; returns
    `client.get_model_status()`'s list."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            statuses = client.get_model_status()
            if statuses and all(state == "AVAILABLE" for _, state, _, _ in statuses):
                return statuses
            last = statuses
        except grpc.RpcError as error:
            last = f"{error.code().name}: {error.details()}"
        time.sleep(0.2)
    raise TimeoutError(f"model not AVAILABLE within {timeout} s (last status: {last})")
