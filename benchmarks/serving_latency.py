r"""Latency of the raw-text export as TF Serving runs it, against ONNX Runtime and HF torch.

    python -m benchmarks.serving_latency --init_checkpoint=$MINILM_DIR \
        --sentences=../shared/data/sst2/dev.tsv --num_sentences=200 --rounds=3 \
        --work_dir=/tmp/serving_latency --benchmarks_file=BENCHMARKS.md

The checkpoint becomes a 2-class `BertClassifier` (a seeded head: speed does not depend
on its values) and is run three ways on the same real sentences, in one process:
- ours: `export_classifier`'s SavedModel in a TF1 session over its MetaGraph, fed and
  fetched by the `serving_default` SignatureDef's tensor names, default grappler — how
  `tensorflow_model_server` runs it; raw strings in, tokenizer inside;
- ONNX Runtime float32: the same weights as Hugging Face's `BertForSequenceClassification`
  exported with `torch.onnx.export`, Hugging Face's fast tokenizer timed with it;
- Hugging Face torch eager with the same tokenizer.
Batch 1: every sentence through one system, then the next, for `--rounds` rounds with the
order rotating; p50 / p99 per system. Batch 32: the sentences in batches of 32, ONNX
Runtime and torch padding each to its longest row (dynamic padding), ours to its export's
bucket; sentences per second. Every system keeps its own default threading. Then a profile of our batch-1 request: the `predict_ids`
signature fed the same ids (the encoder alone, so the difference is tokenization), the
ops executed per request and the fused ops grappler made, from the session's step stats.

Not installed with the package: it measures peers the package never imports.
"""

import collections
import csv
import os
import shutil
import sys
import time

import numpy as np
from keras_bert_impl.cli import command
from absl import flags

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

SECTION = "## Serving latency: raw-text export vs ONNX Runtime (CPU)"
FUSED_OPS = (
    "_FusedMatMul",
    "_MklNativeFusedMatMul",
    "_MklFusedMatMul",
    "_MklLayerNorm",
)


def define_flags(f):
    flags.DEFINE_string(
        "init_checkpoint",
        None,
        "HF BERT checkpoint directory.",
        required=True,
        flag_values=f,
    )
    flags.DEFINE_string(
        "sentences",
        None,
        "TSV with a 'sentence' column (SST-2 dev).",
        required=True,
        flag_values=f,
    )
    flags.DEFINE_integer(
        "num_sentences", 200, "Sentences timed (the first N).", flag_values=f
    )
    flags.DEFINE_integer(
        "rounds", 3, "Interleaved rounds over the sentences.", flag_values=f
    )
    flags.DEFINE_integer(
        "batch_size", 32, "Batch size of the throughput part.", flag_values=f
    )
    flags.DEFINE_integer(
        "max_seq_length", 128, "Export's longest sequence.", flag_values=f
    )
    flags.DEFINE_string(
        "work_dir",
        "/tmp/serving_latency",
        "Exports go here (made anew).",
        flag_values=f,
    )
    flags.DEFINE_list(
        "systems", ["ours", "ort", "torch"], "Systems to time.", flag_values=f
    )
    flags.DEFINE_integer(
        "threads",
        0,
        "Threads every system may use: TensorFlow's intra- and inter-op pools, ONNX "
        "Runtime's intra-op threads, torch's threads. 0: each system's own default.",
        lower_bound=0,
        flag_values=f,
    )
    from benchmarks import benchmarks_file

    benchmarks_file.define_flag(f)


def read_sentences(path, count):
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or "sentence" not in rows[0]:
        raise ValueError(
            f"--sentences={path}: expected a header with a 'sentence' column"
        )
    return [row["sentence"].strip() for row in rows][:count]


class SessionSignature:
    """A SavedModel signature in a TF1 session, fed and fetched by the SignatureDef's names."""

    def __init__(self, path, signature="serving_default"):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401 - registers the tokenizer's ops

        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(
                self.session, ["serve"], path
            )
        definition = meta_graph.signature_def[signature]
        self.input_names = sorted(definition.inputs)
        self.output_names = sorted(definition.outputs)
        self.feeds = [
            self.graph.get_tensor_by_name(definition.inputs[n].name)
            for n in self.input_names
        ]
        self.fetches = [
            self.graph.get_tensor_by_name(definition.outputs[n].name)
            for n in self.output_names
        ]
        self._call = self.session.make_callable(self.fetches, self.feeds)

    def __call__(self, **inputs):
        values = self._call(*(inputs[name] for name in self.input_names))
        return dict(zip(self.output_names, values))

    def profile(self, **inputs):
        """(ops executed, {op type: count}, {op type: microseconds}, {fused op: count}),
        all of the nodes one request executes."""
        import tensorflow as tf

        options = tf.compat.v1.RunOptions(
            trace_level=tf.compat.v1.RunOptions.FULL_TRACE, output_partition_graphs=True
        )
        metadata = tf.compat.v1.RunMetadata()
        feed = {t: inputs[n] for t, n in zip(self.feeds, self.input_names)}
        for _ in range(2):  # the second run is the steady state
            metadata = tf.compat.v1.RunMetadata()
            self.session.run(self.fetches, feed, options=options, run_metadata=metadata)
        node_of = {n.name: n for g in metadata.partition_graphs for n in g.node}
        counts, micros, fused = (
            collections.Counter(),
            collections.Counter(),
            collections.Counter(),
        )
        # Executed nodes only: a branch the request did not take is in the graph too.
        for device in metadata.step_stats.dev_stats:
            for stats in device.node_stats:
                node = node_of.get(stats.node_name)
                if node is None or node.op in ("_SOURCE", "_SINK", "_Arg", "_Retval"):
                    continue
                counts[node.op] += 1
                micros[node.op] += stats.op_end_rel_micros - stats.op_start_rel_micros
                if node.op in FUSED_OPS:
                    ops = [
                        o.decode() if isinstance(o, bytes) else o
                        for o in node.attr["fused_ops"].list.s
                    ]
                    fused[f"{node.op}({'+'.join(ops)})" if ops else node.op] += 1
        return sum(counts.values()), counts, micros, fused


