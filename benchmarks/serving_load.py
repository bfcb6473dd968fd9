r"""Serving measurements: length bucketing on SST-2 dev, and kbi-serve under load.

  python -m benchmarks.serving_load --init_checkpoint=$MINILM_DIR \
      --sst2_dev=../shared/data/sst2/dev.tsv --work_dir=/tmp/bench_serving \
      --benchmarks_file=BENCHMARKS.md

1. Bucketing: the checkpoint as a 2-class classifier exported twice (bucketed, and fixed
   padding to --max_seq_length), both run in this process the way the server runs them
   (session, SignatureDef tensor names) on every SST-2 dev sentence in batches of 32,
   interleaved rounds; throughput ratio and the largest output difference.
2. Load: --clients threads send --requests Predict requests (batch 1, then batch 32) to
   kbi-serve in a subprocess, and the same requests run in-process on the same export;
   p50/p99 latency, throughput, errors, and the server's resident memory after warm-up
   and at the end. The load model is --load_preset (random weights, the checkpoint's
   vocabulary), small so the serving overhead is visible.
3. Batching (--parts=batching, its own section): the load model served by two kbi-serve
   processes, one with --enable_batching and the export's batching_parameters.txt, one
   without; --clients threads send single sentences, alternating servers per round.
"""

import concurrent.futures
import csv
import os
import statistics
import time

import numpy as np
from absl import flags

from benchmarks import serving_batching
from benchmarks import benchmarks_file
from keras_bert_impl.cli import command

SECTION = "## Serving: length bucketing and kbi-serve under load (CPU)"


def define_flags(f):
    flags.DEFINE_string(
        "init_checkpoint",
        None,
        "HF BERT checkpoint directory.",
        required=True,
        flag_values=f,
    )
    flags.DEFINE_string(
        "sst2_dev",
        None,
        "SST-2 dev.tsv (sentence<TAB>label).",
        required=True,
        flag_values=f,
    )
    flags.DEFINE_string(
        "work_dir", "/tmp/bench_serving", "Exports go here (reused).", flag_values=f
    )
    flags.DEFINE_integer(
        "max_seq_length", 128, "Fixed padding length / largest bucket.", flag_values=f
    )
    flags.DEFINE_integer(
        "rounds", 3, "Interleaved rounds of the bucketing comparison.", flag_values=f
    )
    flags.DEFINE_integer("requests", 2000, "Requests per load phase.", flag_values=f)
    flags.DEFINE_integer("clients", 16, "Concurrent client threads.", flag_values=f)
    flags.DEFINE_string(
        "load_preset",
        "tiny",
        "BertConfig preset of the load-test model.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "max_sentences",
        None,
        "Use the first N dev sentences for bucketing (default: all).",
        flag_values=f,
    )
    flags.DEFINE_list(
        "parts",
        ["bucketing", "load"],
        "Which measurements to run: bucketing, load, batching (kbi-serve with and "
        "without --enable_batching, single sentences; its own section).",
        flag_values=f,
    )
    benchmarks_file.define_flag(f)


def read_sentences(path):
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or "sentence" not in rows[0]:
        raise ValueError(f"{path}: expected a header with a 'sentence' column")
    return [row["sentence"].strip() for row in rows]


def export_once(path, make):
    from keras_bert_impl.export.layout import existing_versions

    versions = existing_versions(path)
    if versions:
        return os.path.join(path, str(versions[-1]))
    return make()


def run_signature(servable, texts):
    array = np.empty(len(texts), dtype=object)
    array[:] = [t.encode("utf-8") for t in texts]
    return servable.predict("serving_default", {"text": array})[1]


def bucketing(fixed, bucketed, sentences, rounds):
    batches = [sentences[i : i + 32] for i in range(0, len(sentences), 32)]
    times = {"fixed": [], "bucketed": []}
    outputs = {}
    for servable in (fixed, bucketed):  # warm both
        run_signature(servable, batches[0])
    for _ in range(rounds):
        for name, servable in (("fixed", fixed), ("bucketed", bucketed)):
            start = time.perf_counter()
            results = [run_signature(servable, batch) for batch in batches]
            times[name].append(time.perf_counter() - start)
            outputs[name] = np.concatenate([r["probabilities"] for r in results])
    ratios = [f / b for f, b in zip(times["fixed"], times["bucketed"])]
    diff = float(np.max(np.abs(outputs["fixed"] - outputs["bucketed"])))
    same_labels = bool(
        np.array_equal(outputs["fixed"].argmax(-1), outputs["bucketed"].argmax(-1))
    )
    return times, ratios, diff, same_labels


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def load_phase(call, requests, clients, on_warm=None):
    """Runs `call(i)` `requests` times on `clients` threads -> (latencies, wall, errors)."""
    latencies, errors = [], []
    warm_at = max(1, requests // 10)

    def one(i):
        start = time.perf_counter()
        try:
            call(i)
        except Exception as error:  # noqa: BLE001 - counted
            errors.append(error)
        latencies.append(time.perf_counter() - start)
        if i == warm_at and on_warm is not None:
            on_warm()

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests)))
    return latencies, time.perf_counter() - start, errors


