"""Batching parameters written with an export, for TF Serving's server-side batching.

Two copies of one text-format BatchingParameters:
- `VERSION/batching_params.pbtxt`: where tensorflow_model_server reads a version's own
  parameters with `--enable_batching --enable_per_model_batching_parameters`
  (servables/tensorflow/bundle_factory_util.cc looks in the SavedModel directory itself);
- `export_dir/batching_parameters.txt`, for `--enable_batching
  --batching_parameters_file=...` (written once: a tuned file is never replaced).

The values suit the export: the graph pads each batch to its length bucket, so every
(bucket, batch size) pair is a shape the runtime prepares once; `allowed_batch_sizes` as
powers of two keep those few. `max_batch_size` bounds a batch at about
`TOKENS_PER_BATCH` tokens of the longest bucket, and the short timeout trades at most a
millisecond of latency for merged requests; ragged id inputs are padded
(`pad_variable_length_inputs`) instead of refused.
"""

import os

from keras_bert_impl.serving import batching_parameters

PER_VERSION_FILE = batching_parameters.PER_MODEL_FILE
SERVER_FILE = "batching_parameters.txt"
TOKENS_PER_BATCH = 4096
MIN_BATCH_SIZE, MAX_BATCH_SIZE = 8, 64
BATCH_TIMEOUT_MICROS = 1000


def default_max_batch_size(max_seq_length):
    """The power of two nearest below TOKENS_PER_BATCH / max_seq_length, within [8, 64]."""
    size = MIN_BATCH_SIZE
    while size * 2 <= min(MAX_BATCH_SIZE, TOKENS_PER_BATCH // max(1, max_seq_length)):
        size *= 2
    return size


def batching_text(max_seq_length, max_batch_size=None,
                  batch_timeout_micros=BATCH_TIMEOUT_MICROS):
    """Text-format BatchingParameters for an export of sequences up to `max_seq_length`."""
    if max_batch_size is None:
        max_batch_size = default_max_batch_size(max_seq_length)
    if isinstance(max_batch_size, bool) or int(max_batch_size) < 1:
        raise ValueError(
            f"max_batch_size (batching) must be a positive integer, got {max_batch_size!r}."
        )
    if int(batch_timeout_micros) < 0:
        raise ValueError(
            f"batch_timeout_micros (batching) must be 0 or positive, got {batch_timeout_micros!r}."
        )
    max_batch_size = int(max_batch_size)
    allowed = []
    size = 1
    while size < max_batch_size:
        allowed.append(size)
        size *= 2
    allowed.append(max_batch_size)
    header = (
        "# TF Serving BatchingParameters (text format) written by kbi-export: use with\n"
        "#   --enable_batching --batching_parameters_file=THIS_FILE, or leave it in the\n"
        "#   version directory as batching_params.pbtxt with\n"
        "#   --enable_batching --enable_per_model_batching_parameters.\n"
        "# num_batch_threads (default: the number of cores) and max_enqueued_batches\n"
        "# (default 10) are left to the server's defaults.\n"
    )
    return header + batching_parameters.to_text(
        max_batch_size=max_batch_size,
        allowed_batch_sizes=allowed,
        batch_timeout_micros=int(batch_timeout_micros),
        pad_variable_length_inputs=True,
    )


def write_version_file(version_dir, text):
    """The version's batching_params.pbtxt (written before the version appears)."""
    with open(os.path.join(version_dir, PER_VERSION_FILE), "w", encoding="utf-8") as f:
        f.write(text)


def write_server_file(export_dir, text):
    """The export's batching_parameters.txt, unless one is there already."""
    server_file = os.path.join(export_dir, SERVER_FILE)
    if not os.path.exists(server_file):
        with open(server_file, "w", encoding="utf-8") as f:
            f.write(text)


def check_batching_files(version_dir):
    """(problems, notes) about the batching files an export carries, as TF Serving reads them."""
    problems, notes = [], []
    candidates = [
        (os.path.join(version_dir, PER_VERSION_FILE), "--enable_per_model_batching_parameters"),
        (
            os.path.join(os.path.dirname(os.path.abspath(version_dir)), SERVER_FILE),
            "--batching_parameters_file",
        ),
    ]
    for path, flag in candidates:
        if not os.path.exists(path):
            continue
        try:
            params = batching_parameters.read(path, flag=os.path.basename(path))
        except batching_parameters.BatchingParametersError as error:
            problems.append(str(error))
            continue
        queue = params.queue
        notes.append(
            f"{os.path.basename(path)} (for --enable_batching {flag}): max_batch_size "
            f"{queue.max_batch_size}, allowed_batch_sizes {list(queue.allowed_batch_sizes)}, "
            f"batch_timeout_micros {queue.batch_timeout_micros}"
        )
    return problems, notes
