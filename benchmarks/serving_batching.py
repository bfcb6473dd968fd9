"""bench_serving --parts=batching: kbi-serve with and without --enable_batching.

Two servers on the same export, one with `--enable_batching
--batching_parameters_file=<the export's batching_parameters.txt>`, one without; the
clients send one sentence per Predict request, the servers alternate phase by phase
(`--rounds`), after a warm-up phase each. Throughput is the median over rounds; p50/p99
come from all the rounds' latencies.
"""

import os
import statistics

SECTION = "## Serving: server-side batching in kbi-serve (CPU)"
MODES = (("without batching", ()), ("--enable_batching", ("--enable_batching",)))


def batching_part(
    sentences,
    load_path,
    flag_values,
    client_class,
    local_server,
    load_phase,
    percentile,
):
    from keras_bert_impl.export import batching_files

    export_dir = os.path.dirname(load_path)
    parameters_file = os.path.join(export_dir, batching_files.SERVER_FILE)
    if not os.path.exists(parameters_file):  # an export from before the file existed
        batching_files.write_server_file(
            export_dir, batching_files.batching_text(flag_values.max_seq_length)
        )
    with open(parameters_file, encoding="utf-8") as f:
        parameters = [
            line for line in f.read().splitlines() if not line.startswith("#")
        ]
    clients, requests, rounds = (
        flag_values.clients,
        flag_values.requests,
        flag_values.rounds,
    )

    def text(i):
        return [sentences[i % len(sentences)]]

    results = {name: {"latencies": [], "rates": [], "errors": 0} for name, _ in MODES}
    with (
        local_server(
            "--model_name=sst2",
            f"--model_base_path={export_dir}",
            f"--grpc_max_threads={clients}",
            "--rest_api_port=0",
            timeout=900,
        ) as plain,
        local_server(
            "--model_name=sst2",
            f"--model_base_path={export_dir}",
            f"--grpc_max_threads={clients}",
            "--enable_batching",
            f"--batching_parameters_file={parameters_file}",
            "--rest_api_port=0",
            timeout=900,
        ) as batched,
    ):
        servers = {MODES[0][0]: plain, MODES[1][0]: batched}
        stubs = {
            name: client_class(server.target, "sst2", timeout=120, max_retries=0)
            for name, server in servers.items()
        }
        for stub in stubs.values():  # warm-up, not measured
            load_phase(
                lambda i, stub=stub: stub.predict({"text": text(i)}),
                min(requests, 4 * clients),
                clients,
            )
        for _ in range(rounds):
            for name, _ in MODES:
                latencies, wall, errors = load_phase(
                    lambda i, stub=stubs[name]: stub.predict({"text": text(i)}),
                    requests,
                    clients,
                )
                results[name]["latencies"] += latencies
                results[name]["rates"].append(len(latencies) / wall)
                results[name]["errors"] += len(errors)
        for stub in stubs.values():
            stub.close()
        print(f"batching: {results_summary(results, percentile)}", flush=True)

    plural = "s" if rounds != 1 else ""
    lines = [
        f"**Server-side batching** ({rounds} round{plural} x {requests} Predict requests of "
        f"one sentence from {clients} concurrent gRPC clients per server; model: "
        f"`{flag_values.load_preset}` preset, random weights, MiniLM vocabulary, bucketed "
        "export; batching parameters: the export's `batching_parameters.txt`, "
        f"`{' '.join(' '.join(parameters).split())}`, batch threads = cores):",
        "",
        "| server | errors | p50 ms | p99 ms | requests/s (median of rounds) |",
        "|---|---|---|---|---|",
    ]
    for name, _ in MODES:
        row = results[name]
        lines.append(
            f"| kbi-serve {name} | {row['errors']} | {percentile(row['latencies'], 50):.1f} | "
            f"{percentile(row['latencies'], 99):.1f} | {statistics.median(row['rates']):.0f} |"
        )
    off, on = (results[name] for name, _ in MODES)
    lines += [
        "",
        f"Batching / no batching: throughput **"
        f"{statistics.median(on['rates']) / statistics.median(off['rates']):.2f}x**, p50 "
        f"{percentile(on['latencies'], 50) / percentile(off['latencies'], 50):.2f}x, p99 "
        f"{percentile(on['latencies'], 99) / percentile(off['latencies'], 99):.2f}x.",
        "",
    ]
    return lines


def results_summary(results, percentile):
    return "; ".join(
        f"{name}: {statistics.median(r['rates']):.0f} req/s, p50 "
        f"{percentile(r['latencies'], 50):.1f} ms, p99 {percentile(r['latencies'], 99):.1f} ms, "
        f"{r['errors']} errors"
        for name, r in results.items()
    )