def percentile(values, q):
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def main(flag_values):

    from keras_bert_impl import BertClassifier
    from keras_bert_impl.export import exporter
    from keras_bert_impl.preprocessing import checkpoint_vocabulary
    from keras_bert_impl.serving import Client
    from keras_bert_impl.serving.servable import Servable
    from keras_bert_impl.text import Tokenizer

    from keras_bert_impl.serving.local_process import local_server

    machine = benchmarks_file.machine_line()
    all_sentences = read_sentences(flag_values.sst2_dev)
    sentences = (
        all_sentences[: flag_values.max_sentences]
        if flag_values.max_sentences
        else all_sentences
    )
    os.makedirs(flag_values.work_dir, exist_ok=True)
    vocabulary, lowercase = checkpoint_vocabulary.read(flag_values.init_checkpoint)
    tokenizer = Tokenizer(vocabulary, lowercase=lowercase)
    labels = ["negative", "positive"]
    minilm = None

    def classifier():
        nonlocal minilm
        if minilm is None:
            minilm = BertClassifier.from_preset(
                flag_values.init_checkpoint, label_names=labels, preprocessor=False
            )
        return minilm

    lines = [
        "Command (ratios from the same run):",
        "",
        "```bash",
        "python -m benchmarks.serving_load --init_checkpoint=$MINILM_DIR \\",
        f"  --sst2_dev=../shared/data/sst2/dev.tsv --work_dir={flag_values.work_dir} "
        f"--parts={','.join(flag_values.parts)} --requests={flag_values.requests} --clients={flag_values.clients}"
        + (
            f" --max_sentences={flag_values.max_sentences}"
            if flag_values.max_sentences
            else ""
        )
        + f" --rounds={flag_values.rounds}",
        "```",
        "",
    ]
    if "bucketing" in flag_values.parts:
        lines += bucketing_part(
            flag_values,
            sentences,
            tokenizer,
            classifier,
            exporter,
            Servable,
            len(all_sentences),
        )
    if "load" in flag_values.parts:
        lines += load_part(
            flag_values,
            sentences,
            tokenizer,
            vocabulary,
            labels,
            exporter,
            Servable,
            Client,
            local_server,
        )
    sections = []
    if "bucketing" in flag_values.parts or "load" in flag_values.parts:
        sections.append((SECTION, lines))
    if "batching" in flag_values.parts:
        load_path = load_export(
            flag_values, sentences, tokenizer, vocabulary, labels, exporter
        )
        sections.append(
            (
                serving_batching.SECTION,
                lines[:7]
                + serving_batching.batching_part(
                    sentences,
                    load_path,
                    flag_values,
                    Client,
                    local_server,
                    load_phase,
                    percentile,
                ),
            )
        )
    for heading, body in sections:
        benchmarks_file.publish(
            flag_values.benchmarks_file, heading, "\n".join(body), machine
        )
    return 0


def bucketing_part(
    flag_values, sentences, tokenizer, classifier, exporter, Servable, total
):
    paths = {}
    for name, buckets in (("fixed", None), ("bucketed", "auto")):
        target = os.path.join(flag_values.work_dir, f"sst2_{name}")
        paths[name] = export_once(
            target,
            lambda target=target, buckets=buckets: exporter.export_classifier(
                classifier(),
                target,
                tokenizer,
                max_seq_length=flag_values.max_seq_length,
                bucket_lengths=buckets,
                warmup_texts=sentences[:8],
            ),
        )
    fixed = Servable("fixed", 1, paths["fixed"])
    bucketed = Servable("bucketed", 1, paths["bucketed"])
    times, ratios, diff, same_labels = bucketing(
        fixed, bucketed, sentences, flag_values.rounds
    )
    lengths = [len(tokenizer.tokenize(s).numpy()) + 2 for s in sentences[:2000]]
    print(
        f"bucketing: fixed {times['fixed']} s, bucketed {times['bucketed']} s, "
        f"ratios {ratios}, max diff {diff:.2e}, same labels {same_labels}",
        flush=True,
    )
    lines = [
        f"**Length bucketing** (all-MiniLM-L6-v2 as a 2-class classifier export, the first "
        f"{len(sentences)} of {total} SST-2 dev sentences, batches of 32 in file order, packed "
        f"length median {int(statistics.median(lengths))} tokens, max {max(lengths)}; both "
        "SavedModels run as the server runs them, session and SignatureDef):",
        "",
        "| padding | seconds per pass (rounds) | sentences/s (median) |",
        "|---|---|---|",
    ]
    for name in ("fixed", "bucketed"):
        label = (
            f"fixed to {flag_values.max_seq_length}"
            if name == "fixed"
            else "the export's default: multiples of 8, batches of 8+ rows in 4 length groups"
        )
        lines.append(
            f"| {label} | {', '.join(f'{t:.2f}' for t in times[name])} | "
            f"{len(sentences) / statistics.median(times[name]):.0f} |"
        )
    lines += [
        "",
        f"Bucketed / fixed throughput: **{statistics.median(ratios):.2f}x** (per round "
        f"{', '.join(f'{r:.2f}' for r in ratios)}); largest |probability difference| "
        f"{diff:.1e}, predicted labels identical: {same_labels}.",
        "",
    ]
    return lines


