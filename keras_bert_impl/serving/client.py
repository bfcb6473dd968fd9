"""`Client`: TF Serving's gRPC API (tensorflow-serving-api stubs) with texts in, numpy/str out.

Works the same against `tensorflow_model_server` and `kbi-serve`. Each call has a
deadline; UNAVAILABLE (server starting, restarting, or a version still loading) is retried
with exponential back-off, every other error is raised at once as a `ServingError` with the
server's code and message. Large inputs are split into batches of `batch_size` examples.
"""

import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from keras_bert_impl.serving import tensors
from keras_bert_impl.serving.status import ServingError, code_from_number

# gRPC's default receive limit is 4 MB; batches of long texts or per-token outputs exceed it.
DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024 * 1024


def _as_input_array(value):
    """str/bytes (or nested lists of them) -> object array of bytes (str as UTF-8; never
    fixed-width numpy bytes, which drop trailing NULs); anything else -> numpy array."""
    if isinstance(value, (str, bytes)):
        value = [value]
    if isinstance(value, np.ndarray) and value.dtype.kind not in ("U", "S", "O"):
        return value
    array = np.asarray(value, dtype=object)
    flat = array.reshape(-1)
    if flat.size and all(isinstance(v, (str, bytes)) for v in flat):
        encoded = np.empty(array.shape, dtype=object)
        encoded.reshape(-1)[:] = [v.encode("utf-8") if isinstance(v, str) else v for v in flat]
        return encoded
    return np.asarray(value)


def _decode_strings(array):
    if array.dtype.kind in ("O", "S"):
        decoded = np.empty(array.shape, dtype=object)
        decoded.reshape(-1)[:] = [
            b.decode("utf-8", errors="replace") if isinstance(b, bytes) else b
            for b in array.reshape(-1)
        ]
        return decoded
    return array


def _concat_padded(parts):
    """Concatenates batch slices along axis 0, padding later axes to the widest slice
    as the exports pad (-1 for integers, "" for strings, 0 for floats): per-token,
    per-word and per-mask outputs follow each batch's own widths."""
    if len(parts) == 1:
        return parts[0]
    rank = parts[0].ndim
    if rank <= 1 or all(p.shape[1:] == parts[0].shape[1:] for p in parts):
        return np.concatenate(parts, axis=0)
    widest = [max(p.shape[axis] for p in parts) for axis in range(1, rank)]
    kind = parts[0].dtype.kind
    fill = "" if kind == "O" else -1 if kind == "i" else 0
    padded = []
    for part in parts:
        pad = [(0, 0)] + [(0, w - s) for w, s in zip(widest, part.shape[1:])]
        padded.append(np.pad(part, pad, constant_values=fill))
    return np.concatenate(padded, axis=0)


def make_example(features):
    """dict name -> value(s) (str, bytes, int, float or a list of one kind) -> tf.train.Example."""
    example = tf.train.Example()
    for name, value in features.items():
        values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
        values = list(values)
        feature = example.features.feature[name]
        if all(isinstance(v, (str, bytes)) for v in values):
            feature.bytes_list.value.extend(
                v.encode("utf-8") if isinstance(v, str) else v for v in values
            )
        elif all(isinstance(v, (int, np.integer)) for v in values):
            feature.int64_list.value.extend(int(v) for v in values)
        else:
            feature.float_list.value.extend(float(v) for v in values)
    return example


