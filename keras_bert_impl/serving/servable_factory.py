"""How kbi-serve loads a version: its session's thread pools and its batching.

tensorflow_model_server's flags, as model_servers/server.cc turns them into a
SessionBundleConfig:
- --tensorflow_intra_op_parallelism / --tensorflow_inter_op_parallelism (0 = the runtime
  chooses) set the session ConfigProto; when neither is set,
  --tensorflow_session_parallelism sets both; setting all three is an error.
- --enable_batching with --batching_parameters_file (or the defaults), and
  --enable_per_model_batching_parameters (servables/tensorflow/bundle_factory_util.cc).

TensorFlow sizes its process-wide intra-op pool from whichever comes first, the eager
runtime or a session, and the sessions' shared inter-op pool from the first session; a
session's ConfigProto alone changes nothing once the eager runtime has started. So the
values also go to `tf.config.threading` before anything starts the runtime.
"""

import logging

import tensorflow as tf

from keras_bert_impl.serving import batching, batching_parameters, status
from keras_bert_impl.serving.servable import Servable

logger = logging.getLogger("kbi-serve")


def session_config(options):
    """The ConfigProto of every session, from the parallelism flags (server.cc's rules)."""
    intra = options.tensorflow_intra_op_parallelism
    inter = options.tensorflow_inter_op_parallelism
    both = options.tensorflow_session_parallelism
    for flag, value in (
        ("tensorflow_intra_op_parallelism", intra),
        ("tensorflow_inter_op_parallelism", inter),
        ("tensorflow_session_parallelism", both),
    ):
        if value < 0:
            raise ValueError(f"--{flag}={value}: must be 0 (the runtime chooses) or positive")
    if intra > 0 and inter > 0 and both > 0:
        raise ValueError(
            "Either configure --tensorflow_session_parallelism or "
            "(--tensorflow_intra_op_parallelism, --tensorflow_inter_op_parallelism) "
            "separately. You cannot configure all."
        )
    if not (intra > 0 or inter > 0):
        intra = inter = both
    return tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=intra, inter_op_parallelism_threads=inter
    )


def apply_threading(config):
    """Gives the runtime the session's thread counts while it can still take them."""
    for what, value in (
        ("intra", config.intra_op_parallelism_threads),
        ("inter", config.inter_op_parallelism_threads),
    ):
        getter = getattr(tf.config.threading, f"get_{what}_op_parallelism_threads")
        setter = getattr(tf.config.threading, f"set_{what}_op_parallelism_threads")
        if value <= 0 or getter() == value:
            continue
        try:
            setter(value)
        except RuntimeError:
            logger.warning(
                "--tensorflow_%s_op_parallelism=%d: TensorFlow already started in this "
                "process with %d %s-op threads; its shared pool keeps that size",
                what, value, getter(), what,
            )


def log_threading():
    """Logs the thread pools the models run on (once the server has its ports)."""
    logger.info(
        "TensorFlow threads: intra_op=%d inter_op=%d (0 = the runtime chooses)",
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )


def batching_config(options):
    """The server's BatchingParameters, or None without --enable_batching."""
    if not options.enable_batching:
        if options.batching_parameters_file:
            raise ValueError(
                "--batching_parameters_file is set without setting --enable_batching to true."
            )
        if options.enable_per_model_batching_parameters:
            # The real server ignores it too.
            logger.warning(
                "--enable_per_model_batching_parameters is ignored without --enable_batching"
            )
        return None
    if options.batching_parameters_file:
        return batching_parameters.read(options.batching_parameters_file)
    return batching_parameters.BatchingParameters()


class ServableFactory:
    """Loads versions as `Servable`s with the options' session config and batching."""

    def __init__(self, options):
        self.session_config = session_config(options)
        self.batching = batching_config(options)
        self.per_model = options.enable_per_model_batching_parameters
        apply_threading(self.session_config)
        self.scheduler = None
        if self.batching is not None:
            self.scheduler = batching.BatchScheduler(
                self.batching.num_batch_threads, self.batching.thread_pool_name
            )

    def queue_parameters(self, path):
        """The version's batching queue parameters, or None when it is not batched."""
        if self.scheduler is None:
            return None
        if not self.per_model:
            return self.batching.queue
        try:
            return batching_parameters.per_model_queue(path)
        except batching_parameters.BatchingParametersError as error:
            raise status.invalid_argument(str(error)) from error

    def __call__(self, name, version, path):
        queue = self.queue_parameters(path)
        batcher = None if queue is None else batching.ServableBatcher(self.scheduler, queue)
        return Servable(
            name, version, path, session_config=self.session_config, batcher=batcher
        )

    def stop(self):
        """Ends the batch threads (after the batches they hold)."""
        if self.scheduler is not None:
            self.scheduler.stop()
