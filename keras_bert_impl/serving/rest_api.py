"""TF Serving's REST API (model_servers/http_rest_api_handler.cc); HTTP itself is rest_server.py.

GET  /v1/models/NAME[/versions/N|/labels/L]            -> model status
GET  /v1/models/NAME[/versions/N|/labels/L]/metadata   -> signature defs
POST /v1/models/NAME[/versions/N|/labels/L]:predict    -> "instances" (rows) or "inputs" (columns)
POST /v1/models/NAME[/versions/N|/labels/L]:classify   -> "examples" [, "context"]
POST /v1/models/NAME[/versions/N|/labels/L]:regress
Errors answer {"error": message} with TF Serving's HTTP mapping of the status code; a
client's mistake (a version past int64, JSON too deep, a lone surrogate, an integer out of
its dtype's range) is a 400, never a 500.
"""

import json
import logging
import re
import urllib.parse

import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    regression_pb2,
)

from keras_bert_impl.serving import status
from keras_bert_impl.serving import tensors

logger = logging.getLogger("kbi-serve")

_PREDICTION_PATH = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
    r":(classify|regress|predict)"
)
_STATUS_PATH = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
    r"(?:/(metadata))?"
)


def _message_to_dict(message):
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


INT64_MAX = 2**63 - 1


def _fill_model_spec(spec, name, version, label):
    spec.name = urllib.parse.unquote(name)
    if version is not None:
        if int(version) > INT64_MAX:  # http_rest_api_util.cc: absl::SimpleAtoi fails
            raise status.invalid_argument(f"Failed to convert version: {version} to numeric.")
        spec.version.value = int(version)
    if label is not None:
        spec.version_label = urllib.parse.unquote(label)


def _parse_body(body):
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise status.invalid_argument(f"JSON Parse error: {error}") from error
    except RecursionError as error:
        raise status.invalid_argument(
            "JSON Parse error: the document is nested too deeply"
        ) from error
    if not isinstance(document, dict):
        raise status.invalid_argument(
            "JSON Parse error: the request body must be a JSON object"
        )
    signature_name = document.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise status.invalid_argument(
            "JSON Value: not formatted correctly. 'signature_name' key must be a string value."
        )
    return document, signature_name


# ---------------------------------------------------------------- Predict


def _predict_inputs(document, signature, check_shape=None, may_hold_bools=True):
    """Row ("instances") or columnar ("inputs") JSON -> dict alias -> numpy array.

    `check_shape(alias, shape)` sees each input's shape before its values are converted.
    """
    has_rows, has_columns = "instances" in document, "inputs" in document
    if has_rows == has_columns:
        raise status.invalid_argument(
            "Missing 'inputs' or 'instances' key"
            if not has_rows
            else "Not formatted correctly expecting only one of 'inputs' or 'instances' keys "
            "exclusively"
        )
    infos = signature.inputs
    names = sorted(infos)

    def named(value):
        return isinstance(value, dict) and not tensors.is_b64(value)

    if has_rows:
        rows = document["instances"]
        if not isinstance(rows, list) or not rows:
            raise status.invalid_argument(
                "Expecting 'instances' to be a non-empty list (one element per example)"
            )
        if named(rows[0]):
            keys = set(rows[0])
            for row in rows:
                if not named(row) or set(row) != keys:
                    raise status.invalid_argument(
                        "Expecting object with the same named inputs in every instance, got "
                        f"{sorted(row) if named(row) else type(row).__name__}"
                    )
            columns = {key: [row[key] for row in rows] for key in keys}
        else:
            if len(names) != 1:
                raise status.invalid_argument(
                    "instances without input names need a signature with one input; "
                    f"this one has {{{','.join(names)}}}"
                )
            columns = {names[0]: rows}
    else:
        value = document["inputs"]
        columns = dict(value) if named(value) else (
            {names[0]: value} if len(names) == 1 else {"": value}
        )
    arrays = {}
    for key, value in columns.items():
        if key in infos:
            arrays[key] = tensors.from_json(
                value,
                tf.dtypes.as_dtype(infos[key].dtype),
                None if check_shape is None else lambda shape, key=key: check_shape(key, shape),
                may_hold_bools,
            )
        else:
            arrays[key] = None  # reported by the signature check below
    return arrays, has_rows


def _predict_outputs(outputs, rows):
    if not rows:
        if len(outputs) == 1:
            ((name, value),) = outputs.items()
            return {"outputs": tensors.to_json(value, name)}
        return {"outputs": {name: tensors.to_json(v, name) for name, v in outputs.items()}}
    batch = None
    for name, value in outputs.items():
        size = value.shape[0] if value.ndim else None
        if batch is None:
            batch = size
        elif size != batch:
            raise status.invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {size} expecting: {batch}"
            )
    converted = {name: tensors.to_json(v, name) for name, v in outputs.items()}
    if len(converted) == 1:
        return {"predictions": next(iter(converted.values()))}
    return {
        "predictions": [
            {name: converted[name][i] for name in converted} for i in range(batch or 0)
        ]
    }


# ---------------------------------------------------------------- Classify / Regress


