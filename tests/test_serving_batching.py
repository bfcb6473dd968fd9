"""Server-side batching (TF Serving's BatchingSession semantics), in process: merging and
splitting, padding, timeouts, queue limits, isolation of signatures and output filters,
the BatchingParameters file and its checks, per-model parameters, the session options."""

import os
import shutil
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import TF_SERVING_DATA
from tensorflow.core.protobuf import meta_graph_pb2

from keras_bert_impl.serving import ServerOptions, ServingError, batching
from keras_bert_impl.serving import batching_parameters as bp
from keras_bert_impl.serving.servable_factory import ServableFactory, session_config

HALF_PLUS_TWO = os.path.join(
    TF_SERVING_DATA, "saved_model_half_plus_two_cpu", "00000123"
)
LONG = 30_000_000  # a timeout no test waits for: only full batches close


def _queue(max_batch_size=4, timeout=LONG, allowed=(), pad=False, max_enqueued=10):
    return bp.QueueParameters(
        max_batch_size, timeout, max_enqueued, tuple(allowed), pad
    )


def _signature(*aliases):
    signature = meta_graph_pb2.SignatureDef()
    for alias in aliases:
        signature.inputs[alias].name = f"{alias}:0"
    return signature


class Recorder:
    """A `direct` run that doubles its input and records every merged batch."""

    def __init__(self, gate=None):
        self.batches = []
        self.gate = gate
        self.entered = threading.Event()

    def __call__(self, signature, inputs, outputs):
        self.entered.set()
        if self.gate is not None:
            self.gate.wait()
        self.batches.append({k: np.array(v) for k, v in inputs.items()})
        return {name: inputs["x"] * 2 for name in outputs}


@pytest.fixture
def scheduler():
    running = batching.BatchScheduler(2, "test_batch_threads")
    yield running
    running.stop()


def _run_concurrently(calls):
    """Runs each zero-argument call on its own thread -> results or errors, in order."""
    results = [None] * len(calls)

    def one(i):
        try:
            results[i] = calls[i]()
        except ServingError as error:
            results[i] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_full_batch_merges_requests_and_splits_answers_in_order(scheduler):
    batcher = batching.ServableBatcher(scheduler, _queue(max_batch_size=6))
    record, signature = Recorder(), _signature("x")
    sizes = [1, 2, 3]
    results = _run_concurrently(
        [
            lambda n=n: batcher.run(
                signature, {"x": np.full(n, float(n))}, ["y"], record
            )
            for n in sizes
        ]
    )
    assert len(record.batches) == 1 and record.batches[0]["x"].shape == (6,)
    for n, result in zip(sizes, results):
        np.testing.assert_array_equal(result["y"], np.full(n, 2.0 * n))


def test_timeout_closes_a_partial_batch_padded_to_an_allowed_size(scheduler):
    batcher = batching.ServableBatcher(
        scheduler, _queue(max_batch_size=8, timeout=2000, allowed=(2, 4, 8))
    )
    record = Recorder()
    result = batcher.run(
        _signature("x"), {"x": np.array([1.0, 2.0, 3.0])}, ["y"], record
    )
    np.testing.assert_array_equal(result["y"], [2.0, 4.0, 6.0])
    # Padded with the last task's first row up to the allowed size 4.
    np.testing.assert_array_equal(record.batches[0]["x"], [1.0, 2.0, 3.0, 1.0])


def test_a_request_larger_than_max_batch_size_is_invalid_argument(scheduler):
    batcher = batching.ServableBatcher(scheduler, _queue(max_batch_size=4))
    with pytest.raises(ServingError) as caught:
        batcher.run(_signature("x"), {"x": np.zeros(5)}, ["y"], Recorder())
    assert caught.value.code.name == "INVALID_ARGUMENT"
    assert (
        caught.value.message == "Task size 5 is larger than maximum input batch size 4"
    )


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({"x": np.float32(1.0)}, "must have at least one dimension"),
        ({"x": np.zeros(2), "z": np.zeros(3)}, "must have equal 0th-dimension size"),
    ],
)
def test_inputs_without_a_common_batch_dimension_are_refused(
    scheduler, inputs, message
):
    batcher = batching.ServableBatcher(scheduler, _queue())
    with pytest.raises(ServingError, match=message):
        batcher.run(_signature(*inputs), inputs, ["y"], Recorder())


