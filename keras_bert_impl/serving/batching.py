"""Server-side batching of concurrent requests, with tensorflow_model_server's semantics.

Mirrors TF Serving's BatchingSession over a SharedBatchScheduler:
- tensorflow/core/kernels/batching_util/shared_batch_scheduler.h: one pool of
  `num_batch_threads` threads shared by every model, round-robin over the queues; a queue
  is a deque of batches whose last one is open; a task that does not fit the open batch
  closes it (UNAVAILABLE if `max_enqueued_batches` are already queued); a task larger than
  `max_batch_size` is INVALID_ARGUMENT "Task size N is larger than maximum input batch size
  M"; the open batch becomes runnable when full or `batch_timeout_micros` after its first
  task arrived (0: at once, so batches form only while threads are busy).
- tensorflow_serving/batching/batching_session.cc: one queue per signature and set of
  fetched outputs (requests with other output filters never share a batch); inputs are
  concatenated along dimension 0, padded first to the widest task when
  `pad_variable_length_inputs` (with each tensor's first element, as batching_util.cc
  does), then with copies of the last task's first row up to the next
  `allowed_batch_sizes` entry; one run; outputs are split back by each task's size; an
  error in the merged run is every task's error.
Queues belong to one servable (one loaded version), so models and versions never mix.
"""

import collections
import threading
import time

import numpy as np

from keras_bert_impl.serving import status

MAX_PADDED_RANK = 6


class _Task:
    __slots__ = ("inputs", "size", "output_aliases", "done", "outputs", "error")

    def __init__(self, inputs, size, output_aliases):
        self.inputs = inputs
        self.size = size
        self.output_aliases = output_aliases
        self.done = threading.Event()
        self.outputs = None
        self.error = None


def task_size(inputs):
    """The common dimension-0 size of a request's inputs (BatchingSession's checks)."""
    if not inputs:
        raise status.invalid_argument("Batching Run() must have at least one input tensor")
    sizes = set()
    for value in inputs.values():
        if np.ndim(value) == 0:
            raise status.invalid_argument(
                "Batching Run() input tensors must have at least one dimension"
            )
        sizes.add(np.shape(value)[0])
    if len(sizes) > 1:
        raise status.invalid_argument(
            "Batching Run() input tensors must have equal 0th-dimension size"
        )
    return sizes.pop()


def round_to_allowed(allowed_batch_sizes, size):
    """The smallest allowed size >= `size` (`size` itself when none is or none are set)."""
    return next((s for s in allowed_batch_sizes if s >= size), size)


def _pad_to(array, shape):
    if array.shape == tuple(shape):
        return array
    if array.ndim > MAX_PADDED_RANK:
        raise status.invalid_argument("Only tensors with rank from 1 to 6 can be padded.")
    if array.size == 0:
        raise status.invalid_argument("Got empty tensor in batch of non-empty tensors.")
    padded = np.full(shape, array.flat[0], dtype=array.dtype)
    padded[tuple(slice(0, d) for d in array.shape)] = array
    return padded


def merge_inputs(tasks, tensor_names, queue):
    """alias -> the tasks' inputs concatenated (and padded) along dimension 0."""
    size = sum(task.size for task in tasks)
    padding = round_to_allowed(queue.allowed_batch_sizes, size) - size
    merged = {}
    for alias, tensor_name in tensor_names.items():
        arrays = [np.asarray(task.inputs[alias]) for task in tasks]
        one_rank = len({a.ndim for a in arrays}) == 1
        if queue.pad_variable_length_inputs and one_rank:
            widest = np.max([a.shape for a in arrays], axis=0)
            arrays = [_pad_to(a, (a.shape[0], *widest[1:])) for a in arrays]
        if any(a.shape[1:] != arrays[0].shape[1:] for a in arrays):
            if queue.pad_variable_length_inputs:
                raise status.ServingError(
                    status.grpc.StatusCode.INTERNAL,
                    f"Tensor concat operation failed: inputs '{tensor_name}' of different "
                    "ranks cannot be concatenated",
                )
            raise status.failed_precondition(
                f"Tensors with name '{tensor_name}' from different tasks have different "
                "shapes and padding is turned off. Set pad_variable_length_inputs to true, "
                "or ensure that all tensors with the same name have equal dimensions "
                "starting with the first dim."
            )
        if padding:
            arrays.append(np.repeat(arrays[-1][:1], padding, axis=0))
        merged[alias] = np.concatenate(arrays, axis=0)
    return merged, size + padding


def split_outputs(tasks, outputs, padded_size):
    """Each task's rows of the merged outputs, for the outputs it asked for."""
    for value in outputs.values():
        if np.ndim(value) == 0:
            raise status.failed_precondition("Batched output tensor has 0 dimensions")
        if np.shape(value)[0] != padded_size:
            raise status.failed_precondition(
                "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                "dimension sizes of the input tensors"
            )
    start = 0
    for task in tasks:
        stop = start + task.size
        task.outputs = {alias: outputs[alias][start:stop] for alias in task.output_aliases}
        start = stop


