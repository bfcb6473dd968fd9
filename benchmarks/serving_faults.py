r"""kbi-serve under faults, too slow for the test suite: the figures for BENCHMARKS.md.

  python -m benchmarks.serving_faults --requests=2000 --clients=16 \
      --baseline_kbi_serve=/path/to/other/checkout/.venv/bin/kbi-serve \
      --benchmarks_file=BENCHMARKS.md

Run from a checkout: it serves TF Serving's half_plus_two test model (tests/data/tf_serving),
so it needs no checkpoint.
1. load: --requests Predict requests at batch 1 and 32 from --clients concurrent clients
   over gRPC and over REST (keep-alive), with --idle_connections idle TCP connections held
   open on the REST port; errors, p50/p99, the server's RSS after warm-up and at the end.
   With --baseline_kbi_serve the same run against that program first (happy path
   before/after, same machine, same run).
2. versions: clients send Predict the whole time while versions change on disk: a
   half-written version (variables/ first, saved_model.pb later), a truncated one (given up
   after its retries), one renamed into place, and the newest deleted; errors by code.
3. sigterm: SIGTERM while the clients send; answers before and after it, refusals, other
   errors, exit code and seconds to exit.
"""

import collections
import http.client
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time

import numpy as np
from absl import flags

from benchmarks import benchmarks_file
from keras_bert_impl.cli import command
from benchmarks.serving_load import load_phase, percentile, rss_kib

SECTION = "## Serving: kbi-serve under faults and load (CPU)"
DATA = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "tf_serving")
VERSION = os.path.join(DATA, "saved_model_half_plus_two_2_versions", "00000123")


