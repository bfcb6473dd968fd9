"""Static check that a SavedModel can run in tensorflow_model_server.

The server links the core TensorFlow kernels plus tf-text's op library (which op comes
with which server release is encoded below); it cannot load other custom ops, has no
Python (so no `PyFunc`), and does not XLA-compile. The check reads `saved_model.pb`,
collects the op type of every node in every graph and in every function of the function
library (nested function bodies included), and sorts them into core ops (the ops a bare
`import tensorflow` registers, read in a subprocess so that ops of libraries imported
here do not count), tf-text ops with the first server release that links them, ops that
are never servable, and unknown ops.
"""

import dataclasses
import functools
import json
import os
import subprocess
import sys

from tensorflow.core.protobuf import saved_model_pb2

from keras_bert_impl import internals

# tf-text ops linked by tensorflow_model_server (tf-text `ops_lib`), by the first server
# release that links each (tensorflow_serving/workspace.bzl + model_servers/BUILD).
TF_TEXT_OPS_BY_SERVER_VERSION = {
    "2.0": (
        "ConstrainedSequence",
        "SentenceFragments",
        "UnicodeScriptTokenizeWithOffsets",
        "WhitespaceTokenizeWithOffsets",
        "WordpieceTokenizeWithOffsets",
    ),
    "2.2": (
        "MaxSpanningTree",
        "CaseFoldUTF8",
        "NormalizeUTF8",
        "RegexSplitWithOffsets",
        "RougeL",
        "SentencepieceOp",
        "SentencepieceTokenizeOp",
        "SentencepieceTokenizeWithOffsetsOp",
        "SentencepieceDetokenizeOp",
        "SentencepieceVocabSizeOp",
        "SentencepieceIdToStringOp",
        "SplitMergeTokenizeWithOffsets",
    ),
    "2.4.3": (
        "NormalizeUTF8WithOffsetsMap",
        "FindSourceOffsets",
        "SentenceFragmentsV2",
        "SentencepieceStringToIdOp",
        "TokenizerFromLogits",
    ),
    "2.10": (
        "TFText>WhitespaceTokenizeWithOffsetsV2",
        "FastWordpieceTokenizeWithOffsets",
        "TFText>FastWordpieceDetokenize",
    ),
    "2.12": (
        "FastBertNormalize",
        "TFText>FastSentencepieceTokenize",
        "TFText>FastSentencepieceDetokenize",
        "TFText>NgramsStringJoin",
        "TFText>ByteSplitWithOffsets",
        "TFText>ByteSplitByOffsets",
        "TFText>OffsetsToBoiseTags",
        "TFText>BoiseTagsToOffsets",
        "PhraseTokenize",
        "TFText>PhraseDetokenize",
    ),
    "2.20": (
        "TFText>RoundRobinTrim",
        "TFText>RoundRobinGenerateMasks",
        "TFText>Utf8Binarize",
    ),
}

# Kernels that exist only in the Python runtime, or that need XLA.
NEVER_SERVABLE_OPS = {
    "PyFunc": "runs Python code; the server has no Python",
    "PyFuncStateless": "runs Python code; the server has no Python",
    "EagerPyFunc": "runs Python code; the server has no Python",
    "XlaCallModule": "needs XLA compilation, off in the server",
}
# Core ops newer than the baseline server, by the first TF Serving release that has
# them. `_QuantizedMatMul` (oneDNN's int8 matmul, `compression.onednn_int8`) came with
# tensorflow/tensorflow#66087 (May 2024): tensorflow-cpu 2.16.2's libtensorflow_cc does
# not register it, 2.17.1's does.
CORE_OPS_BY_SERVER_VERSION = {"_QuantizedMatMul": "2.17"}

# Core ops whose kernels exist only in builds with oneDNN: TensorFlow's and TF Serving's
# x86-64 builds (`build --define=build_with_onednn_v2=true` in both `.bazelrc` files).
ONEDNN_ONLY_OPS = ("_QuantizedMatMul",)

_XLA_MUST_COMPILE = "_XlaMustCompile"
_BASELINE_SERVER_VERSION = "2.0"


