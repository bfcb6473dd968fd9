"""`ModelServer`: TF Serving's gRPC and REST APIs over SavedModels, in one Python process.

A development and CI stand-in for `tensorflow_model_server` that needs only tensorflow and
tensorflow-text. It takes the same options (names and defaults) for the common case, serves
the same protos and JSON, and answers with the same status codes. One difference: it
binds 127.0.0.1 unless `host` says otherwise (the real server listens on 0.0.0.0).
"""

import concurrent.futures
import dataclasses
import logging
import os
import threading
import time

import grpc
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from keras_bert_impl.serving.api import ServingApi
from keras_bert_impl.serving.grpc_services import add_services
from keras_bert_impl.serving.model_manager import ModelManager
from keras_bert_impl.serving.ports import ensure_free
from keras_bert_impl.serving.rest_api import RestApi
from keras_bert_impl.serving.rest_server import RestServer
from keras_bert_impl.serving.servable_factory import ServableFactory, log_threading

logger = logging.getLogger("kbi-serve")


def _default_threads():
    return 4 * (os.cpu_count() or 1)


@dataclasses.dataclass
class ServerOptions:
    """tensorflow_model_server's flags (same names and defaults), plus `host`."""

    port: int = 8500
    rest_api_port: int = 0
    rest_api_num_threads: int = dataclasses.field(default_factory=_default_threads)
    rest_api_timeout_in_ms: int = 30000
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: int = 1
    enable_model_warmup: bool = True
    grpc_channel_arguments: str = ""
    grpc_max_threads: int = dataclasses.field(default_factory=_default_threads)
    tensorflow_session_parallelism: int = 0
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    enable_batching: bool = False
    batching_parameters_file: str = ""
    enable_per_model_batching_parameters: bool = False
    enable_serialization_as_tensor_content: bool = False
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    host: str = "127.0.0.1"


class ConfigError(ValueError):
    """The model configuration (flags or --model_config_file) is invalid."""


def read_model_config_file(path):
    """Parses a text-format ModelServerConfig file into a list of ModelConfig protos."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as error:
        raise ConfigError(f"--model_config_file={path}: cannot read: {error}") from error
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ConfigError(
            f"Error parsing text-format tensorflow.serving.ModelServerConfig in {path}: {error}"
        ) from error
    if config.WhichOneof("config") != "model_config_list":
        raise ConfigError(
            f"{path}: only model_config_list is supported (custom_model_config is not)"
        )
    models = list(config.model_config_list.config)
    for model in models:
        if not os.path.isabs(model.base_path):
            raise ConfigError(
                f"Expected model {model.name} to have an absolute path or URI; got "
                f"base_path()={model.base_path}"
            )
    return models


def model_configs(options):
    """The ModelConfig list the options describe (one model, or the config file's)."""
    if options.model_config_file:
        if options.model_base_path:
            raise ConfigError(
                "--model_config_file and --model_base_path cannot both be set"
            )
        return read_model_config_file(options.model_config_file)
    if not options.model_base_path:
        raise ConfigError(
            "Both --model_base_path and --model_config_file are empty: give one of them"
        )
    config = model_server_config_pb2.ModelConfig(
        name=options.model_name,
        base_path=os.path.abspath(options.model_base_path),
        model_platform="tensorflow",
    )
    return [config]


def parse_grpc_channel_arguments(text):
    """'key=value,key=value' (tensorflow_model_server's format) -> gRPC options list."""
    options = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"--grpc_channel_arguments: {item!r} is not key=value"
            )
        options.append((key, int(value) if value.lstrip("-").isdigit() else value))
    return options