def strings(texts):
    array = np.empty(len(texts), dtype=object)
    array[:] = [t.encode("utf-8") for t in texts]
    return array


def build_systems(work_dir, checkpoint, max_seq_length, names, threads=0):
    """{name: (batch function on a list of texts -> probabilities)} and our export's path."""
    import keras
    import torch
    import transformers

    from keras_bert_impl import BertClassifier
    from keras_bert_impl.convert import to_huggingface
    from keras_bert_impl.export import exporter
    from benchmarks import onnx_peer

    for part in ("ours", "onnx", "huggingface"):  # the exports are made anew
        shutil.rmtree(os.path.join(work_dir, part), ignore_errors=True)
    keras.utils.set_random_seed(0)
    model = BertClassifier.from_preset(
        checkpoint, num_classes=2, sequence_length=max_seq_length
    )
    export_path = exporter.export_classifier(
        model, os.path.join(work_dir, "ours"), version=1
    )
    tokenizer = transformers.BertTokenizerFast.from_pretrained(checkpoint)

    def encode(texts):
        return tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=max_seq_length,
            return_tensors="np",
        )

    systems = {}
    if "ours" in names:
        signature = SessionSignature(export_path)
        systems["ours"] = lambda texts: signature(text=strings(texts))["probabilities"]
    if "ort" in names:
        session = onnx_peer.OnnxRuntimeClassifier(
            onnx_peer.export_classifier(model, os.path.join(work_dir, "onnx")),
            num_threads=threads or None,
        ).session

        def ort(texts):
            feed = {k: v.astype(np.int64) for k, v in encode(texts).items()}
            (logits,) = session.run(["logits"], feed)
            return _softmax(logits)

        systems["ort"] = ort
    if "torch" in names:
        if threads:
            torch.set_num_threads(threads)
        hf_dir = to_huggingface(model, os.path.join(work_dir, "huggingface"))
        torch_model = transformers.BertForSequenceClassification.from_pretrained(
            hf_dir
        ).eval()

        def hf_torch(texts):
            with torch.inference_mode():
                inputs = {k: torch.from_numpy(v) for k, v in encode(texts).items()}
                return torch.softmax(torch_model(**inputs).logits, -1).numpy()

        systems["torch"] = hf_torch
    return systems, export_path, model


def _softmax(logits):
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def interleaved(systems, batches, rounds):
    """{name: [seconds per batch]}: each round runs every batch through one system, then
    the next, the order rotating from round to round. Whole rounds, not single batches,
    take turns: ONNX Runtime's and torch's idle threads spin for a while after a call
    (their defaults), which would slow whichever system ran next."""
    names = list(systems)
    for name in names:  # warm-up: every batch shape once
        for batch in batches:
            systems[name](batch)
    times = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            for batch in batches:
                start = time.perf_counter()
                systems[name](batch)
                times[name].append(time.perf_counter() - start)
    return times