def parse_version(version):
    """'2.4.3' -> (2, 4, 3); for ordering server releases."""
    return tuple(int(part) for part in str(version).split("."))


def tf_text_op_server_versions():
    """dict tf-text op name -> first TF Serving release that links it."""
    return {
        op: version
        for version, ops in TF_TEXT_OPS_BY_SERVER_VERSION.items()
        for op in ops
    }


_CORE_OPS_SCRIPT = """
import json, sys
import tensorflow
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session
op_list = op_def_pb2.OpList()
op_list.ParseFromString(pywrap_tf_session.TF_GetBuffer(pywrap_tf_session.TF_GetAllOpList()))
json.dump(sorted(op.name for op in op_list.op), sys.stdout)
"""


def _core_ops_cache_file():
    """Where the core op list of this TensorFlow installation is kept: its version and
    the modification time of its C++ library name it, so another installation (or a
    reinstall) lists its ops afresh."""
    import tensorflow as tf

    stamp = int(os.stat(internals.tensorflow_library_file()).st_mtime_ns)
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(
        root, "keras_bert_impl", f"core_tf_ops-{tf.__version__}-{stamp}.json"
    )


@functools.lru_cache(maxsize=1)
def core_tf_ops():
    """Names of the ops core TensorFlow registers (a fresh process imports only tensorflow).

    Listing them costs a TensorFlow import in a subprocess, so the list is cached on disk
    per TensorFlow installation (and in memory per process)."""
    cache_file = _core_ops_cache_file()
    try:
        with open(cache_file, encoding="utf-8") as f:
            return frozenset(json.load(f))
    except (OSError, ValueError):
        pass
    ops = _list_core_tf_ops()
    try:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        temporary = f"{cache_file}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(sorted(ops), f)
        os.replace(temporary, cache_file)
    except OSError:
        pass  # a read-only home: list them again next time
    return ops


def _list_core_tf_ops():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", _CORE_OPS_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"Listing core TensorFlow ops failed:\n{result.stderr[-4000:]}"
        )
    return frozenset(json.loads(result.stdout))


class ServabilityError(ValueError):
    """A SavedModel uses something tensorflow_model_server cannot run."""


@dataclasses.dataclass
class ServabilityReport:
    """What a SavedModel needs from the server.

    Attributes:
        path: the SavedModel directory.
        exported_by: TensorFlow version that wrote it.
        op_counts: op type -> number of nodes (graphs and all function bodies).
        core_ops: op types that are core TensorFlow.
        tf_text_ops: tf-text op type -> first server release that links it.
        min_server_version: oldest TF Serving release that links every op used
            (counting tf-text ops and `CORE_OPS_BY_SERVER_VERSION`; other core ops are
            checked against the installed TensorFlow, and a server older than
            `exported_by` may still reject newer op attributes).
        problems: human-readable list of what cannot be served.
        notes: what the server build must have, e.g. oneDNN for `ONEDNN_ONLY_OPS`.
    """

    path: str
    exported_by: str
    op_counts: dict
    core_ops: list
    tf_text_ops: dict
    min_server_version: str
    problems: list
    notes: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return not self.problems

    def summary(self):
        nodes = sum(self.op_counts.values())
        lines = [
            f"SavedModel {self.path} (exported by TensorFlow {self.exported_by}): "
            + f"{len(self.op_counts)} op types, {nodes} nodes",
            f"  tf-text ops: {self.tf_text_ops or 'none'}",
            f"  minimum TF Serving version: {self.min_server_version}",
        ]
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  PROBLEM: {problem}" for problem in self.problems]
        return "\n".join(lines)


def read_saved_model(path):
    """Parses `path/saved_model.pb` into a SavedModel proto."""
    pb_file = os.path.join(path, "saved_model.pb")
    if not os.path.exists(pb_file):
        raise FileNotFoundError(
            f"{pb_file} does not exist: {path} is not a SavedModel directory."
        )
    saved_model = saved_model_pb2.SavedModel()
    with open(pb_file, "rb") as f:
        saved_model.ParseFromString(f.read())
    return saved_model


