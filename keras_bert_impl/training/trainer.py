"""`Trainer`: one training loop for every `tf.distribute` strategy.

Keras 3.15's `fit` was checked first on TF 2.21 (see BENCHMARKS.md,
"Training"): under `MirroredStrategy` it fails to build a model whose inputs
are integers (its symbolic build averages the first distributed batch, which
turns the ids into floats) and, once built by hand, fails with
`steps_per_execution > 1` (an unfed placeholder in its multi-step loop); its
global-norm clipping also runs on each replica's partial gradients. So the
trainer runs the loop the way Model Garden's orbit does: a compiled function
that calls `strategy.run` on one train step `steps_per_execution` times. The
step itself is Keras: the model's `compute_loss` / `compute_metrics`, its
(loss-scaled, under `mixed_float16`) optimizer, `jit_compile` with XLA.

Resuming is exact: the checkpoint holds the weights, the optimizer's slots
and iterations, the step and the dropout seed states, and the input resumes
at the same batch by skipping the batches already trained on (the input
function must be deterministic: shuffle with a seed).
"""

import dataclasses
import os
import tempfile
import time

import keras
import tensorflow as tf

from keras_bert_impl.training import checkpoints
from keras_bert_impl.training.history import History
from keras_bert_impl.training.strategy import is_chief


