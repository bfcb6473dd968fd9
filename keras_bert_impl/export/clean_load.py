"""Runs SavedModel signatures in a fresh Python that imports only tensorflow + tensorflow_text.

This is what a server has: the graph and the kernels, none of this package's Python code.
If the SavedModel loads and runs there, it does not depend on objects that only exist in
the exporting process.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

# The child program: stdlib, numpy (already a tensorflow dependency), tensorflow,
# tensorflow_text. It loads the model once, runs every call (a failing call is reported,
# the others still run), and reports the top-level modules it ended up with so callers
# can check that nothing else was imported.
_CHILD_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # registers the tf-text kernels, as the server links them

model_dir, manifest_file, report_file = sys.argv[1:4]
with open(manifest_file) as f:
    calls = json.load(f)


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
                inputs[base] = tf.reshape(tf.constant(items, tf.string), lengths.shape)
            else:
                inputs[name] = tf.constant(data[name])
    return inputs


loaded = tf.saved_model.load(model_dir)
errors = {}
for index, (signature, inputs_file, outputs_file) in enumerate(calls):
    try:
        if signature not in loaded.signatures:
            raise KeyError(f"signature {signature!r} not in {sorted(loaded.signatures)}")
        outputs = loaded.signatures[signature](**read_inputs(inputs_file))
        np.savez(outputs_file, **{name: value.numpy() for name, value in outputs.items()})
    except Exception as error:
        errors[index] = f"{type(error).__name__}: {error}"[-3000:]
with open(report_file, "w") as f:
    json.dump({"errors": errors, "modules": sorted({n.split(".")[0] for n in sys.modules})}, f)
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
    path = os.fspath(path)
    with tempfile.TemporaryDirectory() as workdir:
        manifest = []
        for index, (signature, inputs) in enumerate(calls):
            arrays = {}
            for name, value in inputs.items():
                arrays.update(_as_arrays(name, value))
            inputs_file = os.path.join(workdir, f"inputs_{index}.npz")
            np.savez(inputs_file, **arrays)
            manifest.append(
                [signature, inputs_file, os.path.join(workdir, f"outputs_{index}.npz")]
            )
        manifest_file = os.path.join(workdir, "calls.json")
        report_file = os.path.join(workdir, "report.json")
        with open(manifest_file, "w") as f:
            json.dump(manifest, f)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        result = subprocess.run(
            [sys.executable, "-c", _CHILD_SCRIPT, path, manifest_file, report_file],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
            # Run outside the repository so that nothing can be imported from it by accident.
            cwd=workdir,
        )
        if result.returncode != 0 or not os.path.exists(report_file):
            raise RuntimeError(
                f"Loading {path} in a clean subprocess failed:\n{result.stderr[-6000:]}"
            )
        with open(report_file) as f:
            report = json.load(f)
        results = []
        for index, (signature, _, outputs_file) in enumerate(manifest):
            error = report["errors"].get(str(index))
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
