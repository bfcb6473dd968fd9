r"""kbi-serve: a TF-Serving-protocol model server (gRPC + REST) for development and CI.

Same flag names and defaults as tensorflow_model_server for the common case:
  kbi-serve --model_name=sst2 --model_base_path=$PWD/saved_models/sst2 --rest_api_port=8501
  kbi-serve --model_config_file=models.config --model_config_file_poll_wait_seconds=60
  kbi-serve ... --enable_batching --batching_parameters_file=batching_parameters.txt
It binds 127.0.0.1 unless --host says otherwise; SIGTERM or Ctrl-C stops it gracefully
(requests in flight finish). Deploy with the real server: see the README's Serving section.
"""

import logging
import signal
import sys
import threading

from absl import flags

from keras_bert_impl.cli import command


def define_flags(f):
    """Defined when the tool runs, so importing this module adds no flags."""
    flags.DEFINE_integer(
        "port", 8500, "Port to listen on for the gRPC API.", flag_values=f
    )
    flags.DEFINE_integer(
        "rest_api_port",
        0,
        "Port to listen on for the HTTP/REST API; 0 = no REST API.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "rest_api_num_threads",
        None,
        "Threads for HTTP/REST requests (default 4 x cores).",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "rest_api_timeout_in_ms",
        30000,
        "Timeout for HTTP/REST API calls (reading the body, and answering).",
        flag_values=f,
    )
    flags.DEFINE_string("model_name", "default", "Name of the model.", flag_values=f)
    flags.DEFINE_string(
        "model_base_path",
        "",
        "Path of the model: integer-named version directories.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "model_config_file",
        "",
        "Text-format ModelServerConfig (several models, version policies, labels); "
        "replaces --model_name/--model_base_path.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "model_config_file_poll_wait_seconds",
        0,
        "Seconds between re-reads of --model_config_file; 0 = read once.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "file_system_poll_wait_seconds",
        1,
        "Seconds between polls of the model base paths for new versions; 0 = only at start.",
        flag_values=f,
    )
    flags.DEFINE_boolean(
        "enable_model_warmup",
        True,
        "Replay assets.extra/tf_serving_warmup_requests before a version serves.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "grpc_channel_arguments",
        "",
        "Comma-separated key=value gRPC server arguments, e.g. "
        "grpc.max_receive_message_length=4194304.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "grpc_max_threads",
        None,
        "Threads for gRPC requests (default 4 x cores).",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "max_num_load_retries",
        5,
        "Times a failed version load is retried before the version is given up; 0 = once.",
        lower_bound=0,
        flag_values=f,
    )
    flags.DEFINE_integer(
        "load_retry_interval_micros",
        60_000_000,
        "Microseconds between load retries; negative = no wait.",
        flag_values=f,
    )
    flags.DEFINE_boolean(
        "enable_serialization_as_tensor_content",
        False,
        "Predict replies carry packed tensor_content bytes instead of float_val, int64_val, ...",
        flag_values=f,
    )
    flags.DEFINE_string(
        "host",
        "127.0.0.1",
        "Address to bind (0.0.0.0 listens on every interface).",
        flag_values=f,
    )
    define_runtime_flags(f)


def define_runtime_flags(f):
    """tensorflow_model_server's session and batching flags (same names and defaults)."""
    flags.DEFINE_integer(
        "tensorflow_intra_op_parallelism",
        0,
        "Threads to parallelize the execution of an individual op; 0 = the runtime chooses.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "tensorflow_inter_op_parallelism",
        0,
        "Ops that can run simultaneously; 0 = the runtime chooses.",
        flag_values=f,
    )
    flags.DEFINE_integer(
        "tensorflow_session_parallelism",
        0,
        "Sets both the intra- and inter-op threads when neither of their flags is set; "
        "0 = the runtime chooses.",
        flag_values=f,
    )
    flags.DEFINE_boolean(
        "enable_batching",
        False,
        "Merge concurrent requests to a signature into batches.",
        flag_values=f,
    )
    flags.DEFINE_string(
        "batching_parameters_file",
        "",
        "Text-format BatchingParameters (max_batch_size, batch_timeout_micros, ...) "
        "instead of the defaults; needs --enable_batching.",
        flag_values=f,
    )
    flags.DEFINE_boolean(
        "enable_per_model_batching_parameters",
        False,
        "Read each version's batching_params.pbtxt (versions without one are not "
        "batched); only the batch threads come from --batching_parameters_file.",
        flag_values=f,
    )


def server_options_from_flags(flag_values):
    from keras_bert_impl.serving import ServerOptions

    options = ServerOptions(
        port=flag_values.port,
        rest_api_port=flag_values.rest_api_port,
        rest_api_timeout_in_ms=flag_values.rest_api_timeout_in_ms,
        model_name=flag_values.model_name,
        model_base_path=flag_values.model_base_path,
        model_config_file=flag_values.model_config_file,
        model_config_file_poll_wait_seconds=flag_values.model_config_file_poll_wait_seconds,
        file_system_poll_wait_seconds=flag_values.file_system_poll_wait_seconds,
        enable_model_warmup=flag_values.enable_model_warmup,
        grpc_channel_arguments=flag_values.grpc_channel_arguments,
        max_num_load_retries=flag_values.max_num_load_retries,
        load_retry_interval_micros=flag_values.load_retry_interval_micros,
        enable_serialization_as_tensor_content=flag_values.enable_serialization_as_tensor_content,
        host=flag_values.host,
        tensorflow_intra_op_parallelism=flag_values.tensorflow_intra_op_parallelism,
        tensorflow_inter_op_parallelism=flag_values.tensorflow_inter_op_parallelism,
        tensorflow_session_parallelism=flag_values.tensorflow_session_parallelism,
        enable_batching=flag_values.enable_batching,
        batching_parameters_file=flag_values.batching_parameters_file,
        enable_per_model_batching_parameters=flag_values.enable_per_model_batching_parameters,
    )
    if flag_values.rest_api_num_threads:
        options.rest_api_num_threads = flag_values.rest_api_num_threads
    if flag_values.grpc_max_threads:
        options.grpc_max_threads = flag_values.grpc_max_threads
    return options


def main(flag_values):
    from keras_bert_impl.serving import ModelServer
    from keras_bert_impl.serving.server import ConfigError

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("absl").setLevel(logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    stop_requested = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop_requested.set())
    try:
        server = ModelServer(server_options_from_flags(flag_values)).start()
    except (ConfigError, OSError) as error:
        print(f"kbi-serve: {error}", file=sys.stderr)
        return 1
    while not stop_requested.wait(0.5):
        pass
    logging.getLogger("kbi-serve").info("Stopping: finishing requests in flight")
    server.stop()
    # Requests cut off at the end of the grace may still be computing on their threads;
    # exit now rather than wait for work no one will receive.
    command.exit_now(0)


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)