def _feature(value, where):
    values = value if isinstance(value, list) else [value]
    feature = tf.train.Feature()
    if not values:
        return feature
    if all(isinstance(v, str) or tensors.is_b64(v) for v in values):
        feature.bytes_list.value.extend(tensors.from_json(values, tf.string).tolist())
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        for v in values:
            if not -INT64_MAX - 1 <= v <= INT64_MAX:
                raise status.invalid_argument(
                    f"Feature {where}: {v} does not fit an int64 feature"
                )
        feature.int64_list.value.extend(values)
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        feature.float_list.value.extend(values)
    else:
        raise status.invalid_argument(
            f"Feature {where}: expected a number, a string, {{\"b64\": ...}} or a list of one "
            f"kind, got {json.dumps(value)[:200]}"
        )
    return feature


def _example(obj, what):
    if not isinstance(obj, dict):
        raise status.invalid_argument(f"'{what}' must be a JSON object of features")
    example = tf.train.Example()
    for key, value in obj.items():
        example.features.feature[key].CopyFrom(_feature(value, key))
    return example


def _fill_input(document, input_proto):
    examples = document.get("examples")
    if not isinstance(examples, list) or not examples:
        raise status.invalid_argument("Expecting 'examples' to be a non-empty list")
    if "context" in document:
        target = input_proto.example_list_with_context
        target.context.CopyFrom(_example(document["context"], "context"))
    else:
        target = input_proto.example_list
    for example in examples:
        target.examples.add().CopyFrom(_example(example, "examples"))


# ---------------------------------------------------------------- dispatch


class RestApi:
    """Answers REST requests through a ServingApi (returns (http status, JSON object))."""

    def __init__(self, api):
        self.api = api

    def handle(self, method, path, body):
        try:
            return 200, self._dispatch(method, path, body)
        except status.ServingError as error:
            return error.http_status, {"error": error.message}
        except UnicodeEncodeError as error:
            # A lone surrogate ("\ud800") is valid JSON text but no UTF-8 string; rapidjson,
            # which TF Serving parses with, refuses it.
            return 400, {
                "error": f"JSON Parse error: The surrogate pair in string is invalid: {error}"
            }
        except Exception as error:  # noqa: BLE001 - reported to the client, server stays up
            logger.exception("Unexpected error while serving a REST request")
            return 500, {"error": f"{type(error).__name__}: {error}"}

    def _dispatch(self, method, path, body):
        path = urllib.parse.urlsplit(path).path
        malformed = status.invalid_argument(f"Malformed request: {method} {path}")
        if method == "POST":
            match = _PREDICTION_PATH.fullmatch(path)
            if not match:
                raise malformed
            name, version, label, verb = match.groups()
            return getattr(self, "_" + verb.lower())(name, version, label, body)
        if method == "GET":
            match = _STATUS_PATH.fullmatch(path)
            if not match:
                raise malformed
            name, version, label, metadata = match.groups()
            if not name:
                raise status.invalid_argument("Missing model name in request.")
            if metadata:
                return self._metadata(name, version, label)
            return self._status(name, version, label)
        raise malformed

    def _status(self, name, version, label):
        request = get_model_status_pb2.GetModelStatusRequest()
        _fill_model_spec(request.model_spec, name, version, label)
        return _message_to_dict(self.api.get_model_status(request))

    def _metadata(self, name, version, label):
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        _fill_model_spec(request.model_spec, name, version, label)
        request.metadata_field.append("signature_def")
        response = self.api.get_model_metadata(request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return {
            "model_spec": _message_to_dict(response.model_spec),
            "metadata": {"signature_def": _message_to_dict(signature_map)},
        }

    def _predict(self, name, version, label, body):
        from tensorflow_serving.apis import model_pb2

        document, signature_name = _parse_body(body)
        spec = model_pb2.ModelSpec()
        _fill_model_spec(spec, name, version, label)
        servable = self.api.manager.servable(spec)
        _, signature = servable.signature(signature_name)
        arrays, rows = _predict_inputs(
            document,
            signature,
            lambda alias, shape: servable.check_input_shape(signature, alias, shape),
            may_hold_bools=b"true" in body or b"false" in body,
        )
        _, outputs = servable.predict(signature_name, arrays)
        return _predict_outputs(outputs, rows)

    def _classify(self, name, version, label, body):
        document, signature_name = _parse_body(body)
        request = classification_pb2.ClassificationRequest()
        _fill_model_spec(request.model_spec, name, version, label)
        request.model_spec.signature_name = signature_name
        _fill_input(document, request.input)
        response = self.api.classify(request)
        return {
            "results": [
                [[c.label, c.score] for c in classification.classes]
                for classification in response.result.classifications
            ]
        }

    def _regress(self, name, version, label, body):
        document, signature_name = _parse_body(body)
        request = regression_pb2.RegressionRequest()
        _fill_model_spec(request.model_spec, name, version, label)
        request.model_spec.signature_name = signature_name
        _fill_input(document, request.input)
        response = self.api.regress(request)
        return {"results": [r.value for r in response.result.regressions]}
