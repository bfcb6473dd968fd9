"""`get_strategy`: a `tf.distribute.Strategy` from a name, as `--strategy` gives it.

Collective ops must be configured before TensorFlow creates any op, so build
the strategy first in a process (before models, datasets or tensors).
"""

import json
import os

import tensorflow as tf

from keras_bert_impl.training.settings import STRATEGIES


def _tpu_strategy(tpu, resolver_factory):
    if not tpu:
        raise ValueError(
            "--strategy=tpu needs --tpu: a TPU name, a grpc:// address, or "
            "'local' for a TPU VM."
        )
    address = "" if tpu == "local" else tpu
    try:
        resolver = resolver_factory(tpu=address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise ValueError(
            f"Cannot reach TPU {tpu!r} (--tpu): {type(e).__name__}: {e}"
        ) from e
    return tf.distribute.TPUStrategy(resolver)


def _multi_worker_strategy():
    raw = os.environ.get("TF_CONFIG")
    if raw:
        try:
            config = json.loads(raw)
            config["cluster"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                "TF_CONFIG must be JSON with a 'cluster' and a 'task', e.g. "
                '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                '"task": {"type": "worker", "index": 0}}; got ' + repr(raw[:200])
            ) from None
    # Without TF_CONFIG this is one worker with its local devices.
    return tf.distribute.MultiWorkerMirroredStrategy()


def get_strategy(name="default", tpu=None, resolver_factory=None):
    """Builds the distribution strategy called `name`.

    Args:
        name: one of `STRATEGIES`:
            - `default`: no distribution (TensorFlow's default strategy).
            - `one_device`: everything on the first GPU, else the CPU.
            - `mirrored`: synchronous data parallelism over the local GPUs
              (or the logical CPUs when there is no GPU).
            - `multi_worker_mirrored`: the same over the workers that the
              `TF_CONFIG` environment variable lists.
            - `tpu`: `TPUStrategy` on the TPU named by `tpu`.
        tpu: for `tpu`: a TPU name or `grpc://host:port` address that
            `TPUClusterResolver` resolves, or `local` (TPU VM).
        resolver_factory: builds the cluster resolver from `tpu=...`;
            defaults to `tf.distribute.cluster_resolver.TPUClusterResolver`
            (tests pass a fake).

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        ValueError: an unknown name, a missing or unreachable TPU, or a
            malformed `TF_CONFIG`, naming what was asked and what is valid.
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"Unknown --strategy={name!r}; valid strategies are {list(STRATEGIES)}."
        )
    if tpu and name != "tpu":
        raise ValueError(f"--tpu={tpu!r} is only used with --strategy=tpu.")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if not devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker_mirrored":
        return _multi_worker_strategy()
    factory = resolver_factory or tf.distribute.cluster_resolver.TPUClusterResolver
    return _tpu_strategy(tpu, factory)


def is_chief(strategy):
    """Whether this process writes checkpoints and results.

    Every process of a multi-worker run executes the same program; only the
    chief (task `chief`, or `worker` 0 when the cluster has no chief) keeps
    what it writes.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def split_logical_cpus(count):
    """Splits the CPU into `count` logical devices (before any op runs), so
    `mirrored` has replicas to mirror over on a machine without GPUs."""
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    )
