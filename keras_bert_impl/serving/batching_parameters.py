"""TF Serving's `BatchingParameters`: the text-format file of --batching_parameters_file.

The message is TF Serving's (servables/tensorflow/session_bundle_config.proto, same field
numbers and wrapper types, so the same text parses the same way); the tensorflow-serving-api
package does not ship it, so it is declared here. Defaults and checks are the model
server's:
- model_servers/server.cc: a --batching_parameters_file needs --enable_batching; without a
  file the parameters are empty (only thread_pool_name "model_server_batch_threads").
- servables/tensorflow/bundle_factory_util.{h,cc}: unset fields keep SharedBatchScheduler's
  defaults (tensorflow/core/kernels/batching_util/shared_batch_scheduler.h: max_batch_size
  1000, batch_timeout_micros 0, max_enqueued_batches 10, num_batch_threads = cores), the
  last allowed_batch_sizes entry must equal max_batch_size, and with
  --enable_per_model_batching_parameters a version's own `batching_params.pbtxt` (in the
  SavedModel directory itself) replaces the queue parameters; without that file the model
  is not batched.
"""

import dataclasses
import os

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf import wrappers_pb2

PER_MODEL_FILE = "batching_params.pbtxt"
DEFAULT_THREAD_POOL_NAME = "model_server_batch_threads"


class BatchingParametersError(ValueError):
    """A batching parameters file cannot be read or holds values TF Serving refuses."""


def _message_class():
    fields = [
        ("max_batch_size", 1, "Int64Value"),
        ("batch_timeout_micros", 2, "Int64Value"),
        ("max_enqueued_batches", 3, "Int64Value"),
        ("num_batch_threads", 4, "Int64Value"),
        ("thread_pool_name", 5, "StringValue"),
        ("allowed_batch_sizes", 6, None),
        ("pad_variable_length_inputs", 7, None),
        ("enable_large_batch_splitting", 8, "BoolValue"),
        ("max_execution_batch_size", 9, "Int64Value"),
    ]
    field_type = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="keras_bert_impl/serving/batching_parameters.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = proto.message_type.add(name="BatchingParameters")
    for name, number, wrapper in fields:
        field = message.field.add(name=name, number=number, json_name=name)
        if wrapper:
            field.type = field_type.TYPE_MESSAGE
            field.type_name = f".google.protobuf.{wrapper}"
            field.label = field_type.LABEL_OPTIONAL
        elif name == "allowed_batch_sizes":
            field.type = field_type.TYPE_INT64
            field.label = field_type.LABEL_REPEATED
        else:
            field.type = field_type.TYPE_BOOL
            field.label = field_type.LABEL_OPTIONAL
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )


BatchingParametersProto = _message_class()


@dataclasses.dataclass(frozen=True)
class QueueParameters:
    """One model's batching queue: SharedBatchScheduler::QueueOptions plus the
    BatchingSession options (allowed sizes, padding)."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    allowed_batch_sizes: tuple = ()
    pad_variable_length_inputs: bool = False


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """The parsed file: the shared batch threads and the queue parameters."""

    queue: QueueParameters = QueueParameters()
    num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    thread_pool_name: str = DEFAULT_THREAD_POOL_NAME


def parse(text, source):
    """Text-format BatchingParameters -> validated `BatchingParameters`."""
    proto = BatchingParametersProto()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as error:
        raise BatchingParametersError(f"Invalid protobuf file: '{source}': {error}") from error
    return _validated(proto, source)


def read(path, flag="--batching_parameters_file"):
    """Reads and validates a BatchingParameters file (`flag` names it in errors)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as error:
        raise BatchingParametersError(f"{flag}={path}: cannot read: {error}") from error
    return parse(text, path)


def _validated(proto, source):
    def value(name, default):
        return getattr(proto, name).value if proto.HasField(name) else default

    defaults = QueueParameters()
    queue = QueueParameters(
        max_batch_size=value("max_batch_size", defaults.max_batch_size),
        batch_timeout_micros=value("batch_timeout_micros", defaults.batch_timeout_micros),
        max_enqueued_batches=value("max_enqueued_batches", defaults.max_enqueued_batches),
        allowed_batch_sizes=tuple(proto.allowed_batch_sizes),
        pad_variable_length_inputs=proto.pad_variable_length_inputs,
    )
    params = BatchingParameters(
        queue=queue,
        num_batch_threads=value("num_batch_threads", os.cpu_count() or 1),
        thread_pool_name=value("thread_pool_name", DEFAULT_THREAD_POOL_NAME),
    )

    def fail(message):
        raise BatchingParametersError(f"{source}: {message}")

    if value("enable_large_batch_splitting", False):
        fail(
            "enable_large_batch_splitting is not supported by kbi-serve; remove it (and "
            "max_execution_batch_size) or set it to false"
        )
    # SharedBatchScheduler::Create and AddQueue's checks, in their words.
    if params.num_batch_threads < 1:
        fail(f"num_batch_threads must be positive; was {params.num_batch_threads}")
    if queue.max_batch_size < 1:
        fail(f"input_batch_size_limit must be positive; was {queue.max_batch_size}")
    if queue.batch_timeout_micros < 0:
        fail(f"batch_timeout_micros must be non-negative; was {queue.batch_timeout_micros}")
    if queue.max_enqueued_batches < 1:
        fail(f"max_enqueued_batches must be positive; was {queue.max_enqueued_batches}")
    sizes = queue.allowed_batch_sizes
    # The proto requires increasing entries; the model server leaves that unchecked
    # (b/161641195) and would round batches oddly, so refuse it like BasicBatchingSession.
    if any(b <= a for a, b in zip(sizes, sizes[1:])) or (sizes and sizes[0] < 1):
        fail(
            "allowed_batch_sizes entries must be monotonically increasing (and positive); "
            f"got {list(sizes)}"
        )
    if sizes and sizes[-1] != queue.max_batch_size:
        fail(
            "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
            f"{sizes[-1]}; expected {queue.max_batch_size}"
        )
    return params


def per_model_queue(version_dir):
    """A version's own queue parameters (`batching_params.pbtxt`), or None if it has none."""
    path = os.path.join(version_dir, PER_MODEL_FILE)
    if not os.path.exists(path):
        return None
    return read(path, flag=PER_MODEL_FILE).queue


def to_text(max_batch_size, allowed_batch_sizes, batch_timeout_micros,
            pad_variable_length_inputs=True, max_enqueued_batches=None,
            num_batch_threads=None):
    """Text-format BatchingParameters (checked by parsing it back)."""
    proto = BatchingParametersProto()
    proto.max_batch_size.value = max_batch_size
    proto.batch_timeout_micros.value = batch_timeout_micros
    if max_enqueued_batches is not None:
        proto.max_enqueued_batches.value = max_enqueued_batches
    if num_batch_threads is not None:
        proto.num_batch_threads.value = num_batch_threads
    proto.allowed_batch_sizes.extend(allowed_batch_sizes)
    proto.pad_variable_length_inputs = pad_variable_length_inputs
    text = text_format.MessageToString(proto)
    parse(text, "generated batching parameters")
    return text
