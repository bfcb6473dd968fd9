"""Model versions on disk -> loaded servables, the way TF Serving's ServerCore manages them.

Each model has a base path whose integer-named subdirectories are versions. A version
policy (latest N by default, all, or specific versions) picks the aspired versions; a poll
loads aspired versions that are new, then unloads the ones no longer aspired — new before
old, so a model never goes without a serving version while it is updated. Requests hold a
reference to the servable they started on, so an unload never cuts one short.

A load that fails is retried the way TF Serving's LoaderHarness::Load does it
(core/loader_harness.cc with util/retrier.cc): up to max_num_load_retries more tries,
load_retry_interval_micros apart, the version LOADING all along; the retries stop early
when the version is no longer aspired (AspiredVersionsManager's CancelLoadServableRetry),
and a version that used them all up stays in error (END) and is not loaded again.
"""

import logging
import os
import threading

from tensorflow_serving.apis import get_model_status_pb2

from keras_bert_impl.serving import status
from keras_bert_impl.serving.servable import Servable

State = get_model_status_pb2.ModelVersionStatus.State
logger = logging.getLogger("kbi-serve")


def list_versions(base_path):
    """dict version -> directory of `base_path`'s integer-named subdirectories ("00000123"
    is version 123; other names are ignored, like TF Serving does)."""
    try:
        names = os.listdir(base_path)
    except OSError:
        return {}
    versions = {}
    for name in names:
        path = os.path.join(base_path, name)
        if name.isdigit() and os.path.isdir(path):
            versions[int(name)] = path
    return versions


def aspired_versions(policy, on_disk):
    """Versions of `on_disk` that a ServableVersionPolicy proto asks to serve."""
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return set(on_disk)
    if which == "specific":
        return set(on_disk) & set(policy.specific.versions)
    count = policy.latest.num_versions if which == "latest" else 1
    count = max(count, 1)
    return set(sorted(on_disk)[-count:])


class _VersionRecord:
    def __init__(self, state, path):
        self.state = state
        self.path = path
        self.servable = None
        self.error = None  # ServingError of a failed load


class _Model:
    def __init__(self, config):
        self.config = config
        self.versions = {}  # version -> _VersionRecord


def _describe(name, version):
    return f"{{name: {name} version: {version}}}"


