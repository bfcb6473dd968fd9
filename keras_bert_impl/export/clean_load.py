"""Runs SavedModel signatures in a fresh Python that imports only tensorflow + tensorflow_text.

This is what a server has: the graph and the kernels, none of this package's Python code.
The child loads the way tensorflow_model_server does, not with `tf.saved_model.load`: the
MetaGraphDef tagged "serve" goes into a session (variables restored by the saver, then the
init op), and a signature runs by feeding and fetching its SignatureDef's tensor names.
(A SavedModel can pass `tf.saved_model.load`, which rebuilds Python objects from the
object graph, and still fail in a session, e.g. when the graph reads variables the saver
does not restore.)
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

# The child program: stdlib, numpy (already a tensorflow dependency), tensorflow,
# tensorflow_text. It loads each model once, in a graph and session of its own, runs
# every call (a failing load or call is reported, the others still run), and reports the
# top-level modules it ended up with so callers can check that nothing else was imported.
_CHILD_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # registers the tf-text kernels, as the server links them
from tensorflow.core.protobuf import config_pb2

manifest_file, report_file = sys.argv[1:3]
with open(manifest_file) as f:
    jobs = json.load(f)


def read_inputs(inputs_file):
    inputs = {}
    with np.load(inputs_file) as data:
        for name in data.files:
            if name.endswith("__lengths"):
                continue
            if name.endswith("__bytes"):
                # Strings travel as concatenated bytes + lengths: fixed-width numpy bytes
                # would drop trailing NUL bytes (serialized protos can end with one).
                base = name[: -len("__bytes")]
                lengths = data[base + "__lengths"]
                blob, flat = data[name].tobytes(), lengths.reshape(-1)
                ends = np.cumsum(flat)
                items = [blob[e - n:e] for e, n in zip(ends, flat)]
                array = np.empty(len(items), dtype=object)
                array[:] = items
                inputs[base] = array.reshape(lengths.shape)
            else:
                inputs[name] = data[name]
    return inputs


load_errors, errors = {}, {}
for job, (model_dir, calls) in enumerate(jobs):
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    try:
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], model_dir)
    except Exception as error:
        load_errors[job] = f"{type(error).__name__}: {error}"[-6000:]
        continue
    for index, (signature, inputs_file, outputs_file) in enumerate(calls):
        try:
            if signature not in meta_graph.signature_def:
                raise KeyError(f"signature {signature!r} not in {sorted(meta_graph.signature_def)}")
            signature_def = meta_graph.signature_def[signature]
            inputs = read_inputs(inputs_file)
            if set(inputs) != set(signature_def.inputs):
                raise KeyError(
                    f"inputs {sorted(inputs)} do not match the signature's "
                    f"{sorted(signature_def.inputs)}"
                )
            options = config_pb2.CallableOptions()
            names = sorted(inputs)
            outputs = sorted(signature_def.outputs)
            options.feed.extend(signature_def.inputs[name].name for name in names)
            options.fetch.extend(signature_def.outputs[name].name for name in outputs)
            run = session._make_callable_from_options(options)
            values = run(*[inputs[name] for name in names])
            np.savez(outputs_file, **dict(zip(outputs, values)))
        except Exception as error:
            errors[f"{job}:{index}"] = f"{type(error).__name__}: {error}"[-3000:]
    session.close()
with open(report_file, "w") as f:
    modules = sorted({n.split(".")[0] for n in sys.modules})
    json.dump({"load_errors": load_errors, "errors": errors, "modules": modules}, f)
"""


def _as_arrays(name, value):
    """{file key: array}: strings as concatenated bytes + lengths (no pickling needed, and
    no NUL bytes lost); the rest numpy arrays."""
    array = np.asarray(value)
    if array.dtype.kind not in ("U", "O", "S"):
        return {name: array}
    items = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in array.reshape(-1)]
    lengths = np.asarray([len(item) for item in items], np.int64).reshape(array.shape)
    blob = np.frombuffer(b"".join(items), dtype=np.uint8)
    return {f"{name}__bytes": blob, f"{name}__lengths": lengths}


class CleanLoadResult(dict):
    """Signature outputs (name -> numpy array); `imported_modules` lists the child's modules."""

    imported_modules = ()