def profile_lines(export_path, model, max_seq_length, sentence):
    """Our batch-1 request broken down: tokenizer vs encoder, ops, fused ops."""
    import tensorflow as tf

    from keras_bert_impl.export.text_inputs import TextInputs

    text_signature = SessionSignature(export_path)
    ids_signature = SessionSignature(export_path, "predict_ids")
    # The ids the export's tokenizer makes for the sentence (its predict_ids input).
    text_inputs = TextInputs(model.preprocessor.tokenizer, max_seq_length)
    ids = {k: v.numpy() for k, v in text_inputs(tf.constant([sentence])).items()}
    timings = {"serving_default": [], "predict_ids": []}
    for _ in range(3):
        for name, call in (
            ("serving_default", lambda: text_signature(text=strings([sentence]))),
            ("predict_ids", lambda: ids_signature(**ids)),
        ):
            for _ in range(30):
                start = time.perf_counter()
                call()
                timings[name].append(time.perf_counter() - start)
    text_ms = 1000 * float(np.median(timings["serving_default"]))
    ids_ms = 1000 * float(np.median(timings["predict_ids"]))
    executed, counts, micros, fused = text_signature.profile(text=strings([sentence]))
    top = ", ".join(
        f"{op} {micros[op] / 1000:.2f} ms ×{counts[op]}"
        for op, _ in micros.most_common(8)
    )
    return [
        f"Profile of one sentence ({ids['token_ids'].shape[1]} positions after bucketing), ours:",
        "",
        f"- raw text {text_ms:.2f} ms, the same ids through `predict_ids` {ids_ms:.2f} ms: "
        f"tokenization and packing {max(text_ms - ids_ms, 0):.2f} ms "
        f"({100 * max(text_ms - ids_ms, 0) / text_ms:.0f}%), encoder {ids_ms:.2f} ms",
        f"- ops executed per request: {executed}; fused ops in the optimized graph: "
        + (", ".join(f"{k} ×{v}" for k, v in sorted(fused.items())) or "none"),
        f"- op time by type (step stats, traced run): {top}",
    ]


def limit_tensorflow_threads(threads):
    """TensorFlow sizes its thread pools once per process, from the first session's
    options (later sessions' `ConfigProto` thread counts are ignored), or from these
    variables: so they are set before TensorFlow is imported."""
    if threads:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = str(threads)


def main(flag_values):
    limit_tensorflow_threads(flag_values.threads)
    import tensorflow as tf

    from benchmarks import benchmarks_file

    machine = benchmarks_file.machine_line()
    sentences = read_sentences(flag_values.sentences, flag_values.num_sentences)
    systems, export_path, model = build_systems(
        flag_values.work_dir,
        flag_values.init_checkpoint,
        flag_values.max_seq_length,
        flag_values.systems,
        flag_values.threads,
    )
    outputs = {
        name: np.concatenate(
            [f(sentences[i : i + 32]) for i in range(0, len(sentences), 32)]
        )
        for name, f in systems.items()
    }
    single = interleaved(systems, [[s] for s in sentences], flag_values.rounds)
    size = flag_values.batch_size
    batched = interleaved(
        systems,
        [sentences[i : i + size] for i in range(0, len(sentences), size)],
        flag_values.rounds,
    )
    lines = [
        f"TensorFlow {tf.__version__}.",
        "",
        "```bash",
        "python -m benchmarks.serving_latency --init_checkpoint=$MINILM_DIR \\",
        f"  --sentences={flag_values.sentences} --num_sentences={len(sentences)} --rounds={flag_values.rounds} "
        f"--batch_size={size} --work_dir={flag_values.work_dir}"
        + (f" --threads={flag_values.threads}" if flag_values.threads else ""),
        "```",
        "",
        f"all-MiniLM-L6-v2 as a 2-class classifier; {len(sentences)} SST-2 dev sentences, "
        f"{flag_values.rounds} interleaved rounds; tokenization included on every side; "
        + (
            f"{flag_values.threads} thread(s) for every system."
            if flag_values.threads
            else "each system's default threads."
        ),
        "",
        f"| system | batch 1 p50 | batch 1 p99 | batch {size} sentences/s | batch 1 vs ours | batch {size} vs ours |",
        "|---|---|---|---|---|---|",
    ]
    reference_p50 = np.median(single["ours"]) if "ours" in single else None
    reference_rate = (
        len(sentences) * flag_values.rounds / sum(batched["ours"])
        if "ours" in batched
        else None
    )
    labels = {
        "ours": "our raw-text export, TF1 session",
        "ort": "ONNX Runtime fp32 + HF tokenizer",
        "torch": "HF torch eager + HF tokenizer",
    }
    for name in systems:
        p50 = float(np.median(single[name]))
        p99 = float(np.percentile(single[name], 99))
        rate = len(sentences) * flag_values.rounds / sum(batched[name])
        lines.append(
            f"| {labels[name]} | {1000 * p50:.2f} ms | {1000 * p99:.2f} ms | {rate:.1f} | "
            + (
                f"{p50 / reference_p50:.2f}× | {reference_rate / rate:.2f}× |"
                if reference_p50
                else "| |"
            )
        )
    lines.append("")
    lines.append(
        '("vs ours": the system\'s time over ours; above 1 means ours is faster.)'
    )
    if "ours" in outputs and "ort" in outputs:
        diff = float(np.max(np.abs(outputs["ours"] - outputs["ort"])))
        lines += [
            "",
            f"Largest probability difference ours vs ONNX Runtime: {diff:.1e}.",
        ]
    if "ours" in systems:
        lines += [""] + profile_lines(
            export_path, model, flag_values.max_seq_length, sentences[0]
        )
    section = "\n".join(lines)
    heading = SECTION + (
        f" — {flag_values.threads} thread(s) each" if flag_values.threads else ""
    )
    benchmarks_file.publish(flag_values.benchmarks_file, heading, section, machine)
    return 0


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)


if __name__ == "__main__":
    raise SystemExit(run())