class _Queue:
    """The batches of one (servable, signature, fetched outputs); guarded by the
    scheduler's lock."""

    def __init__(self, params, tensor_names, run):
        self.params = params
        self.tensor_names = tensor_names  # input alias -> graph tensor name
        self.run = run  # merged inputs -> outputs
        self.batches = collections.deque([[]])
        self.open_size = 0
        self.open_since = 0.0

    def add(self, task):
        params = self.params
        if task.size > params.max_batch_size:
            raise status.invalid_argument(
                f"Task size {task.size} is larger than maximum input batch size "
                f"{params.max_batch_size}"
            )
        if self.open_size + task.size > params.max_batch_size:
            if len(self.batches) >= params.max_enqueued_batches:
                raise status.unavailable(
                    "The batch scheduling queue to which this task was submitted is full; "
                    f"currently {len(self.batches)} batches enqueued and "
                    f"max_enqueued_batches is {params.max_enqueued_batches}"
                )
            self._close_open_batch()
        if not self.batches[-1]:
            self.open_since = time.monotonic()
        self.batches[-1].append(task)
        self.open_size += task.size

    def _close_open_batch(self):
        self.batches.append([])
        self.open_size = 0

    def empty(self):
        return len(self.batches) == 1 and not self.batches[0]

    def open_deadline(self):
        return self.open_since + self.params.batch_timeout_micros / 1e6

    def take(self, now, closing=False):
        """The next runnable batch, or None (`closing`: the open one runs at once)."""
        if len(self.batches) == 1 and self.batches[0] and (
            closing
            or self.open_size >= self.params.max_batch_size
            or now >= self.open_deadline()
        ):
            self._close_open_batch()
        return self.batches.popleft() if len(self.batches) > 1 else None

    def process(self, tasks):
        error = None
        try:
            merged, padded_size = merge_inputs(tasks, self.tensor_names, self.params)
            split_outputs(tasks, self.run(merged), padded_size)
        except status.ServingError as serving_error:
            error = serving_error
        except Exception as unexpected:  # noqa: BLE001 - every waiting request must hear of it
            error = status.ServingError(status.grpc.StatusCode.INTERNAL, str(unexpected))
        for task in tasks:
            task.error = error
            task.done.set()


class BatchScheduler:
    """The batch threads shared by every batched model (SharedBatchScheduler)."""

    def __init__(self, num_batch_threads, thread_pool_name):
        self._cond = threading.Condition()
        self._active = []  # queues holding tasks, served round-robin
        self._next = 0
        self._stopping = False
        self._threads = [
            threading.Thread(
                target=self._thread_loop, name=f"{thread_pool_name}_{i}", daemon=True
            )
            for i in range(num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def schedule(self, queue, task):
        """Queues `task` (or raises its scheduling error); returns once it has run."""
        with self._cond:
            if self._stopping:
                raise status.unavailable("The batch scheduler is shutting down")
            queue.add(task)
            if queue not in self._active:
                self._active.append(queue)
            self._cond.notify()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def _next_batch(self):
        now = time.monotonic()
        for _ in range(len(self._active)):
            self._next %= len(self._active)
            queue = self._active[self._next]
            batch = queue.take(now, closing=self._stopping)
            if queue.empty():
                self._active.pop(self._next)
            else:
                self._next += 1
            if batch:
                return queue, batch
        return None, None

    def _wait_time(self):
        deadlines = [q.open_deadline() for q in self._active if len(q.batches) == 1]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _thread_loop(self):
        while True:
            with self._cond:
                queue, batch = self._next_batch()
                while batch is None:
                    if self._stopping:
                        return
                    self._cond.wait(self._wait_time())
                    queue, batch = self._next_batch()
                if self._active:
                    self._cond.notify()  # someone else watches the remaining queues
            queue.process(batch)

    def stop(self):
        """Runs what is queued (partial batches at once), then ends the threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()


class ServableBatcher:
    """The batching queues of one servable: `run(signature, inputs, output_aliases, direct)`
    batches the call with concurrent ones of the same signature and outputs."""

    def __init__(self, scheduler, queue_params):
        self.scheduler = scheduler
        self.params = queue_params
        self._queues = {}
        self._lock = threading.Lock()

    def run(self, signature, inputs, output_aliases, direct):
        """`direct(signature, merged_inputs, outputs)` runs one merged batch."""
        size = task_size(inputs)
        fetched = tuple(sorted(output_aliases))
        key = (id(signature), tuple(sorted(inputs)), fetched)
        with self._lock:
            queue = self._queues.get(key)
            if queue is None:
                names = {alias: signature.inputs[alias].name for alias in sorted(inputs)}
                queue = _Queue(
                    self.params,
                    names,
                    lambda merged: direct(signature, merged, fetched),
                )
                self._queues[key] = queue
        task = _Task(inputs, size, tuple(output_aliases))
        return self.scheduler.schedule(queue, task)