class CleanCallError(RuntimeError):
    """One signature call failed in the clean process."""


def run_in_clean_subprocess(path, calls, timeout=600):
    """Loads `path` once in a clean subprocess and runs every (signature, inputs) call.

    Args:
        path: SavedModel directory.
        calls: list of (signature name, dict input name -> array-like; str are UTF-8 encoded).
        timeout: seconds before the subprocess is stopped.

    Returns:
        list with, per call, a `CleanLoadResult` or a `CleanCallError` (not raised).

    Raises:
        RuntimeError: if the SavedModel could not be loaded at all.
    """
    (results,) = run_many_in_clean_subprocess([(path, calls)], timeout=timeout)
    if isinstance(results, Exception):
        raise results
    return results


def run_many_in_clean_subprocess(jobs, timeout=600):
    """`run_in_clean_subprocess` for several SavedModels in one clean subprocess
    (importing TensorFlow is most of the cost of a small model's clean load).

    Args:
        jobs: list of (SavedModel directory, calls as in `run_in_clean_subprocess`).
        timeout: seconds before the subprocess is stopped.

    Returns:
        per job, the list `run_in_clean_subprocess` returns, or a RuntimeError (not
        raised) when that SavedModel could not be loaded.

    Raises:
        RuntimeError: if the subprocess itself failed.
    """
    with tempfile.TemporaryDirectory() as workdir:
        manifest = []
        for job, (path, calls) in enumerate(jobs):
            entries = []
            for index, (signature, inputs) in enumerate(calls):
                arrays = {}
                for name, value in inputs.items():
                    arrays.update(_as_arrays(name, value))
                inputs_file = os.path.join(workdir, f"inputs_{job}_{index}.npz")
                np.savez(inputs_file, **arrays)
                entries.append(
                    [
                        signature,
                        inputs_file,
                        os.path.join(workdir, f"outputs_{job}_{index}.npz"),
                    ]
                )
            # Absolute: the child runs in `workdir`.
            manifest.append([os.path.abspath(os.fspath(path)), entries])
        manifest_file = os.path.join(workdir, "calls.json")
        report_file = os.path.join(workdir, "report.json")
        with open(manifest_file, "w") as f:
            json.dump(manifest, f)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        result = subprocess.run(
            [sys.executable, "-c", _CHILD_SCRIPT, manifest_file, report_file],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
            # Run outside the repository so that nothing can be imported from it by accident.
            cwd=workdir,
        )
        paths = ", ".join(path for path, _ in manifest)
        if result.returncode != 0 or not os.path.exists(report_file):
            raise RuntimeError(
                f"Loading {paths} in a clean subprocess failed:\n{result.stderr[-6000:]}"
            )
        with open(report_file) as f:
            report = json.load(f)
        return [
            _job_results(job, path, entries, report)
            for job, (path, entries) in enumerate(manifest)
        ]


def _job_results(job, path, entries, report):
    load_error = report["load_errors"].get(str(job))
    if load_error is not None:
        return RuntimeError(f"Loading {path} in a clean subprocess failed: {load_error}")
    results = []
    for index, (signature, _, outputs_file) in enumerate(entries):
        error = report["errors"].get(f"{job}:{index}")
        if error is not None:
            results.append(
                CleanCallError(f"signature {signature!r} failed in a clean process: {error}")
            )
            continue
        outputs = CleanLoadResult()
        # Our own temporary file: string outputs come back as pickled object arrays.
        with np.load(outputs_file, allow_pickle=True) as data:
            outputs.update({name: data[name] for name in data.files})
        outputs.imported_modules = tuple(report["modules"])
        results.append(outputs)
    return results


def load_in_clean_subprocess(path, signature, inputs, timeout=300):
    """Runs one signature of `path` in a subprocess that imports only tensorflow and
    tensorflow_text.

    Returns:
        A `CleanLoadResult`: output name -> numpy array (tf.string outputs as bytes).

    Raises:
        RuntimeError: with the subprocess's error output if loading or running failed.
    """
    (result,) = run_in_clean_subprocess(path, [(signature, inputs)], timeout=timeout)
    if isinstance(result, Exception):
        raise RuntimeError(f"Running signature {signature!r} of {path}: {result}")
    return result