def test_ragged_inputs_are_padded_with_their_first_element_when_asked(scheduler):
    batcher = batching.ServableBatcher(scheduler, _queue(max_batch_size=2, pad=True))
    record, signature = Recorder(), _signature("x")
    short, long = np.array([[5, 6]]), np.array([[1, 2, 3]])
    results = _run_concurrently(
        [
            lambda x=x: batcher.run(signature, {"x": x}, ["y"], record)
            for x in (short, long)
        ]
    )
    merged = record.batches[0]["x"]
    assert sorted(map(tuple, merged.tolist())) == [(1, 2, 3), (5, 6, 5)]
    np.testing.assert_array_equal(results[0]["y"], [[10, 12, 10]])
    np.testing.assert_array_equal(results[1]["y"], [[2, 4, 6]])


def test_an_error_of_a_merged_run_reaches_every_request_of_it(scheduler):
    batcher = batching.ServableBatcher(scheduler, _queue(max_batch_size=2, pad=False))
    signature = _signature("x")
    results = _run_concurrently(
        [
            lambda x=x: batcher.run(signature, {"x": x}, ["y"], Recorder())
            for x in (np.zeros((1, 2)), np.zeros((1, 3)))
        ]
    )
    for result in results:
        assert isinstance(result, ServingError)
        assert result.code.name == "FAILED_PRECONDITION"
        assert "Tensors with name 'x:0' from different tasks have different shapes" in (
            result.message
        )


def test_a_full_queue_turns_requests_away_as_unavailable():
    scheduler = batching.BatchScheduler(1, "one_thread")
    gate = threading.Event()
    batcher = batching.ServableBatcher(
        scheduler, _queue(max_batch_size=1, timeout=0, max_enqueued=1)
    )
    blocked, signature = Recorder(gate), _signature("x")

    def run():
        return batcher.run(signature, {"x": np.zeros(1)}, ["y"], blocked)

    first = threading.Thread(target=run)
    first.start()
    blocked.entered.wait()  # the only batch thread now runs the first request
    second = threading.Thread(target=run)
    second.start()
    (queue,) = batcher._queues.values()  # noqa: SLF001 - waiting for the second to queue
    while queue.open_size == 0:
        time.sleep(0.01)
    with pytest.raises(ServingError) as caught:
        run()
    gate.set()
    first.join()
    second.join()
    scheduler.stop()
    assert caught.value.code.name == "UNAVAILABLE"
    assert caught.value.message == (
        "The batch scheduling queue to which this task was submitted is full; currently 1 "
        "batches enqueued and max_enqueued_batches is 1"
    )


def test_stopping_runs_the_batches_still_waiting_for_their_timeout():
    scheduler = batching.BatchScheduler(1, "stopping")
    batcher = batching.ServableBatcher(scheduler, _queue(max_batch_size=8))
    results = []
    waiting = threading.Thread(
        target=lambda: results.append(
            batcher.run(_signature("x"), {"x": np.array([3.0])}, ["y"], Recorder())
        )
    )
    waiting.start()
    while not batcher._queues or next(iter(batcher._queues.values())).open_size == 0:  # noqa: SLF001
        time.sleep(0.01)
    scheduler.stop()
    waiting.join()
    np.testing.assert_array_equal(results[0]["y"], [6.0])
    with pytest.raises(ServingError, match="shutting down"):
        batcher.run(_signature("x"), {"x": np.array([3.0])}, ["y"], Recorder())


def _servable(tmp_path=None, **options):
    factory = ServableFactory(ServerOptions(enable_batching=True, **options))
    return factory, factory("half_plus_two", 123, str(tmp_path or HALF_PLUS_TWO))


def test_servable_batches_predict_and_regress_but_never_mixes_signatures_or_filters(
    tmp_path,
):
    params = tmp_path / "batching.txt"
    params.write_text(
        "max_batch_size { value: 64 } batch_timeout_micros { value: 20000 }"
    )
    factory, servable = _servable(batching_parameters_file=str(params))
    merged = []
    run_now = servable._run_now  # noqa: SLF001 - observing the merged runs

    def recording(signature, inputs, outputs):
        merged.append((id(signature), tuple(outputs), len(next(iter(inputs.values())))))
        return run_now(signature, inputs, outputs)

    servable._run_now = recording  # noqa: SLF001
    example = tf.train.Example()
    example.features.feature["x"].float_list.value.append(4.0)
    calls = [
        lambda i=i: servable.predict(
            "serving_default", {"x": np.full(1, float(i), np.float32)}
        )
        for i in range(6)
    ] + [
        lambda: servable.predict(
            "serving_default", {"x": np.ones(2, np.float32)}, ["y"]
        ),
        lambda: servable.regress("regress_x_to_y", [example.SerializeToString()]),
    ]
    results = _run_concurrently(calls)
    factory.stop()
    for i in range(6):
        np.testing.assert_allclose(results[i][1]["y"], [0.5 * i + 2.0])
    np.testing.assert_allclose(results[6][1]["y"], [2.5, 2.5])
    np.testing.assert_allclose(results[7][1], [4.0])
    assert sum(size for *_, size in merged) == 9  # every row ran exactly once
    by_signature = {}
    for signature_id, outputs, _size in merged:
        by_signature.setdefault(signature_id, set()).add(outputs)
    assert all(len(outputs) == 1 for outputs in by_signature.values())


