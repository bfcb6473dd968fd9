"""Tensors between numpy, `TensorProto` and TF Serving's REST JSON (util/json_tensor.cc)."""

import base64

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from keras_bert_impl.serving.status import invalid_argument


def to_numpy(tensor_proto):
    """TensorProto -> numpy array (DT_STRING as an object array of bytes)."""
    try:
        return tf.make_ndarray(tensor_proto)
    except (TypeError, ValueError) as error:
        raise invalid_argument(f"Invalid TensorProto: {error}") from error


def to_proto(array, dtype=None):
    """numpy array (or nested lists, str) -> TensorProto."""
    array = np.asarray(array)
    if array.dtype.kind == "U":
        array = np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(array)
        if array.size == 0:
            array = array.astype(object)
    return tf.make_tensor_proto(array, dtype=dtype)


# TensorProto's typed field per dtype, as Tensor::AsProtoField fills it (16-bit floats
# as their bits in half_val, complex numbers as interleaved real/imaginary parts).
_TYPED_FIELD = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_BFLOAT16: "half_val",
    types_pb2.DT_COMPLEX64: "scomplex_val",
    types_pb2.DT_COMPLEX128: "dcomplex_val",
}


def to_response_proto(array, as_tensor_content=False):
    """An output array as a Predict reply carries it.

    tensorflow_model_server fills the typed fields (`float_val`, `int64_val`, ...) unless
    --enable_serialization_as_tensor_content asks for packed bytes
    (servables/tensorflow/predict_util.cc, PredictResponseTensorSerializationOption).
    `tf.make_ndarray` reads either form.
    """
    proto = to_proto(array)
    if as_tensor_content or not proto.tensor_content:
        return proto
    values = np.asarray(array).ravel()
    if proto.dtype in (types_pb2.DT_HALF, types_pb2.DT_BFLOAT16):
        values = values.view(np.uint16)
    elif proto.dtype in (types_pb2.DT_COMPLEX64, types_pb2.DT_COMPLEX128):
        values = values.view(values.real.dtype)
    field = _TYPED_FIELD.get(proto.dtype)
    if field is None:
        return proto
    proto.tensor_content = b""
    if values.dtype.kind in "fb":
        # Packed fixed-width (and 0/1 bool) fields are the little-endian bytes themselves:
        # append them on the wire rather than convert millions of Python floats.
        number = proto.DESCRIPTOR.fields_by_name[field].number
        raw = values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes()
        proto.MergeFromString(_varint((number << 3) | 2) + _varint(len(raw)) + raw)
    else:
        getattr(proto, field).extend(values.tolist())
    return proto


def _varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def dtype_name(dtype):
    """tf.DType -> TF's DataTypeString ('float', 'string'), as the server's messages write it."""
    return types_pb2.DataType.Name(tf.dtypes.as_dtype(dtype).as_datatype_enum)[3:].lower()


# ---------------------------------------------------------------- JSON -> numpy


def _json_type(value):
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    return "Null"


def _json_debug(value):
    import json

    text = json.dumps(value)
    return text if len(text) < 200 else text[:200] + "..."


def is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _scalar(value, dtype):
    """One JSON leaf as a value of `dtype` (tf.DType), with json_tensor.cc's type rules."""
    if dtype == tf.string:
        if isinstance(value, str):
            return value.encode("utf-8")
        if is_b64(value) and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except ValueError as error:
                raise invalid_argument(
                    f"JSON Value: {_json_debug(value)} not formatted correctly for base64 data"
                ) from error
    elif dtype == tf.bool:
        if isinstance(value, bool):
            return value
    elif dtype.is_floating:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    elif dtype.is_integer:
        # json_tensor.cc takes an int32 only where rapidjson's IsInt() holds, and so on.
        limits = np.iinfo(dtype.as_numpy_dtype)
        if isinstance(value, int) and not isinstance(value, bool):
            if limits.min <= value <= limits.max:
                return value
    raise invalid_argument(
        f"JSON Value: {_json_debug(value)} Type: {_json_type(value)} is not of expected type: "
        f"{dtype_name(dtype)}"
    )


def _shape_of(value):
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _flatten(value, dtype, shape, level, out):
    if level == len(shape):
        if isinstance(value, list):
            raise invalid_argument(
                f"Encountered list at unexpected level: {level} expected < {len(shape)}"
            )
        out.append(_scalar(value, dtype))
        return
    if not isinstance(value, list):
        raise invalid_argument(
            f"JSON Value: {_json_debug(value)} found at incorrect level: {level + 1} in the JSON "
            f"DOM. Expected at level: {len(shape)}"
        )
    if len(value) != shape[level]:
        raise invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected "
            f"size: {shape[level]}"
        )
    for item in value:
        _flatten(item, dtype, shape, level + 1, out)


def _numeric_array(value, dtype, shape, may_hold_bools):
    """`value` converted by numpy in one C pass, or None where the leaf-by-leaf rules
    must decide (ragged lists, wrong leaf types, out-of-range integers)."""
    if dtype == tf.string:
        return None
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if array.shape != tuple(shape):
        return None
    kind = array.dtype.kind
    if dtype == tf.bool:
        ok = kind == "b"
    elif may_hold_bools:
        ok = False  # numpy turns true/false among numbers into 1/0; TF Serving refuses them
    elif dtype.is_integer:
        limits = np.iinfo(dtype.as_numpy_dtype)
        ok = kind in "iu" and (
            array.size == 0 or (limits.min <= array.min() and array.max() <= limits.max)
        )
    else:
        ok = kind in "iuf"
    return array.astype(dtype.as_numpy_dtype, copy=False) if ok else None


def from_json(value, dtype, check_shape=None, may_hold_bools=True):
    """A JSON value (nested lists of leaves) -> numpy array of `dtype` (tf.DType).

    Args:
        check_shape: called with the shape the nesting gives before any leaf is read, so a
            wrong shape fails before the work of converting a large body.
        may_hold_bools: False when the JSON text has no true/false (numbers then convert
            in one numpy pass).
    """
    shape = _shape_of(value)
    if check_shape is not None:
        check_shape(shape)
    array = _numeric_array(value, dtype, shape, may_hold_bools)
    if array is not None:
        return array
    flat = []
    try:
        _flatten(value, dtype, shape, 0, flat)
    except RecursionError as error:
        raise invalid_argument("JSON Value: nested too deeply for a tensor") from error
    if dtype == tf.string:
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
    else:
        try:
            array = np.asarray(flat, dtype=dtype.as_numpy_dtype)
        except OverflowError as error:
            raise invalid_argument(
                f"JSON Value: a number does not fit {dtype_name(dtype)}: {error}"
            ) from error
    return array.reshape(shape)


# ---------------------------------------------------------------- numpy -> JSON


def to_json(array, name):
    """numpy array -> JSON value; strings of aliases ending in `_bytes` as {"b64": ...}."""
    array = np.asarray(array)
    if array.dtype.kind in ("O", "S", "U"):
        as_b64 = name.endswith("_bytes")

        def convert(item):
            if isinstance(item, str):
                item = item.encode("utf-8")
            if as_b64:
                return {"b64": base64.b64encode(item).decode("ascii")}
            return item.decode("utf-8", errors="replace")

        if array.ndim == 0:
            return convert(array.item())
        return np.vectorize(convert, otypes=[object])(array).tolist() if array.size else (
            np.empty(array.shape).tolist()
        )
    if array.dtype.kind == "c":
        raise invalid_argument(f"Tensor {name}: complex outputs have no JSON form")
    return array.tolist()


DT_STRING = types_pb2.DT_STRING
