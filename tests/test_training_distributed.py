"""Runs that need their own process: MirroredStrategy over 2 logical CPUs
against the default strategy, MultiWorkerMirroredStrategy over two worker
processes on 127.0.0.1, and a run killed with SIGKILL then resumed against an
uninterrupted one."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import numpy as np

import pretraining_records
from model_helpers import tiny_config

CHILD = os.path.join(os.path.dirname(__file__), "training_child.py")


def _child(*args, env=None, **kwargs):
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=os.pathsep.join(sys.path),
        **(env or {}),
    )
    return subprocess.Popen(
        [sys.executable, CHILD, *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def _finish(process, timeout=600):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err.decode()[-3000:]
    return out.decode()


def test_mirrored_two_replicas_matches_default_strategy(tmp_path):
    result = tmp_path / "curves.json"
    _finish(_child("mirrored", result))
    curves = json.loads(result.read_text())
    assert curves["mirrored"]["replicas"] == 2
    default = np.array(curves["default"]["losses"])
    mirrored = np.array(curves["mirrored"]["losses"])
    assert len(default) == len(mirrored) == 12
    assert default[-1] < default[0]  # it trains
    np.testing.assert_allclose(mirrored, default, rtol=1e-4)
    # Sums of |weights| per variable. Summation order differs between one
    # and two replicas, and Adam's m/sqrt(v) turns that float noise in
    # near-zero gradients (ids never seen) into visible update noise.
    np.testing.assert_allclose(
        curves["mirrored"]["weights"],
        curves["default"]["weights"],
        rtol=1e-3,
        atol=1e-3,
    )


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_mirrored_two_processes_end_identical(tmp_path):
    records = tmp_path / "train.tfrecord"
    pretraining_records.write_records(records, 40, 16, 4)
    config = tmp_path / "bert_config.json"
    tiny_config(hidden_dropout=0.1, attention_dropout=0.1).write_json_file(config)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    try:
        for index in range(2):
            # Each worker's own temporary directory, to see what it leaves.
            (tmp_path / f"tmp{index}").mkdir()
            env = {
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": index}}
                ),
                "TMPDIR": str(tmp_path / f"tmp{index}"),
            }
            workers.append(
                _child(
                    "multi_worker",
                    tmp_path / f"out{index}",
                    records,
                    config,
                    4,
                    tmp_path / f"weights{index}.npz",
                    env=env,
                )
            )
        outputs = [json.loads(_finish(w, timeout=300)) for w in workers]
    finally:  # a worker left alone would wait for its peer forever
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert [o["replicas"] for o in outputs] == [2, 2]
    assert outputs[0]["losses"] == outputs[1]["losses"]
    assert len(outputs[0]["losses"]) == 4 and np.all(np.isfinite(outputs[0]["losses"]))
    chief, worker = (np.load(tmp_path / f"weights{i}.npz") for i in range(2))
    trained = sorted(k for k in chief.files if k.startswith("trained_"))
    assert trained and sorted(worker.files) == trained
    for name in trained:
        np.testing.assert_array_equal(worker[name], chief[name])
        np.testing.assert_array_equal(
            chief[name.replace("trained", "saved")], chief[name]
        )
    # Only the chief writes: checkpoints, metrics, the model; the other
    # worker's output directory stays empty and its temporary
    # checkpoint directory is gone.
    out = tmp_path / "out0"
    assert sorted(p.name for p in (out / "checkpoints").glob("*.index")) == [
        "ckpt-2.index",
        "ckpt-4.index",
    ]
    assert (out / "model.keras").exists() and (out / "metrics.json").exists()
    assert list((tmp_path / "out1").rglob("*")) == []
    assert not list((tmp_path / "tmp1").glob("kbi-worker-*"))


def test_sigkill_at_a_random_step_then_resume_is_exact(tmp_path):
    records = tmp_path / "train.tfrecord"
    pretraining_records.write_records(records, 40, 16, 4)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(pretraining_records.TINY_VOCAB) + "\n")
    config = tmp_path / "bert_config.json"
    # Dropout on: the resumed run must draw the masks the killed one would have.
    tiny_config(
        vocab_size=len(pretraining_records.TINY_VOCAB),  # as --vocab_file has
        hidden_dropout=0.1,
        attention_dropout=0.1,
    ).write_json_file(config)
    steps = 14
    common = (records, vocab, config, steps)

    straight = _child("pretrain", tmp_path / "straight", *common)
    killed_dir = tmp_path / "killed"
    killed = _child("pretrain", killed_dir, *common, "--slow")
    # Kill after a random checkpoint (every 3 steps), mid-way to the next.
    target = random.Random().choice([3, 6, 9])
    metrics = killed_dir / "checkpoints" / f"ckpt-{target}.index"
    deadline = time.time() + 600
    while not metrics.exists():
        assert killed.poll() is None, killed.stderr.read().decode()[-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    time.sleep(random.uniform(0.1, 0.3))
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert not (killed_dir / "model.keras").exists()
    _finish(_child("pretrain", killed_dir, *common))
    _finish(straight)

    a = np.load(tmp_path / "straight" / "weights.npz")
    b = np.load(killed_dir / "weights.npz")
    assert len(a.files) == len(b.files) > 0
    for name in a.files:
        np.testing.assert_allclose(b[name], a[name], rtol=0, atol=1e-6)
    rows = json.loads((killed_dir / "metrics.json").read_text())
    assert [row["step"] for row in rows] == list(range(1, steps + 1))
