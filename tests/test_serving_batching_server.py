"""kbi-serve with --enable_batching on a kbi-export'ed model: the export's batching
parameters, 16 concurrent single-sentence clients answered as without batching, the
session parallelism flags applied, and bad batching flags refused at start."""

import os
import threading

import numpy as np
import pytest
import tensorflow as tf
from model_helpers import tiny_config
from serving_helpers import TF_SERVING_DATA, kbi_serve, run_kbi_serve_to_exit

from keras_bert_impl import BertClassifier
from keras_bert_impl.export import batching_files
from keras_bert_impl.export.check import check_servable
from keras_bert_impl.export.exporter import export_classifier
from keras_bert_impl.serving import Client, ServingError
from keras_bert_impl.serving import batching_parameters as bp
from keras_bert_impl.serving.servable import Servable
from keras_bert_impl.text import Tokenizer

MAX_SEQ_LENGTH = 32
SENTENCES = [
    "a gripping film",
    "the plot is thin and the dialogue is worse",
    "fun",
    "it is neither as funny nor as clever as it thinks it is but the cast is game",
    "",
    "paris is the capital of france",
    "a dull plot",
    "beautifully acted",
] * 2
HALF_PLUS_TWO = os.path.join(TF_SERVING_DATA, "saved_model_half_plus_two_cpu")
INTER_OP_THREADS = 2 * (os.cpu_count() or 1) + 1  # never a default pool size


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    tf.keras.utils.set_random_seed(3)
    words = sorted({w for s in SENTENCES for w in s.split()})
    tokenizer = Tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)
    model = BertClassifier(
        tiny_config(vocab_size=tokenizer.vocab_size, max_position_embeddings=64),
        num_classes=3,
    )
    model.build()
    root = tmp_path_factory.mktemp("saved_models") / "sst"
    return export_classifier(model, root, tokenizer, max_seq_length=MAX_SEQ_LENGTH)


@pytest.fixture(scope="module")
def server(export):
    parameters = os.path.join(os.path.dirname(export), batching_files.SERVER_FILE)
    with kbi_serve(
        "--model_name=sst",
        f"--model_base_path={os.path.dirname(export)}",
        "--enable_batching",
        f"--batching_parameters_file={parameters}",
        "--tensorflow_intra_op_parallelism=1",
        f"--tensorflow_inter_op_parallelism={INTER_OP_THREADS}",
        rest=False,
    ) as running:
        yield running


def test_kbi_export_writes_batching_parameters_that_suit_the_model(export):
    version_file = os.path.join(export, batching_files.PER_VERSION_FILE)
    server_file = os.path.join(os.path.dirname(export), batching_files.SERVER_FILE)
    with open(version_file) as f, open(server_file) as g:
        assert f.read() == g.read()
    params = bp.read(version_file)
    # 4096 tokens of max_seq_length 32 is 128, capped at 64.
    assert params.queue == bp.QueueParameters(
        max_batch_size=64,
        batch_timeout_micros=1000,
        max_enqueued_batches=10,
        allowed_batch_sizes=(1, 2, 4, 8, 16, 32, 64),
        pad_variable_length_inputs=True,
    )
    assert batching_files.default_max_batch_size(128) == 32
    assert batching_files.default_max_batch_size(512) == 8
    with pytest.raises(ValueError, match=r"max_batch_size \(batching\) must be a positive"):
        batching_files.batching_text(128, max_batch_size=0)


def test_kbi_check_servable_validates_the_batching_files(export, tmp_path):
    report = check_servable(export, clean_load=False)
    assert report.ok, report.problems
    assert any("batching_params.pbtxt" in note and "max_batch_size 64" in note
               for note in report.notes)
    bad = tmp_path / "bad" / "1"
    bad.mkdir(parents=True)
    (bad / batching_files.PER_VERSION_FILE).write_text(
        "max_batch_size { value: 8 } allowed_batch_sizes: 4"
    )
    problems, _ = batching_files.check_batching_files(str(bad))
    assert problems == [
        f"{bad / batching_files.PER_VERSION_FILE}: Last entry in allowed_batch_sizes must "
        "match max_batch_size; last entry was 4; expected 8"
    ]


def test_sixteen_concurrent_single_sentences_get_the_unbatched_answers(export, server):
    unbatched = Servable("sst", 1, export)
    want = [
        unbatched.predict("serving_default", {"text": np.array([s.encode()], dtype=object)})[1]
        for s in SENTENCES
    ]
    got = [None] * len(SENTENCES)

    def ask(i):
        with Client(server.grpc_target, "sst", timeout=60) as client:
            got[i] = client.predict({"text": [SENTENCES[i]]})

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(SENTENCES))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for sentence, answer, expected in zip(SENTENCES, got, want):
        assert answer is not None, sentence
        # Same graph, other batch shapes: equal up to float rounding.
        np.testing.assert_allclose(
            answer["probabilities"], expected["probabilities"], rtol=0, atol=1e-6
        )
        assert answer["label_id"].tolist() == expected["label_id"].tolist()


def test_a_request_over_max_batch_size_is_invalid_argument_over_grpc(server):
    with Client(server.grpc_target, "sst", timeout=60) as client:
        with pytest.raises(ServingError) as caught:
            client.predict({"text": ["a gripping film"] * 65})
    assert caught.value.code.name == "INVALID_ARGUMENT"
    assert caught.value.message == "Task size 65 is larger than maximum input batch size 64"


def test_session_parallelism_flags_size_the_runtime_thread_pools(server):
    assert (
        f"TensorFlow threads: intra_op=1 inter_op={INTER_OP_THREADS}" in server.log()
    ), server.log()
    assert "already started" not in server.log()
    task_dir = f"/proc/{server.process.pid}/task"
    names = []
    for task in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, task, "comm")) as f:
                names.append(f.read().strip())
        except OSError:
            continue  # a thread that just ended
    # Inter-op pools ("tf_Compute"): the sessions' shared one, and the eager runtime's.
    compute = names.count("tf_Compute")
    assert compute in (INTER_OP_THREADS, 2 * INTER_OP_THREADS), names


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--batching_parameters_file={file}"],
            "--batching_parameters_file is set without setting --enable_batching to true",
        ),
        (
            ["--enable_batching", "--batching_parameters_file={file}"],
            "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 4; "
            "expected 8",
        ),
        (
            ["--tensorflow_session_parallelism=1", "--tensorflow_intra_op_parallelism=1",
             "--tensorflow_inter_op_parallelism=1"],
            "You cannot configure all",
        ),
    ],
)
def test_bad_batching_or_session_flags_stop_kbi_serve_with_one_clear_error(
    tmp_path, flags, message
):
    parameters = tmp_path / "batching.txt"
    parameters.write_text("max_batch_size { value: 8 } allowed_batch_sizes: 4")
    code, output = run_kbi_serve_to_exit(
        f"--model_base_path={HALF_PLUS_TWO}", *[f.format(file=parameters) for f in flags]
    )
    assert code == 1, output
    assert message in output
    assert "Traceback" not in output