class Client:
    """A TF Serving client for one model.

    Args:
        target: "host:port" of the gRPC API.
        model_name: the model to call.
        version: a specific version (default: the latest the server serves).
        version_label: a version label instead of a version.
        timeout: deadline of each call, in seconds.
        max_retries: retries after UNAVAILABLE (0: none).
        backoff: first wait before a retry, doubled each time (seconds).
        batch_size: split larger inputs into calls of at most this many examples.
        max_message_bytes: send/receive message size limit of the channel.
        root_certificates: PEM bytes (or a file path) of the CA: use TLS.
        private_key, certificate_chain: PEM bytes or file paths for client authentication.
    """

    def __init__(
        self,
        target,
        model_name,
        version=None,
        version_label=None,
        timeout=30.0,
        max_retries=5,
        backoff=0.1,
        batch_size=None,
        max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES,
        root_certificates=None,
        private_key=None,
        certificate_chain=None,
    ):
        if version is not None and version_label is not None:
            raise ValueError("Give version or version_label, not both.")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.model_name = model_name
        self.version = version
        self.version_label = version_label
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.batch_size = batch_size
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        if root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read_pem(root_certificates),
                private_key=_read_pem(private_key),
                certificate_chain=_read_pem(certificate_chain),
            )
            self._channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # ------------------------------------------------------------ plumbing

    def _fill_spec(self, spec, signature_name=None):
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = int(self.version)
        if self.version_label is not None:
            spec.version_label = self.version_label
        if signature_name:
            spec.signature_name = signature_name

    def _call(self, method, request):
        """One RPC with a deadline, retried with back-off on UNAVAILABLE only."""
        attempt = 0
        while True:
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as error:
                code = error.code()
                if code == grpc.StatusCode.UNAVAILABLE and attempt < self.max_retries:
                    time.sleep(self.backoff * 2**attempt)
                    attempt += 1
                    continue
                raise ServingError(code, error.details() or str(code)) from None

    def _batches(self, count):
        size = self.batch_size or max(count, 1)
        return [slice(start, min(start + size, count)) for start in range(0, count, size)] or [
            slice(0, 0)
        ]

    # ------------------------------------------------------------ API

    def predict(self, inputs, signature_name="", output_filter=()):
        """Predict on a dict input alias -> array (str or lists of str for string inputs).

        Returns:
            dict output alias -> numpy array (string outputs as object arrays of str).
        """
        arrays = {name: _as_input_array(value) for name, value in inputs.items()}
        batch = min((a.shape[0] for a in arrays.values() if a.ndim), default=0)
        slices = self._batches(batch) if self.batch_size else [slice(None)]
        results = []
        for part in slices:
            request = predict_pb2.PredictRequest()
            self._fill_spec(request.model_spec, signature_name)
            for name, array in arrays.items():
                request.inputs[name].CopyFrom(
                    tensors.to_proto(array[part] if array.ndim else array)
                )
            request.output_filter.extend(output_filter)
            response = self._call(self._predictions.Predict, request)
            results.append(
                {k: _decode_strings(tensors.to_numpy(v)) for k, v in response.outputs.items()}
            )
        return {name: _concat_padded([r[name] for r in results]) for name in results[0]}

    def _example_input(self, request, examples, context):
        target = (
            request.input.example_list_with_context
            if context is not None
            else request.input.example_list
        )
        if context is not None:
            target.context.CopyFrom(make_example(context))
        for example in examples:
            target.examples.add().CopyFrom(
                example if isinstance(example, tf.train.Example) else make_example(example)
            )

    def classify(self, examples, signature_name="", context=None):
        """Classify tf.Examples (or dicts of features).

        Returns:
            list (one per example) of lists of (label, score).
        """
        results = []
        for part in self._batches(len(examples)):
            request = classification_pb2.ClassificationRequest()
            self._fill_spec(request.model_spec, signature_name)
            self._example_input(request, examples[part], context)
            response = self._call(self._predictions.Classify, request)
            results += [
                [(c.label, c.score) for c in classification.classes]
                for classification in response.result.classifications
            ]
        return results

    def regress(self, examples, signature_name="", context=None):
        """Regress tf.Examples (or dicts of features) -> float32 numpy array [batch]."""
        values = []
        for part in self._batches(len(examples)):
            request = regression_pb2.RegressionRequest()
            self._fill_spec(request.model_spec, signature_name)
            self._example_input(request, examples[part], context)
            response = self._call(self._predictions.Regress, request)
            values += [r.value for r in response.result.regressions]
        return np.asarray(values, np.float32)

    def get_model_metadata(self):
        """(version, dict signature name -> SignatureDef proto) of the served version."""
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._fill_spec(request.model_spec)
        request.metadata_field.append("signature_def")
        response = self._call(self._predictions.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return response.model_spec.version.value, dict(signature_map.signature_def)

    def get_model_status(self):
        """list of (version, state name, error code name, error message), newest first."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._fill_spec(request.model_spec)
        response = self._call(self._models.GetModelStatus, request)
        state_names = get_model_status_pb2.ModelVersionStatus.State
        return [
            (
                s.version,
                state_names.Name(s.state),
                code_from_number(s.status.error_code).name,
                s.status.error_message,
            )
            for s in response.model_version_status
        ]


def _read_pem(value):
    if value is None or isinstance(value, bytes):
        return value
    with open(value, "rb") as f:
        return f.read()
