"""One loaded SavedModel version: runs Predict / Classify / Regress the way TF Serving does.

Like tensorflow_model_server, it loads the MetaGraphDef tagged "serve" into a graph and a
session (restoring variables and running the init op), and runs a signature by feeding and
fetching the tensor names of its SignatureDef: TF1 and TF2 SavedModels alike, with none of
the exporting program's Python objects. The session takes the server's ConfigProto (thread
pools, like --tensorflow_intra_op_parallelism) and, with --enable_batching, runs go through a
`batching.ServableBatcher` (TF Serving wraps the session in a BatchingSession). Feeds are
not shape-checked against the placeholders (the C++ session does not either); TF2
SavedModels' function arguments are, up front, so the request fails with a clear
INVALID_ARGUMENT instead of inside the graph. tensorflow_text is imported for its kernels,
which the real server links.
"""

import os

import threading

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401 - registers the tf-text kernels the server links
from tensorflow.core.protobuf import config_pb2

from keras_bert_impl import internals
from keras_bert_impl.serving import status
from keras_bert_impl.serving import tensors

DEFAULT_SIGNATURE = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# TF Serving replays at most this many warmup records.
MAX_WARMUP_RECORDS = 1000


def _shape_compatible(shape, proto_shape):
    if proto_shape.unknown_rank:
        return True
    if len(shape) != len(proto_shape.dim):
        return False
    return all(d.size < 0 or d.size == s for d, s in zip(proto_shape.dim, shape))


def _shape_text(proto_shape):
    if proto_shape.unknown_rank:
        return "<unknown>"
    return "[" + ",".join(str(d.size) for d in proto_shape.dim) + "]"