class ModelManager:
    """Loads, serves and unloads the versions of the models in a ModelConfigList.

    Args:
        model_configs: iterable of `tensorflow.serving.ModelConfig`.
        enable_model_warmup: replay assets.extra/tf_serving_warmup_requests before a
            version becomes AVAILABLE.
        servable_factory: `(name, version, path) -> Servable` (session options, batching).
        max_num_load_retries: tries after the first failed one (0: load once).
        load_retry_interval_micros: wait before each retry (negative: none).
    """

    def __init__(
        self,
        model_configs,
        enable_model_warmup=True,
        servable_factory=Servable,
        max_num_load_retries=5,
        load_retry_interval_micros=60_000_000,
    ):
        self.enable_model_warmup = enable_model_warmup
        self.servable_factory = servable_factory
        self.max_num_load_retries = max(int(max_num_load_retries), 0)
        self.load_retry_interval = max(load_retry_interval_micros, 0) / 1e6
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._models = {}
        self.set_model_configs(model_configs, poll=False)

    # ------------------------------------------------------------ configuration

    def set_model_configs(self, model_configs, poll=True):
        """Applies a (new) model list: new models are added, dropped ones unloaded."""
        configs = list(model_configs)
        names = [config.name for config in configs]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"Illegal to list model {name} multiple times in config list")
        for config in configs:
            if not config.name:
                raise ValueError("ModelConfig has an empty name")
            platform = config.model_platform or "tensorflow"
            if platform != "tensorflow":
                raise ValueError(
                    f"Model {config.name}: model_platform {platform!r} is not supported "
                    "(only 'tensorflow')"
                )
        with self._lock:
            for config in configs:
                if config.name in self._models:
                    self._models[config.name].config = config
                else:
                    self._models[config.name] = _Model(config)
            dropped = [name for name in self._models if name not in names]
        for name in dropped:
            self._unload_model(name)
        if poll:
            self.poll()

    def _unload_model(self, name):
        with self._lock:
            model = self._models.pop(name)
        for version, record in model.versions.items():
            if record.state == State.AVAILABLE:
                record.servable = None
                record.state = State.END
                logger.info(
                    "Successfully unloaded servable version %s", _describe(name, version)
                )

    def cancel_load_retries(self):
        """Stops waiting to retry failed loads (the server is stopping)."""
        self._closing.set()

    @property
    def model_names(self):
        with self._lock:
            return sorted(self._models)

    # ------------------------------------------------------------ polling

    def poll(self):
        """One pass over every model's base path: load new aspired versions, unload old ones."""
        with self._poll_lock:
            with self._lock:
                models = list(self._models.values())
            for model in models:
                self._poll_model(model)

    def _poll_model(self, model):
        name, base_path = model.config.name, model.config.base_path
        if not os.path.isdir(base_path):
            # FileSystemStoragePathSource's words on every poll; what is served stays.
            logger.error(
                "FileSystemStoragePathSource encountered a filesystem access error: Could "
                "not find base path %s for servable %s",
                base_path,
                name,
            )
            return
        on_disk = list_versions(base_path)
        if not on_disk:
            logger.warning(
                "No versions of servable %s found under base path %s. Did you forget to "
                "name your leaf directory as a number (eg. '/1/')?",
                name,
                base_path,
            )
        aspired = aspired_versions(model.config.model_version_policy, on_disk)
        for version in sorted(aspired, reverse=True):
            record = model.versions.get(version)
            if record is not None and record.state != State.END:
                continue
            if record is not None and record.error is not None:
                continue  # its load retries are used up: in error until restart
            self._load(model, version, on_disk[version])
        any_aspired_available = any(
            model.versions[v].state == State.AVAILABLE
            for v in aspired
            if v in model.versions
        )
        for version, record in list(model.versions.items()):
            if version in aspired or record.state != State.AVAILABLE:
                continue
            # Availability preserving: keep the old version until a new one serves.
            if any_aspired_available or version not in on_disk:
                with self._lock:
                    record.state = State.UNLOADING
                    record.servable = None
                    record.state = State.END
                logger.info(
                    "Successfully unloaded servable version %s", _describe(name, version)
                )

    def _still_aspired(self, model, version):
        on_disk = list_versions(model.config.base_path)
        with self._lock:
            current = self._models.get(model.config.name) is model
        return current and version in aspired_versions(
            model.config.model_version_policy, on_disk
        )

    def _load(self, model, version, path):
        name = model.config.name
        record = _VersionRecord(State.LOADING, path)
        with self._lock:
            model.versions[version] = record
        description = f"Loading servable: {_describe(name, version)}"
        logger.info("Loading servable version %s from %s", _describe(name, version), path)
        tries = 0
        while True:
            if tries:
                # Retry(): wait, then try again unless the version is gone meanwhile.
                self._closing.wait(self.load_retry_interval)
                if self._closing.is_set() or not self._still_aspired(model, version):
                    logger.info("Retrying of %s was cancelled.", description)
                    with self._lock:  # forgotten: if it comes back, it loads afresh
                        model.versions.pop(version, None)
                    return
                logger.info("Retrying of %s retry: %d", description, tries)
            tries += 1
            try:
                servable = self._load_once(name, version, path)
            except Exception as error:  # a bad version must not take the server down
                record.error = (
                    error
                    if isinstance(error, status.ServingError)
                    else status.ServingError(status.grpc.StatusCode.UNKNOWN, str(error))
                )
                logger.error(
                    "%s failed: %s",
                    description,
                    str(error).splitlines()[0] if str(error) else type(error).__name__,
                )
                if tries == self.max_num_load_retries + 1:
                    logger.info(
                        "Retrying of %s exhausted max_num_retries: %d",
                        description,
                        self.max_num_load_retries,
                    )
                    break
                continue
            with self._lock:
                record.servable, record.error = servable, None
                record.state = State.AVAILABLE
            logger.info("Successfully loaded servable version %s", _describe(name, version))
            return
        with self._lock:
            record.state = State.END
        logger.info(
            "Encountered an error for servable version %s: %s",
            _describe(name, version),
            record.error,
        )

    def _load_once(self, name, version, path):
        servable = self.servable_factory(name, version, path)
        if self.enable_model_warmup:
            count = servable.warmup()
            if count:
                logger.info(
                    "Finished reading %d warmup records for %s", count, _describe(name, version)
                )
        return servable

    def all_loaded(self):
        """True when no model has a version still loading (initial load done)."""
        with self._lock:
            return all(
                r.state != State.LOADING for m in self._models.values() for r in m.versions.values()
            )

    # ------------------------------------------------------------ lookup

    def _model(self, name):
        if not name:
            raise status.invalid_argument("Missing model name in request.")
        model = self._models.get(name)
        if model is None:
            raise status.not_found(f"Servable not found for request: Latest({name})")
        return model

    def resolve_version(self, model_spec):
        """ModelSpec -> (model name, explicit version or None)."""
        with self._lock:
            model = self._model(model_spec.name)
            choice = model_spec.WhichOneof("version_choice")
            if choice == "version":
                return model_spec.name, model_spec.version.value
            if choice == "version_label":
                label = model_spec.version_label
                labels = dict(model.config.version_labels)
                if label not in labels:
                    raise status.invalid_argument(
                        f"Unrecognized servable version label: {label}"
                    )
                return model_spec.name, labels[label]
            return model_spec.name, None

    def servable(self, model_spec):
        """The Servable a request's ModelSpec names (latest available by default).

        Raises:
            ServingError: NOT_FOUND for an unknown model or version, UNAVAILABLE for one
                that is still loading, INVALID_ARGUMENT for an unknown label.
        """
        name, version = self.resolve_version(model_spec)
        with self._lock:
            model = self._model(name)
            if version is not None:
                record = model.versions.get(version)
                if record is not None and record.state == State.AVAILABLE:
                    return record.servable
                if record is not None and record.state == State.LOADING:
                    raise status.unavailable(
                        f"Servable {_describe(name, version)} is loading; not yet available"
                    )
                raise status.not_found(
                    f"Servable not found for request: Specific({name}, {version})"
                )
            available = [
                v for v, r in model.versions.items() if r.state == State.AVAILABLE
            ]
            if available:
                return model.versions[max(available)].servable
            if any(r.state == State.LOADING for r in model.versions.values()):
                raise status.unavailable(
                    f"Servable not found for request: Latest({name}); its versions are "
                    "still loading"
                )
            raise status.not_found(f"Servable not found for request: Latest({name})")

    def version_states(self, model_spec):
        """[(version, State, ServingError or None)] for GetModelStatus."""
        name, version = self.resolve_version(model_spec)
        with self._lock:
            model = self._model(name)
            if version is not None:
                record = model.versions.get(version)
                if record is None:
                    raise status.not_found(
                        f"Could not find version {version} of model {name}"
                    )
                return [(version, record.state, record.error)]
            if not model.versions:
                raise status.not_found(f"Could not find any versions of model {name}")
            return [
                (v, r.state, r.error) for v, r in sorted(model.versions.items(), reverse=True)
            ]