class ModelServer:
    """Serves the models of `options` over gRPC (and REST when rest_api_port > 0).

    `start()` loads the initial versions (like the real server, it serves only once they
    are loaded), binds the ports, and starts polling the file system; `stop()` stops
    accepting requests, lets the ones in flight finish, and unloads everything.
    """

    def __init__(self, options):
        self.options = options
        configs = model_configs(options)
        try:
            self.servable_factory = ServableFactory(options)
        except ValueError as error:
            raise ConfigError(str(error)) from error
        self.manager = ModelManager(
            configs,
            enable_model_warmup=options.enable_model_warmup,
            servable_factory=self.servable_factory,
            max_num_load_retries=options.max_num_load_retries,
            load_retry_interval_micros=options.load_retry_interval_micros,
        )
        self.api = ServingApi(
            self.manager, options.enable_serialization_as_tensor_content
        )
        self.grpc_port = None
        self.rest_port = None
        self._grpc_server = None
        self._rest_server = None
        self._poll_thread = None
        self._stopping = threading.Event()

    def start(self):
        options = self.options
        if options.rest_api_port and options.rest_api_port == options.port:
            raise ConfigError("--rest_api_port cannot be the same as --port")
        ensure_free(options.host, options.port, "--port")
        ensure_free(options.host, options.rest_api_port, "--rest_api_port")
        log_threading()
        self.manager.poll()
        # Like the real server: no message size limit unless --grpc_channel_arguments sets
        # one (gRPC uses the first value of a repeated key, so overrides replace defaults).
        grpc_options = dict(
            [
                ("grpc.max_receive_message_length", 2**31 - 1),
                ("grpc.max_send_message_length", 2**31 - 1),
                ("grpc.so_reuseport", 0),  # a taken port fails instead of being shared
            ]
            + parse_grpc_channel_arguments(options.grpc_channel_arguments)
        )
        self._grpc_server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(
                max_workers=options.grpc_max_threads, thread_name_prefix="kbi-grpc"
            ),
            options=list(grpc_options.items()),
        )
        add_services(self._grpc_server, self.api)
        address = f"{options.host}:{options.port}"
        try:
            self.grpc_port = self._grpc_server.add_insecure_port(address)
        except RuntimeError:
            self.grpc_port = 0
        if not self.grpc_port:
            raise OSError(f"Failed to start server: --port={options.port}: cannot bind {address}")
        self._grpc_server.start()
        logger.info("Running gRPC ModelServer at %s:%d ...", options.host, self.grpc_port)
        if options.rest_api_port:
            rest = RestServer(
                RestApi(self.api),
                options.host,
                options.rest_api_port,
                options.rest_api_num_threads,
                timeout_in_ms=options.rest_api_timeout_in_ms,
            )
            try:
                self._rest_server = rest.start()
            except OSError:
                self._grpc_server.stop(None)
                raise
            self.rest_port = rest.port
            logger.info(
                "Exporting HTTP/REST API at:%s:%d ...", options.host, self.rest_port
            )
        if options.file_system_poll_wait_seconds > 0 or (
            options.model_config_file and options.model_config_file_poll_wait_seconds > 0
        ):
            self._poll_thread = threading.Thread(
                target=self._poll_loop, name="kbi-poll", daemon=True
            )
            self._poll_thread.start()
        return self

    def _poll_loop(self):
        options = self.options
        fs_wait = options.file_system_poll_wait_seconds
        config_wait = (
            options.model_config_file_poll_wait_seconds if options.model_config_file else 0
        )
        tick = min(w for w in (fs_wait, config_wait) if w > 0)
        last_poll = last_config = time.monotonic()
        while not self._stopping.wait(tick):
            now = time.monotonic()
            try:
                if config_wait and now - last_config >= config_wait - 1e-3:
                    last_config = now
                    self.manager.set_model_configs(
                        read_model_config_file(options.model_config_file), poll=True
                    )
                if fs_wait > 0 and now - last_poll >= fs_wait - 1e-3:
                    last_poll = now
                    self.manager.poll()
            except Exception as error:  # noqa: BLE001 - a bad poll must not stop serving
                logger.error("Polling for model changes failed: %s", error)

    def stop(self, grace=10.0):
        """Stops accepting requests on both APIs and waits up to `grace` seconds (one
        grace for both) for those in flight; the rest are cancelled."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.manager.cancel_load_retries()
        rest_stopping = (
            self._rest_server.stop_async(grace) if self._rest_server is not None else None
        )
        if self._grpc_server is not None:
            self._grpc_server.stop(grace).wait()
        if rest_stopping is not None:
            rest_stopping.join()
        if self._poll_thread is not None:
            self._poll_thread.join(timeout=grace)
        self.manager.set_model_configs([], poll=False)
        self.servable_factory.stop()
        logger.info("Server stopped")

    def wait(self):
        """Blocks until `stop()`."""
        self._stopping.wait()