def _nodes(meta_graph):
    """(where, NodeDef) of every graph node and every function-library node."""
    graph = meta_graph.graph_def
    for node in graph.node:
        yield "graph", node
    for function in graph.library.function:
        for node in function.node_def:
            yield f"function {function.signature.name}", node


def _xla_functions(meta_graph):
    """Functions marked for XLA compilation, by their own attrs or by a caller's."""
    marked = []
    for function in meta_graph.graph_def.library.function:
        attr = function.attr.get(_XLA_MUST_COMPILE)
        if attr is not None and attr.b:
            marked.append(f"function {function.signature.name}")
    for where, node in _nodes(meta_graph):
        attr = node.attr.get(_XLA_MUST_COMPILE)
        if attr is not None and attr.b:
            marked.append(f"node {node.name} ({node.op}) in {where}")
    return marked


def inspect_saved_model(path, server_version=None):
    """Lists the ops of a SavedModel and what they require of TF Serving.

    Args:
        path: SavedModel directory.
        server_version: optional target server release, e.g. "2.12"; tf-text ops it does
            not link become problems.

    Returns:
        A `ServabilityReport` (never raises for unservable content; see `check_servability`).
    """
    path = os.fspath(path)
    saved_model = read_saved_model(path)
    core = core_tf_ops()
    text_ops = tf_text_op_server_versions()
    op_counts, problems = {}, []
    first_seen = {}
    for meta_graph in saved_model.meta_graphs:
        functions = {f.signature.name for f in meta_graph.graph_def.library.function}
        for where, node in _nodes(meta_graph):
            if node.op in functions:
                # A call of a library function by name; its body is listed separately.
                continue
            op_counts[node.op] = op_counts.get(node.op, 0) + 1
            first_seen.setdefault(node.op, f"{where}, node {node.name}")
        problems += [
            f"{marked} is XLA must-compile (jit_compile=True)"
            for marked in _xla_functions(meta_graph)
        ]
    exported_by = (
        saved_model.meta_graphs[0].meta_info_def.tensorflow_version
        if saved_model.meta_graphs
        else "unknown"
    )
    tf_text_ops = {}
    for op in sorted(op_counts):
        if op in NEVER_SERVABLE_OPS:
            problems.append(f"op {op} ({first_seen[op]}): {NEVER_SERVABLE_OPS[op]}")
        elif op in text_ops:
            tf_text_ops[op] = text_ops[op]
        elif op not in core:
            problems.append(
                f"op {op} ({first_seen[op]}) is neither core TensorFlow nor in the tf-text "
                "op library that TF Serving links"
            )
    newer_core_ops = {
        op: CORE_OPS_BY_SERVER_VERSION[op]
        for op in op_counts
        if op in CORE_OPS_BY_SERVER_VERSION
    }
    versioned = {**tf_text_ops, **newer_core_ops}
    min_version = max(
        [_BASELINE_SERVER_VERSION, *versioned.values()], key=parse_version
    )
    notes = [
        f"op {op} has a kernel only in builds with oneDNN: TF Serving's x86-64 "
        "builds (its default), not its ARM ones"
        for op in sorted(op_counts)
        if op in ONEDNN_ONLY_OPS
    ]
    if server_version is not None:
        for op, version in versioned.items():
            if parse_version(version) > parse_version(server_version):
                problems.append(
                    f"op {op} needs TF Serving >= {version}, target is {server_version}"
                )
    return ServabilityReport(
        path=path,
        exported_by=exported_by,
        op_counts=dict(sorted(op_counts.items())),
        core_ops=sorted(
            op for op in op_counts if op in core and op not in NEVER_SERVABLE_OPS
        ),
        tf_text_ops=tf_text_ops,
        min_server_version=min_version,
        problems=problems,
        notes=notes,
    )


def check_servability(path, server_version=None):
    """Like `inspect_saved_model`, but raises `ServabilityError` listing every problem.

    Returns:
        The `ServabilityReport` when the SavedModel is servable.
    """
    report = inspect_saved_model(path, server_version)
    if not report.ok:
        raise ServabilityError(
            f"SavedModel {report.path} cannot be served by TF Serving"
            + (f" {server_version}" if server_version else "")
            + ":\n"
            + "\n".join(f"  - {problem}" for problem in report.problems)
        )
    return report