def load_export(flag_values, sentences, tokenizer, vocabulary, labels, exporter):
    """The load-test model (--load_preset, random weights) exported once under work_dir."""
    import keras

    from keras_bert_impl import BertClassifier
    from keras_bert_impl.config import PRESETS

    keras.utils.set_random_seed(0)
    load_dir = os.path.join(flag_values.work_dir, f"load_{flag_values.load_preset}")
    config = PRESETS[flag_values.load_preset].replace(vocab_size=len(vocabulary))
    load_model = BertClassifier(config, num_classes=2, label_names=labels)
    return export_once(
        load_dir,
        lambda: exporter.export_classifier(
            load_model,
            load_dir,
            tokenizer,
            max_seq_length=flag_values.max_seq_length,
            warmup_texts=sentences[:8],
        ),
    )


def load_part(
    flag_values,
    sentences,
    tokenizer,
    vocabulary,
    labels,
    exporter,
    Servable,
    Client,
    local_server,
):
    load_path = load_export(
        flag_values, sentences, tokenizer, vocabulary, labels, exporter
    )
    in_process = Servable("load", 1, load_path)
    rows = []
    with local_server(
        "--model_name=sst2",
        f"--model_base_path={os.path.dirname(load_path)}",
        f"--grpc_max_threads={flag_values.clients}",
        "--rest_api_port=0",
        timeout=900,
    ) as server:
        pid = server.process.pid
        client = Client(server.target, "sst2", timeout=120, max_retries=0)
        for batch in (1, 32):

            def texts(i, batch=batch):
                start = (i * batch) % (len(sentences) - batch)
                return sentences[start : start + batch]

            memory = {}
            served = load_phase(
                lambda i: client.predict({"text": texts(i)}),
                flag_values.requests,
                flag_values.clients,
                on_warm=lambda memory=memory: memory.setdefault("warm", rss_kib(pid)),
            )
            memory["end"] = rss_kib(pid)
            local = load_phase(
                lambda i: run_signature(in_process, texts(i)),
                flag_values.requests,
                flag_values.clients,
            )
            rows.append((batch, served, local, memory))
        client.close()

    lines = [
        f"**kbi-serve under load** ({flag_values.requests} Predict requests per phase from "
        f"{flag_values.clients} concurrent gRPC clients; model: `{flag_values.load_preset}` preset, random "
        "weights, MiniLM vocabulary, bucketed export; in-process = the same export run by "
        f"the same {flag_values.clients} threads in the benchmark process):",
        "",
        "| batch | path | errors | p50 ms | p99 ms | requests/s | server RSS after warm-up → end |",
        "|---|---|---|---|---|---|---|",
    ]
    for batch, served, local, memory in rows:
        for name, (lat, wall, errors) in (
            ("kbi-serve (gRPC)", served),
            ("in-process", local),
        ):
            rss = (
                f"{memory['warm'] / 1024:.0f} → {memory['end'] / 1024:.0f} MiB"
                if name.startswith("kbi")
                else "-"
            )
            lines.append(
                f"| {batch} | {name} | {len(errors)} | {percentile(lat, 50):.1f} | "
                f"{percentile(lat, 99):.1f} | {len(lat) / wall:.0f} | {rss} |"
            )
        lines.append(
            f"| {batch} | overhead ratio (kbi-serve / in-process) | | "
            f"{percentile(served[0], 50) / percentile(local[0], 50):.2f}x | "
            f"{percentile(served[0], 99) / percentile(local[0], 99):.2f}x | "
            f"{(len(served[0]) / served[1]) / (len(local[0]) / local[1]):.2f}x | |"
        )
    return lines


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)


if __name__ == "__main__":
    raise SystemExit(run())
