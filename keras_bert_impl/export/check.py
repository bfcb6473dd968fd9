"""kbi-check-servable's checks: what TF Serving would do with a SavedModel, without the server.

1. The op check (`servability.inspect_saved_model`): every op is core TensorFlow or in the
   tf-text library the target server links; no Python functions; no XLA must-compile.
2. A clean process (tensorflow + tensorflow_text only) loads the SavedModel and replays
   every request of `assets.extra/tf_serving_warmup_requests`, as the server does on load.
3. With the Keras model: each replayed signature's outputs are compared with the Keras
   model's on the same inputs (float outputs within `atol`, the rest exactly). The Keras
   side pads every batch to `max_seq_length`, so length bucketing is checked as well.
4. Batching parameters the export carries (`batching_params.pbtxt`, and the
   `batching_parameters.txt` beside the version) parse and pass TF Serving's checks.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from keras_bert_impl.export import warmup
from keras_bert_impl.export.batching_files import check_batching_files
from keras_bert_impl.export.clean_load import run_many_in_clean_subprocess
from keras_bert_impl.export.servability import inspect_saved_model, parse_version


@dataclasses.dataclass
class CheckReport:
    """Result of `check_servable`.

    Attributes:
        path: the SavedModel directory.
        server_version: the target TF Serving release (None: any).
        ops: the op check's `ServabilityReport`.
        replayed: signature name of each warmup request replayed without error.
        max_abs_diff: signature -> largest |SavedModel - Keras| over its float outputs.
        problems: what would fail on the server, each naming its op, function or signature.
        notes: what is worth knowing but not an error.
    """

    path: str
    server_version: str
    ops: object
    replayed: list = dataclasses.field(default_factory=list)
    max_abs_diff: dict = dataclasses.field(default_factory=dict)
    problems: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return not self.problems

    def summary(self):
        lines = [self.ops.summary().split("\n  note")[0].split("\n  PROBLEM")[0]]
        if self.replayed:
            lines.append(
                f"  clean-process load: replayed {len(self.replayed)} warmup requests "
                f"({', '.join(sorted(set(self.replayed)))})"
            )
        for signature, diff in sorted(self.max_abs_diff.items()):
            lines.append(f"  {signature}: max |SavedModel - Keras| = {diff:.3g}")
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  PROBLEM: {problem}" for problem in self.problems]
        lines.append(
            "  SERVABLE" + (f" on TF Serving {self.server_version}" if self.server_version else "")
            if self.ok
            else f"  NOT SERVABLE: {len(self.problems)} problem(s)"
        )
        return "\n".join(lines)


def warmup_calls(logs):
    """PredictionLog records -> [(signature name, inputs dict)] as the server would run them."""
    from keras_bert_impl.serving.requests import serialized_examples

    calls = []
    for log in logs:
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            request = log.predict_log.request
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        elif kind in ("classify_log", "regress_log"):
            request = getattr(log, kind).request
            inputs = {"inputs": np.asarray(serialized_examples(request.input), dtype=object)}
        else:
            raise ValueError(f"warmup record of kind {kind!r} is not supported")
        calls.append((request.model_spec.signature_name or "serving_default", inputs))
    return calls


def reference_module(saved_model_dir, keras_model):
    """The export's serving module rebuilt around `keras_model`, padding to max length."""
    from keras_bert_impl.export.exporter import VOCAB_FILE, read_model_card
    from keras_bert_impl.export.task_modules import MODULES_BY_TASK
    from keras_bert_impl.export.text_inputs import TextInputs
    from keras_bert_impl.text import Tokenizer

    card = read_model_card(saved_model_dir)
    if card is None:
        raise ValueError(
            f"{saved_model_dir} has no assets.extra/model_card.json: it was not written by "
            "kbi-export, so its signatures cannot be recomputed from a Keras model."
        )
    if card["task"] not in MODULES_BY_TASK:
        raise ValueError(f"model card task {card['task']!r} is not one of {sorted(MODULES_BY_TASK)}")
    tokenizer = Tokenizer(
        os.path.join(saved_model_dir, VOCAB_FILE), lowercase=card["lowercase"]
    )
    text_inputs = TextInputs(tokenizer, card["max_seq_length"], bucket_lengths=None)
    return MODULES_BY_TASK[card["task"]].from_card(keras_model, text_inputs, card)


def _compare(signature, got, want, atol, problems):
    worst = 0.0
    for name, expected in want.items():
        expected = np.asarray(expected)
        if name not in got:
            problems.append(f"signature {signature}: output {name!r} missing from the SavedModel")
            continue
        actual = np.asarray(got[name])
        if actual.shape != expected.shape:
            problems.append(
                f"signature {signature}: output {name!r} has shape {actual.shape}, the Keras "
                f"model's {expected.shape}"
            )
            continue
        if expected.dtype.kind == "f":
            diff = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
            worst = max(worst, diff)
            if not diff <= atol:
                problems.append(
                    f"signature {signature}: output {name!r} differs from the Keras model by "
                    f"{diff:.3g} > {atol:g}"
                )
        elif not np.array_equal(actual, expected):
            problems.append(
                f"signature {signature}: output {name!r} differs from the Keras model"
            )
    return worst