def define_flags(f):
    flags.DEFINE_integer(
        "requests", 2000, "Requests per load phase and API.", flag_values=f
    )
    flags.DEFINE_integer("clients", 16, "Concurrent clients.", flag_values=f)
    flags.DEFINE_integer(
        "idle_connections", 50, "Idle TCP connections held on REST.", flag_values=f
    )
    flags.DEFINE_string(
        "baseline_kbi_serve", None, "Another kbi-serve to compare with.", flag_values=f
    )
    flags.DEFINE_list(
        "parts", ["load", "versions", "sigterm"], "Which parts to run.", flag_values=f
    )
    benchmarks_file.define_flag(f)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port, timeout=60):
    """REST listens a moment after gRPC (whose log line local_server waits for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def _server(flag_values, base, *args, command=None):
    from keras_bert_impl.serving.local_process import local_server

    rest_port = _free_port()
    server = local_server(
        f"--model_base_path={base}",
        f"--rest_api_port={rest_port}",
        f"--grpc_max_threads={flag_values.clients}",
        f"--rest_api_num_threads={flag_values.clients}",
        *args,
        env={"TF_CPP_MIN_LOG_LEVEL": "2"},
        command=command,
    )
    return server, rest_port


def _callers(server, rest_port, batch):
    from keras_bert_impl.serving import Client

    client = Client(server.target, "default", timeout=60, max_retries=0)
    x = np.full((batch, 1), 2.0, np.float32)
    body = json.dumps({"instances": x.tolist()}).encode()
    local = threading.local()

    def rest(_):
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(
                "127.0.0.1", rest_port, timeout=60
            )
        local.connection.request("POST", "/v1/models/default:predict", body)
        response = local.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {payload[:200]!r}")

    return client, (lambda _: client.predict({"x": x})), rest


def load_part(flag_values, base, command, label, idle_connections):
    rows = []
    server_context, rest_port = _server(flag_values, base, command=command)
    with server_context as server:
        pid = server.process.pid
        _wait_for_port(rest_port)
        idle = [
            socket.create_connection(("127.0.0.1", rest_port))
            for _ in range(idle_connections)
        ]
        for batch in (1, 32):
            client, grpc_call, rest_call = _callers(server, rest_port, batch)
            for api, call in (("gRPC", grpc_call), ("REST", rest_call)):
                memory = {}
                lat, wall, errors = load_phase(
                    call,
                    flag_values.requests,
                    flag_values.clients,
                    on_warm=lambda memory=memory: memory.setdefault(
                        "warm", rss_kib(pid)
                    ),
                )
                memory["end"] = rss_kib(pid)
                rows.append(
                    f"| {label} | {idle_connections} | {api} | {batch} | {len(errors)} | {percentile(lat, 50):.2f} "
                    f"| {percentile(lat, 99):.2f} | {len(lat) / wall:.0f} | "
                    f"{memory['warm'] / 1024:.0f} → {memory['end'] / 1024:.0f} MiB |"
                )
            client.close()
        for sock in idle:
            sock.close()
    return rows


class _Traffic:
    """Clients sending Predict over gRPC until stopped; answers and errors counted."""

    def __init__(self, target, clients):
        from keras_bert_impl.serving import Client, ServingError

        self._client = Client(target, "default", timeout=60, max_retries=0)
        self._error = ServingError
        self.counts = collections.Counter()
        self.versions = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send) for _ in range(clients)]
        for thread in self._threads:
            thread.start()

    def _send(self):
        x = np.array([[2.0]], np.float32)
        while not self._stop.is_set():
            try:
                self._client.predict({"x": x})
                self.counts["OK"] += 1
            except self._error as error:
                self.counts[error.code.name] += 1
            except Exception as error:  # noqa: BLE001 - counted
                self.counts[type(error).__name__] += 1

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._client.close()


def _wait_status(client, version, state, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (version, state) in [s[:2] for s in client.get_model_status()]:
                return True
        except Exception:  # noqa: BLE001 - NOT_FOUND while nothing is listed
            pass
        time.sleep(0.2)
    raise TimeoutError(f"version {version} did not reach {state}")


def versions_part(flag_values, work):
    from keras_bert_impl.serving import Client

    base = os.path.join(work, "versions")
    shutil.copytree(VERSION, os.path.join(base, "1"))
    server_context, _ = _server(
        flag_values,
        base,
        "--max_num_load_retries=2",
        "--load_retry_interval_micros=500000",
    )
    steps = []
    with server_context as server, Client(server.target, "default") as client:
        traffic = _Traffic(server.target, flag_values.clients)
        half = os.path.join(base, "2")
        shutil.copytree(
            os.path.join(VERSION, "variables"), os.path.join(half, "variables")
        )
        time.sleep(2)
        shutil.copy(os.path.join(VERSION, "saved_model.pb"), half)
        _wait_status(client, 2, "AVAILABLE")
        steps.append("half-written v2 completed → AVAILABLE")
        truncated = os.path.join(base, "3")
        shutil.copytree(VERSION, truncated)
        with open(os.path.join(truncated, "saved_model.pb"), "r+b") as f:
            f.truncate(os.path.getsize(f.name) // 2)
        _wait_status(client, 3, "END")
        steps.append("truncated v3 given up after 2 retries")
        shutil.rmtree(truncated)
        shutil.copytree(VERSION, os.path.join(work, "staging"))
        os.rename(os.path.join(work, "staging"), os.path.join(base, "4"))
        _wait_status(client, 4, "AVAILABLE")
        steps.append("v3 deleted; v4 renamed into place → AVAILABLE")
        shutil.rmtree(os.path.join(base, "4"))
        _wait_status(client, 2, "AVAILABLE")
        time.sleep(2)
        steps.append("v4 deleted → v2 serves again")
        traffic.stop()
    return steps, traffic.counts


def sigterm_part(flag_values, work):
    base = os.path.join(work, "sigterm")
    shutil.copytree(VERSION, os.path.join(base, "1"))
    server_context, _ = _server(flag_values, base)
    with server_context as server:
        traffic = _Traffic(server.target, flag_values.clients)
        time.sleep(3)
        before = dict(traffic.counts)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=120)
        seconds = time.monotonic() - started
        time.sleep(1)
        traffic.stop()
    after = traffic.counts - collections.Counter(before)
    return before, dict(after), code, seconds


def main(flag_values):
    machine = benchmarks_file.machine_line()
    work = tempfile.mkdtemp(prefix="kbi_serve_faults_")
    base = os.path.join(work, "load")
    shutil.copytree(VERSION, os.path.join(base, "1"))
    lines = [
        "Command: `python -m benchmarks.serving_faults "
        f"--requests={flag_values.requests} --clients={flag_values.clients} "
        f"--idle_connections={flag_values.idle_connections} --parts={','.join(flag_values.parts)}"
        + (" --baseline_kbi_serve=..." if flag_values.baseline_kbi_serve else "")
        + "` (model: TF Serving's half_plus_two).",
        "",
    ]
    if "load" in flag_values.parts:
        lines += [
            f"**Load** ({flag_values.requests} requests per row from {flag_values.clients} concurrent "
            "clients; idle = TCP connections held open on the REST port meanwhile):",
            "",
            "| server | idle | API | batch | errors | p50 ms | p99 ms | requests/s "
            "| RSS warm → end |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        if flag_values.baseline_kbi_serve:
            lines += load_part(
                flag_values, base, [flag_values.baseline_kbi_serve], "baseline", 0
            )
        lines += load_part(flag_values, base, None, "this", 0)
        if flag_values.idle_connections:
            lines += load_part(
                flag_values, base, None, "this", flag_values.idle_connections
            )
        lines.append("")
    if "versions" in flag_values.parts:
        steps, counts = versions_part(flag_values, work)
        lines += [
            f"**Versions changing under traffic** ({flag_values.clients} gRPC clients): "
            + "; ".join(steps)
            + ". Answers: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
            "",
        ]
    if "sigterm" in flag_values.parts:
        before, after, code, seconds = sigterm_part(flag_values, work)
        lines += [
            f"**SIGTERM under load** ({flag_values.clients} gRPC clients): before it "
            + ", ".join(f"{k} {v}" for k, v in sorted(before.items()))
            + "; from it on "
            + ", ".join(f"{k} {v}" for k, v in sorted(after.items()))
            + f"; exit code {code} after {seconds:.1f} s.",
            "",
        ]
    shutil.rmtree(work, ignore_errors=True)
    benchmarks_file.publish(
        flag_values.benchmarks_file, SECTION, "\n".join(lines), machine
    )
    return 0


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)


if __name__ == "__main__":
    raise SystemExit(run())