def test_per_model_parameters_come_from_the_version_directory(tmp_path):
    version = tmp_path / "123"
    shutil.copytree(HALF_PLUS_TWO, version)
    (version / bp.PER_MODEL_FILE).write_text("max_batch_size { value: 2 }\n")
    factory, servable = _servable(version, enable_per_model_batching_parameters=True)
    too_big = "Task size 3 is larger than maximum input batch size 2"
    with pytest.raises(ServingError, match=too_big):
        servable.predict("serving_default", {"x": np.ones(3, np.float32)})
    # A version without the file is not batched at all (no size limit).
    unbatched = factory("plain", 1, HALF_PLUS_TWO)
    outputs = unbatched.predict("serving_default", {"x": np.ones(1001, np.float32)})[1]
    assert outputs["y"].shape == (1001,)
    (version / bp.PER_MODEL_FILE).write_text("max_batch_size: 2\n")
    with pytest.raises(ServingError, match="Invalid protobuf file") as caught:
        factory("bad", 123, str(version))
    assert caught.value.code.name == "INVALID_ARGUMENT"
    factory.stop()


@pytest.mark.parametrize(
    "text, message",
    [
        ("max_batch_size: 8", r"Invalid protobuf file: '.*': 1:\d+ : .*Expected \"{\""),
        ("max_batch_sise { value: 8 }", "Invalid protobuf file.*max_batch_sise"),
        (
            "max_batch_size { value: 8 } allowed_batch_sizes: 4",
            "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 4; "
            "expected 8",
        ),
        (
            "max_batch_size { value: 8 } allowed_batch_sizes: [4, 2, 8]",
            r"allowed_batch_sizes entries must be monotonically increasing.*\[4, 2, 8\]",
        ),
        (
            "allowed_batch_sizes: 1000 allowed_batch_sizes: 1000",
            "monotonically increasing",
        ),
        ("num_batch_threads { value: 0 }", "num_batch_threads must be positive; was 0"),
        (
            "max_batch_size { value: 0 }",
            "input_batch_size_limit must be positive; was 0",
        ),
        (
            "batch_timeout_micros { value: -1 }",
            "batch_timeout_micros must be non-negative",
        ),
        (
            "max_enqueued_batches { value: 0 }",
            "max_enqueued_batches must be positive; was 0",
        ),
        ("enable_large_batch_splitting { value: true }", "not supported by kbi-serve"),
    ],
)
def test_bad_batching_parameters_get_one_clear_error(tmp_path, text, message):
    path = tmp_path / "batching.txt"
    path.write_text(text)
    with pytest.raises(bp.BatchingParametersError, match=message):
        bp.read(str(path))


def test_batching_parameters_defaults_are_tf_servings():
    params = bp.parse("", "empty")
    assert params.queue == bp.QueueParameters(1000, 0, 10, (), False)
    assert params.num_batch_threads == (os.cpu_count() or 1)
    assert params.thread_pool_name == "model_server_batch_threads"
    unreadable = "--batching_parameters_file=.*cannot read"
    with pytest.raises(bp.BatchingParametersError, match=unreadable):
        bp.read("/nonexistent/batching.txt")


def test_batching_flags_need_enable_batching_and_parallelism_flags_follow_server_cc():
    with pytest.raises(
        ValueError,
        match="--batching_parameters_file is set without setting --enable_batching",
    ):
        ServableFactory(ServerOptions(batching_parameters_file="x.txt"))
    config = session_config(ServerOptions(tensorflow_intra_op_parallelism=3))
    assert (
        config.intra_op_parallelism_threads,
        config.inter_op_parallelism_threads,
    ) == (3, 0)
    config = session_config(ServerOptions(tensorflow_session_parallelism=2))
    assert (
        config.intra_op_parallelism_threads,
        config.inter_op_parallelism_threads,
    ) == (2, 2)
    with pytest.raises(ValueError, match="You cannot configure all"):
        session_config(
            ServerOptions(
                tensorflow_session_parallelism=1,
                tensorflow_intra_op_parallelism=1,
                tensorflow_inter_op_parallelism=1,
            )
        )
    with pytest.raises(ValueError, match="--tensorflow_inter_op_parallelism=-1"):
        session_config(ServerOptions(tensorflow_inter_op_parallelism=-1))