def check_servable(
    saved_model_dir, server_version=None, keras_model=None, atol=1e-5, clean_load=True
):
    """Runs the checks above; never raises for an unservable model (see `CheckReport`).

    Args:
        saved_model_dir: a SavedModel directory (one version).
        server_version: target TF Serving release, e.g. "2.10".
        keras_model: the exported Keras model (object or .keras path), to compare outputs.
        atol: largest allowed |difference| of float outputs.
        clean_load: False runs the op check only (no subprocess).
    """
    if not clean_load:
        return _op_report(os.fspath(saved_model_dir), server_version)
    (report,) = check_servables(
        [(saved_model_dir, keras_model)], server_version=server_version, atol=atol
    )
    return report


def check_servables(exports, server_version=None, atol=1e-5):
    """`check_servable` for several exports, with one clean process loading them all.

    Args:
        exports: list of (SavedModel directory, Keras model or .keras path or None).
        server_version, atol: as in `check_servable`.

    Returns:
        one `CheckReport` per export.
    """
    reports, jobs = [], []
    for saved_model_dir, _ in exports:
        report = _op_report(os.fspath(saved_model_dir), server_version)
        reports.append(report)
        jobs.append((report.path, _replay_calls(report)))
    try:
        outcomes = run_many_in_clean_subprocess(jobs)
    except RuntimeError as error:
        outcomes = [error] * len(jobs)
    for report, (_, calls), outcome, (_, keras_model) in zip(
        reports, jobs, outcomes, exports
    ):
        if isinstance(outcome, RuntimeError):
            report.problems.append(f"clean-process load failed: {str(outcome)[-2000:]}")
            continue
        _check_replays(report, calls, outcome, keras_model, atol)
    return reports


def _op_report(path, server_version):
    ops = inspect_saved_model(path, server_version)
    report = CheckReport(path=path, server_version=server_version, ops=ops)
    report.problems += ops.problems
    report.notes += ops.notes
    problems, notes = check_batching_files(path)
    report.problems += problems
    report.notes += notes
    if server_version and ops.exported_by not in ("unknown", ""):
        exported = ops.exported_by.split("-")[0].split("rc")[0]
        try:
            newer = parse_version(exported)[:2] > parse_version(server_version)[:2]
        except ValueError:
            newer = False
        if newer:
            report.notes.append(
                f"exported by TensorFlow {ops.exported_by}, newer than TF Serving "
                f"{server_version}: ops above are checked, but newer op attributes can still "
                "be rejected at load"
            )
    return report


def _replay_calls(report):
    logs = warmup.read_warmup_file(report.path)
    if not logs:
        report.notes.append(
            f"no {warmup.WARMUP_FILE}: nothing to replay; the clean-process load runs no request"
        )
    try:
        return warmup_calls(logs)
    except ValueError as error:
        report.problems.append(f"{warmup.WARMUP_FILE}: {error}")
        return []


def _check_replays(report, calls, results, keras_model, atol):
    path = report.path
    for index, ((signature, _), result) in enumerate(zip(calls, results)):
        if isinstance(result, Exception):
            report.problems.append(f"warmup request {index} ({signature}): {result}")
        else:
            report.replayed.append(signature)
            leaked = {"keras_bert_impl", "keras_hub"} & set(result.imported_modules)
            if leaked:
                report.problems.append(
                    f"the clean process imported {sorted(leaked)}: the SavedModel needs Python "
                    "objects the server does not have"
                )
    if keras_model is None:
        return report
    if isinstance(keras_model, (str, os.PathLike)):
        import keras

        import keras_bert_impl.models  # noqa: F401 - registers the classes to deserialize

        keras_model = keras.saving.load_model(keras_model)
    module = reference_module(path, keras_model)
    replayed = set()
    for (signature, inputs), result in zip(calls, results):
        if isinstance(result, Exception):
            continue
        function = module.serving_signatures.get(signature)
        if function is None:
            report.problems.append(f"signature {signature}: not one the Keras task defines")
            continue
        want = function.python_function(**{k: tf.constant(v) for k, v in inputs.items()})
        want = {k: v.numpy() for k, v in want.items()}
        diff = _compare(signature, result, want, atol, report.problems)
        report.max_abs_diff[signature] = max(report.max_abs_diff.get(signature, 0.0), diff)
        replayed.add(signature)
    for signature in sorted(set(module.serving_signatures) - replayed):
        report.problems.append(
            f"signature {signature}: no warmup request exercises it, so it was not compared"
        )
    return report