class Servable:
    """A SavedModel version loaded for serving.

    Args:
        name: model name.
        version: integer version.
        path: the version's directory.
        session_config: `tf.compat.v1.ConfigProto` of its session (None: defaults).
        batcher: a `batching.ServableBatcher` that merges concurrent runs, or None.
    """

    def __init__(self, name, version, path, session_config=None, batcher=None):
        self.name = name
        self.version = int(version)
        self.path = path
        self._batcher = batcher
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph, config=session_config)
        with self._graph.as_default():
            self.meta_graph = tf.compat.v1.saved_model.loader.load(
                self._session, ["serve"], path
            )
        self.signature_defs = dict(self.meta_graph.signature_def)
        self._checks_shapes = bool(self.meta_graph.object_graph_def.nodes)
        self._callables = {}
        self._callables_lock = threading.Lock()

    def _callable(self, signature, input_aliases, output_aliases):
        key = (id(signature), tuple(input_aliases), tuple(output_aliases))
        with self._callables_lock:
            function = self._callables.get(key)
            if function is None:
                options = config_pb2.CallableOptions()
                options.feed.extend(signature.inputs[a].name for a in input_aliases)
                options.fetch.extend(signature.outputs[a].name for a in output_aliases)
                try:
                    function = internals.session_callable(self._session, options)
                except tf.errors.OpError as error:
                    raise status.from_tf_error(error) from error
                self._callables[key] = function
        return function

    # ------------------------------------------------------------ signatures

    def signature(self, signature_name):
        """(name, SignatureDef); FAILED_PRECONDITION when it does not exist."""
        name = signature_name or DEFAULT_SIGNATURE
        if name not in self.signature_defs:
            raise status.failed_precondition(
                f'Serving signature key "{name}" not found.'
            )
        return name, self.signature_defs[name]

    def signature_def_map(self):
        """The SignatureDefs as GetModelMetadata returns them."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        result = get_model_metadata_pb2.SignatureDefMap()
        for key, value in self.signature_defs.items():
            result.signature_def[key].CopyFrom(value)
        return result

    def _run(self, signature, inputs, output_aliases=()):
        """Feeds `inputs` (alias -> array) and fetches `output_aliases` (default: all),
        batched with concurrent runs when the server batches."""
        output_aliases = list(output_aliases) or sorted(signature.outputs)
        if self._batcher is not None:
            return self._batcher.run(signature, inputs, output_aliases, self._run_now)
        return self._run_now(signature, inputs, output_aliases)

    def _run_now(self, signature, inputs, output_aliases):
        input_aliases = sorted(inputs)
        function = self._callable(signature, input_aliases, output_aliases)
        try:
            values = function(*[inputs[alias] for alias in input_aliases])
        except tf.errors.OpError as error:
            raise status.from_tf_error(error) from error
        return dict(zip(output_aliases, values))

    # ------------------------------------------------------------ Predict

    def validate_inputs(self, signature, inputs):
        """TF Serving's checks on a Predict request's inputs (names, dtypes, shapes)."""
        expected = signature.inputs
        if set(inputs) != set(expected):
            sent, wanted = sorted(inputs), sorted(expected)
            raise status.invalid_argument(
                f"input size does not match signature: {len(sent)}!={len(wanted)} "
                f"len({{{','.join(sent)}}}) != len({{{','.join(wanted)}}}). "
                f"Sent extra: {{{','.join(sorted(set(sent) - set(wanted)))}}}. "
                f"Missing but required: {{{','.join(sorted(set(wanted) - set(sent)))}}}."
            )
        arrays = {}
        for index, alias in enumerate(sorted(expected)):
            info, value = expected[alias], inputs[alias]
            want = tf.dtypes.as_dtype(info.dtype)
            array = np.asarray(value)
            given = (
                tf.string
                if array.dtype.kind in ("O", "S", "U")
                else tf.dtypes.as_dtype(array.dtype)
            )
            if given != want:
                raise status.invalid_argument(
                    f"Expects arg[{index}] to be {tensors.dtype_name(want)} but "
                    f"{tensors.dtype_name(given)} is provided"
                )
            self.check_input_shape(signature, alias, array.shape)
            arrays[alias] = array
        return arrays

    def check_input_shape(self, signature, alias, shape):
        """INVALID_ARGUMENT when a TF2 signature's input `alias` cannot take `shape`.

        TF1 graphs take feeds of any shape for their placeholders (as the server's
        session does); TF2 functions reject incompatible shapes, so say so first.
        """
        info = signature.inputs.get(alias)
        if self._checks_shapes and info is not None and not _shape_compatible(
            shape, info.tensor_shape
        ):
            raise status.invalid_argument(
                f"input tensor alias {alias}: shape {list(shape)} is not compatible "
                f"with the signature's shape {_shape_text(info.tensor_shape)}"
            )

    def predict(self, signature_name, inputs, output_filter=()):
        """Runs a signature on numpy inputs.

        Returns:
            (signature name used, dict output alias -> numpy array).
        """
        name, signature = self.signature(signature_name)
        if signature.method_name not in (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):
            raise status.ServingError(
                status.grpc.StatusCode.INTERNAL,
                "Expected prediction signature method_name to be one of "
                f"{{{PREDICT_METHOD}, {CLASSIFY_METHOD}, {REGRESS_METHOD}}}. "
                f"Was: {signature.method_name}",
            )
        arrays = self.validate_inputs(signature, inputs)
        seen = set()
        for alias in output_filter:
            if alias not in signature.outputs:
                raise status.invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected "
                    f"to be in the set {{{','.join(sorted(signature.outputs))}}}."
                )
            if alias in seen:
                raise status.invalid_argument(f"duplicate output tensor alias: {alias}")
            seen.add(alias)
        return name, self._run(signature, arrays, output_filter)

    # ------------------------------------------------------------ Classify / Regress

    def check_example_signature(self, signature_name, method, kind):
        """(name, SignatureDef) of a classify/regress signature, after the checks TF
        Serving makes before running one ("classification" or "regression" `kind`)."""
        return self._example_signature(signature_name, method, kind)

    def _example_signature(self, signature_name, method, kind):
        name = signature_name or DEFAULT_SIGNATURE
        if name not in self.signature_defs:
            raise status.invalid_argument(
                f"No signature was found with the name: {name}"
            )
        signature = self.signature_defs[name]
        if signature.method_name != method:
            raise status.invalid_argument(
                f"Expected {kind} signature method_name to be {method}. "
                f"Was: {signature.method_name}"
            )
        if len(signature.inputs) != 1:
            raise status.invalid_argument("Expected one input Tensor.")
        if "inputs" not in signature.inputs:
            raise status.invalid_argument(
                f"No {kind} inputs found in SignatureDef: {signature}"
            )
        return name, signature

    def classify(self, signature_name, serialized_examples):
        """Runs a classify signature on serialized tf.Examples.

        Returns:
            (signature name, classes [batch, k] bytes or None, scores [batch, k] or None).
        """
        name, signature = self._example_signature(
            signature_name, CLASSIFY_METHOD, "classification"
        )
        if not 1 <= len(signature.outputs) <= 2 or not (
            {"classes", "scores"} & set(signature.outputs)
        ):
            raise status.invalid_argument(
                'Expected classification signature outputs to contain at least one of '
                f'"classes" or "scores". Signature was: {signature}'
            )
        if not serialized_examples:
            raise status.invalid_argument("Input is empty.")
        outputs = self._run(signature, {"inputs": _as_string_array(serialized_examples)})
        batch = len(serialized_examples)
        classes, scores = outputs.get("classes"), outputs.get("scores")
        for what, tensor in (("classes", classes), ("scores", scores)):
            if tensor is None:
                continue
            if tensor.ndim != 2:
                raise status.invalid_argument(
                    "Expected Tensor shape: [batch_size num_classes] but got "
                    f"{list(tensor.shape)}"
                )
            if tensor.shape[0] != batch:
                raise status.invalid_argument(
                    f"Expected {what} output batch size of {batch}. Got: {tensor.shape[0]}"
                )
        if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
            raise status.invalid_argument(
                "Tensors class and score should match in dim_size(1). Got "
                f"{classes.shape[1]} vs. {scores.shape[1]}"
            )
        return name, classes, scores

    def regress(self, signature_name, serialized_examples):
        """Runs a regress signature on serialized tf.Examples -> (name, values [batch])."""
        name, signature = self._example_signature(
            signature_name, REGRESS_METHOD, "regression"
        )
        if len(signature.outputs) != 1:
            raise status.invalid_argument("Expected one output Tensor.")
        if "outputs" not in signature.outputs:
            raise status.failed_precondition(
                f"No regression outputs found in SignatureDef: {signature}"
            )
        if not serialized_examples:
            raise status.invalid_argument("Input is empty.")
        outputs = self._run(signature, {"inputs": _as_string_array(serialized_examples)})
        values = outputs["outputs"]
        batch = len(serialized_examples)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1 or values.shape[0] != batch:
            raise status.invalid_argument(
                f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] "
                f"but got {list(outputs['outputs'].shape)}"
            )
        return name, values

    # ------------------------------------------------------------ warmup

    def warmup(self):
        """Replays assets.extra/tf_serving_warmup_requests; returns the number replayed."""
        from tensorflow_serving.apis import prediction_log_pb2

        from keras_bert_impl.serving import requests

        warmup_file = os.path.join(self.path, WARMUP_FILE)
        if not os.path.exists(warmup_file):
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(warmup_file):
            if count >= MAX_WARMUP_RECORDS:
                break
            log = prediction_log_pb2.PredictionLog()
            log.ParseFromString(record.numpy())
            kind = log.WhichOneof("log_type")
            if kind == "predict_log":
                requests.predict(self, log.predict_log.request)
            elif kind == "classify_log":
                requests.classify(self, log.classify_log.request)
            elif kind == "regress_log":
                requests.regress(self, log.regress_log.request)
            else:
                raise ValueError(
                    f"Unsupported log_type for warmup: {kind} in {warmup_file}"
                )
            count += 1
        return count


def _as_string_array(items):
    array = np.empty(len(items), dtype=object)
    array[:] = list(items)
    return array