@dataclasses.dataclass(frozen=True)
class TrainerSettings:
    """How to train.

    Attributes:
        output_dir: checkpoints, TensorBoard logs and metrics go here (any
            `tf.io.gfile` path).
        num_train_steps: optimizer steps in the whole run.
        global_batch_size: examples per step over all replicas; must be
            divisible by the number of replicas.
        steps_per_execution: steps run by one call of the compiled loop
            (fewer host round trips); metrics are logged after each call.
        save_checkpoints_steps: save every this many steps (rounded up to a
            multiple of `steps_per_execution`), and at the end. 0: only at
            the end.
        keep_checkpoint_max: checkpoints kept.
        jit_compile: compile the train step with XLA.
        tensorboard: write TensorBoard summaries under `output_dir/tensorboard`.
        verbose: 1 shows a Keras progress bar.
    """

    output_dir: str
    num_train_steps: int
    global_batch_size: int
    steps_per_execution: int = 1
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 3
    jit_compile: bool = False
    tensorboard: bool = True
    verbose: int = 1

    def __post_init__(self):
        for name in ("num_train_steps", "global_batch_size", "steps_per_execution"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.save_checkpoints_steps < 0:
            raise ValueError(
                f"save_checkpoints_steps must be >= 0, got {self.save_checkpoints_steps}."
            )


def check_batch_size(global_batch_size, strategy, flag="--train_batch_size"):
    """The per-replica batch size; an error naming `flag` if it does not divide."""
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise ValueError(
            f"{flag}={global_batch_size} is not divisible by the "
            f"{replicas} replicas of {type(strategy).__name__}; use a multiple "
            f"of {replicas}."
        )
    return global_batch_size // replicas


def _global_clipnorm(optimizer):
    inner = getattr(optimizer, "inner_optimizer", None)
    return None if inner is not None else optimizer.global_clipnorm


class Trainer:
    """Builds a model and optimizer in `strategy.scope()` and trains them.

    Args:
        strategy: a `tf.distribute.Strategy` (see `get_strategy`).
        build_model: returns the (uncompiled) Keras model; called in scope.
        build_optimizer: returns its optimizer; called in scope.
        settings: `TrainerSettings`.
        compile_kwargs: extra `model.compile` arguments (loss, metrics).
    """

    def __init__(
        self, strategy, build_model, build_optimizer, settings, compile_kwargs=None
    ):
        self.strategy = strategy
        self.settings = settings
        self.per_replica_batch_size = check_batch_size(
            settings.global_batch_size, strategy
        )
        self.chief = is_chief(strategy)
        with strategy.scope():
            self.model = build_model()
            self.model.build()
            self.model.compile(optimizer=build_optimizer(), **(compile_kwargs or {}))
            self.optimizer = self.model.optimizer
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = checkpoints.training_checkpoint(
            self.model, self.optimizer, self.step
        )
        self.checkpoint_dir = checkpoints.checkpoint_directory(settings.output_dir)
        self._train_steps = None

    def _checkpoint_manager(self, directory):
        return tf.train.CheckpointManager(
            self.checkpoint,
            directory,
            max_to_keep=self.settings.keep_checkpoint_max,
            checkpoint_name=checkpoints.CHECKPOINT_PREFIX,
        )

    # --- building ---------------------------------------------------------

    def _build_step_state(self, element_spec):
        """Creates the compile metrics' variables from the input's spec.

        They are created lazily on first use, which inside `strategy.run`
        would be inside a replica; so trace the loss and metrics once here.
        Tracing from the spec reads no batch: a second iterator over a
        shuffled dataset would see another order than the training one.
        """
        model = self.model

        @tf.function
        def trace(batch):
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
            y_pred = model(x, training=False)
            model.compute_loss(x, y, y_pred, sample_weight, training=False)
            model.compute_metrics(x, y, y_pred, sample_weight)
            return y_pred

        with self.strategy.scope():
            trace.get_concrete_function(element_spec)
        model.reset_metrics()

    def _replica_step(self, data):
        model, optimizer = self.model, self.optimizer
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x, y, y_pred, sample_weight, training=True)
            scaled_loss = optimizer.scale_loss(loss)
        variables = model.trainable_variables
        grads = tape.gradient(scaled_loss, variables)
        replicas = self.strategy.num_replicas_in_sync
        clipnorm = _global_clipnorm(optimizer)
        if replicas > 1 and clipnorm:
            # Keras clips each replica's partial gradient before summing;
            # BERT clips the summed one. Sum, clip, and hand the optimizer a
            # 1/replicas share so its own sum restores the clipped total
            # (whose norm is then below its clipnorm: no second clipping).
            grads = [tf.convert_to_tensor(g) for g in grads]
            grads = tf.distribute.get_replica_context().all_reduce("SUM", grads)
            grads, _ = tf.clip_by_global_norm(grads, clipnorm)
            grads = [g / replicas for g in grads]
        optimizer.apply_gradients(zip(grads, variables))
        model.compute_metrics(x, y, y_pred, sample_weight)
        return loss

    def _make_train_steps(self):
        strategy = self.strategy
        replica_step = self._replica_step
        if self.settings.jit_compile:
            replica_step = tf.function(replica_step, jit_compile=True)

        @tf.function
        def train_steps(iterator, num_steps):
            losses = tf.TensorArray(tf.float32, size=num_steps)
            for i in tf.range(num_steps):
                per_replica = strategy.run(replica_step, args=(next(iterator),))
                # Each replica's loss is already divided by the replicas.
                loss = strategy.reduce("SUM", per_replica, axis=None)
                losses = losses.write(i, tf.cast(loss, tf.float32))
            return losses.stack()

        return train_steps

    # --- running ----------------------------------------------------------

    def restore_latest(self):
        """Restores the newest checkpoint of `output_dir`; returns its step."""
        # Every worker restores the chief's checkpoint (a shared file system).
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        if latest is None:
            return 0
        checkpoints.restore(self.checkpoint, latest)
        return int(self.step.numpy())

    def distributed_iterator(self, dataset, skip=0):
        """An iterator of per-replica batches over `dataset` (global
        batches), after skipping `skip` of them; builds the step state."""
        self._build_step_state(dataset.element_spec)
        dataset = dataset.skip(skip)
        if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # Every worker reads the same batches and keeps its share.
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.DATA
            )
            dataset = dataset.with_options(options)
        return iter(self.strategy.experimental_distribute_dataset(dataset))

    def run_steps(self, iterator, num_steps):
        """Runs `num_steps` train steps in one compiled call (no checkpoint,
        no logging); returns their losses as a numpy array."""
        if self._train_steps is None:
            self._train_steps = self._make_train_steps()
        return self._train_steps(iterator, tf.constant(num_steps)).numpy()

    def train(self, dataset_fn, evaluate=None):
        """Trains until `num_train_steps`, resuming from the last checkpoint.

        Args:
            dataset_fn: returns a `tf.data.Dataset` of global batches of
                `(x, y)` or `(x, y, sample_weight)`, infinite (repeated),
                deterministic (seeded), with a static batch size.
            evaluate: optional `evaluate(model) -> {name: float}`, run at
                every checkpoint (e.g. on held-out data); its results join
                that step's row as `eval_<name>`, so the curves, CSV and
                TensorBoard show them beside the training metrics.

        Returns:
            The `History` (rows of step, loss, learning rate, metrics).
        """
        settings = self.settings
        start = self.restore_latest()
        history = History(
            os.path.join(settings.output_dir, "metrics"), resume_step=start
        )
        if start >= settings.num_train_steps:
            return history
        iterator = self.distributed_iterator(dataset_fn(), skip=start)
        # Saving is collective, so every worker saves; a non-chief worker
        # into a temporary directory that it removes at the end, as Keras'
        # and Model Garden's non-chief workers do.
        worker_dir = None if self.chief else tempfile.mkdtemp(prefix="kbi-worker-")
        manager = self._checkpoint_manager(worker_dir or self.checkpoint_dir)
        try:
            self._train_loop(iterator, start, history, manager, evaluate)
        finally:
            if worker_dir:
                tf.io.gfile.rmtree(worker_dir)
        return history

    def _train_loop(self, iterator, start, history, manager, evaluate):
        settings = self.settings
        writer = None
        if settings.tensorboard and self.chief:
            writer = tf.summary.create_file_writer(
                os.path.join(settings.output_dir, "tensorboard", "train")
            )
        progress = None
        if settings.verbose and self.chief:
            progress = keras.utils.Progbar(
                settings.num_train_steps, stateful_metrics=None
            )
            progress.update(start)
        save_every = settings.save_checkpoints_steps
        step = start
        while step < settings.num_train_steps:
            chunk = min(settings.steps_per_execution, settings.num_train_steps - step)
            if save_every:
                # End chunks on checkpoint boundaries.
                chunk = min(chunk, save_every - step % save_every)
            began = time.perf_counter()
            losses = self.run_steps(iterator, chunk)
            seconds = time.perf_counter() - began
            step += chunk
            self.step.assign(step)
            row = self._log_row(step, losses, chunk, seconds)
            save = (save_every and step % save_every == 0) or (
                step == settings.num_train_steps
            )
            if save and evaluate is not None:
                results = evaluate(self.model)
                row.update({f"eval_{k}": float(v) for k, v in results.items()})
            history.append(row)
            if writer is not None:
                with writer.as_default():
                    for offset, loss in enumerate(row["step_losses"]):
                        tf.summary.scalar(
                            "step_loss", loss, step=step - chunk + offset + 1
                        )
                    for name, value in row.items():
                        if name not in ("step", "step_losses"):
                            tf.summary.scalar(name, value, step=step)
            if progress is not None:
                progress.update(
                    step, [(k, v) for k, v in row.items() if k in ("loss",)]
                )
            if save:
                manager.save(checkpoint_number=step)
                if self.chief:
                    history.write()
        if writer is not None:
            writer.flush()

    def _log_row(self, step, losses, chunk, seconds):
        results = {
            name: float(value)
            for name, value in self.model.get_metrics_result().items()
            if name != "loss"
        }
        self.model.reset_metrics()
        row = {"step": step, "loss": float(losses.mean())}
        # The rate of the next step (the schedule at the optimizer's iterations).
        row["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.optimizer.learning_rate)
        )
        row.update(results)
        row["examples_per_second"] = chunk * self.settings.global_batch_size / seconds
        # Every step's loss, not just the chunk's mean (JSON only).
        row["step_losses"] = [float(v) for v in losses]
        return row
