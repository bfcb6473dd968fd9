"""Runs a SavedModel signature in a fresh Python that imports only tensorflow + tensorflow_text.

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
# tensorflow_text. It reports the top-level modules it ended up with so callers can
# check that nothing else was imported.
_CHILD_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # registers the tf-text kernels, as the server links them

model_dir, signature, inputs_file, outputs_file = sys.argv[1:5]
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
            blob, shape = data[name].tobytes(), lengths.shape
            ends = np.cumsum(lengths.reshape(-1))
            items = [blob[e - n:e] for e, n in zip(ends, lengths.reshape(-1))]
            inputs[base] = tf.reshape(tf.constant(items, tf.string), shape)
        else:
            inputs[name] = tf.constant(data[name])
loaded = tf.saved_model.load(model_dir)
if signature not in loaded.signatures:
    raise SystemExit(f"signature {signature!r} not in {sorted(loaded.signatures)}")
outputs = loaded.signatures[signature](**inputs)
np.savez(outputs_file, **{name: value.numpy() for name, value in outputs.items()})
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
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


def load_in_clean_subprocess(path, signature, inputs, timeout=300):
    """Loads `path` in a subprocess that imports only tensorflow and tensorflow_text.

    Args:
        path: SavedModel directory.
        signature: signature name, e.g. "serving_default".
        inputs: dict input name -> array-like (lists of str are encoded as UTF-8 bytes).
        timeout: seconds before the subprocess is stopped.

    Returns:
        A `CleanLoadResult`: output name -> numpy array (tf.string outputs as bytes).

    Raises:
        RuntimeError: with the subprocess's error output if loading or running failed.
    """
    path = os.fspath(path)
    with tempfile.TemporaryDirectory() as workdir:
        inputs_file = os.path.join(workdir, "inputs.npz")
        outputs_file = os.path.join(workdir, "outputs.npz")
        arrays = {}
        for name, value in inputs.items():
            arrays.update(_as_arrays(name, value))
        np.savez(inputs_file, **arrays)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD_SCRIPT,
                path,
                signature,
                inputs_file,
                outputs_file,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
            # Run outside the repository so that nothing can be imported from it by accident.
            cwd=workdir,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"Running signature {signature!r} of {path} in a clean subprocess failed:\n"
                f"{result.stderr[-6000:]}"
            )
        outputs = CleanLoadResult()
        # Our own temporary file: string outputs come back as pickled object arrays.
        with np.load(outputs_file, allow_pickle=True) as data:
            outputs.update({name: data[name] for name in data.files})
    outputs.imported_modules = tuple(json.loads(result.stdout.strip().splitlines()[-1]))
    return outputs
