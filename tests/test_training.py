"""The training package: optimizer recipe, strategies, metrics, checkpoints,
the trainer's precision/XLA paths, and kbi-finetune / kbi-pretrain end to end
on tiny models, including their bad-input errors."""

import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_bert_impl import BertPretrainer
from keras_bert_impl.training import Trainer, TrainerSettings, create_optimizer
from keras_bert_impl.training import checkpoints, evaluation, get_strategy
from keras_bert_impl.tasks.finetuning import run_finetuning
from keras_bert_impl.tasks.settings import FinetuneSettings
from keras_bert_impl.training.optimization import WarmupPolynomialDecay
from keras_bert_impl.training.pretraining import run_pretraining
from keras_bert_impl.training.settings import PretrainSettings
from keras_bert_impl.training.trainer import check_batch_size
from model_helpers import tiny_config, tiny_inputs
import pretraining_records

TOOLS = os.path.join(os.path.dirname(__file__), os.pardir)


# --- optimizer ----------------------------------------------------------------


def test_schedule_matches_transformers_linear_warmup():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=3e-4)
    reference = transformers.get_linear_schedule_with_warmup(optimizer, 7, 50)
    ours = WarmupPolynomialDecay(3e-4, 50, warmup_steps=7)
    for step in range(60):
        expected = optimizer.param_groups[0]["lr"]
        assert float(ours(step)) == pytest.approx(expected, rel=1e-5, abs=1e-12)
        optimizer.step()
        reference.step()


def test_weight_decay_skips_layer_norm_and_biases():
    model = BertPretrainer(tiny_config())
    model.build()
    optimizer = create_optimizer(0.1, 10, 0, weight_decay=0.5)
    optimizer.build(model.trainable_variables)
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    zeros = [tf.zeros_like(v) for v in model.trainable_variables]
    optimizer.apply_gradients(zip(zeros, model.trainable_variables))
    decayed, kept = [], []
    for v in model.trainable_variables:
        changed = not np.allclose(v.numpy(), before[v.path])
        (decayed if changed else kept).append(v.name)
    assert set(kept) <= {"gamma", "beta", "bias", "output_bias"}
    assert {"gamma", "beta", "bias", "output_bias"} <= set(kept)
    assert {"kernel", "embeddings"} <= set(decayed)


def test_lamb_and_unknown_optimizer():
    assert isinstance(
        create_optimizer(1e-3, 10, 1, optimizer="lamb"), keras.optimizers.Lamb
    )
    with pytest.raises(ValueError, match="--optimizer='sgd'.*adamw"):
        create_optimizer(1e-3, 10, 1, optimizer="sgd")


# --- strategies ---------------------------------------------------------------


def test_unknown_strategy_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"--strategy='ps'.*multi_worker_mirrored"):
        get_strategy("ps")


def test_tpu_needs_an_address_and_reports_an_unreachable_one():
    with pytest.raises(ValueError, match="needs --tpu"):
        get_strategy("tpu")
    asked = []

    class UnreachableResolver:
        def __init__(self, tpu):
            asked.append(tpu)
            raise ValueError("Could not lookup TPU metadata")

    with pytest.raises(ValueError, match="Cannot reach TPU 'my-tpu'"):
        get_strategy("tpu", tpu="my-tpu", resolver_factory=UnreachableResolver)
    assert asked == ["my-tpu"]
    with pytest.raises(ValueError, match="only used with --strategy=tpu"):
        get_strategy("default", tpu="my-tpu")


def test_batch_must_divide_over_replicas():
    class ThreeReplicas:
        num_replicas_in_sync = 3

    assert check_batch_size(12, ThreeReplicas()) == 4
    with pytest.raises(
        ValueError, match="--train_batch_size=32 is not divisible by the 3"
    ):
        check_batch_size(32, ThreeReplicas())


def test_multi_worker_rejects_malformed_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG must be JSON"):
        get_strategy("multi_worker_mirrored")


# --- metrics ------------------------------------------------------------------


def test_glue_metrics_match_scipy_and_sklearn():
    stats = pytest.importorskip("scipy.stats")
    sk_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    assert evaluation.matthews_corrcoef(labels, predictions) == pytest.approx(
        sk_metrics.matthews_corrcoef(labels, predictions)
    )
    assert evaluation.binary_f1(labels, predictions) == pytest.approx(
        sk_metrics.f1_score(labels, predictions)
    )
    x = rng.integers(0, 6, 100).astype(float)  # ties
    y = x + rng.normal(size=100)
    assert evaluation.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])
    assert evaluation.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])


def test_entity_spans_follow_conlleval():
    # IOB1: an I- after O or after another type starts a chunk.
    assert evaluation.entity_spans(["I-PER", "I-PER", "I-LOC", "O", "I-LOC"]) == [
        ("PER", 0, 1),
        ("LOC", 2, 2),
        ("LOC", 4, 4),
    ]
    # IOB2: B- always starts one, even after the same type.
    assert evaluation.entity_spans(["B-ORG", "B-ORG", "I-ORG", "I-MISC"]) == [
        ("ORG", 0, 0),
        ("ORG", 1, 2),
        ("MISC", 3, 3),
    ]
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    result = evaluation.entity_f1(gold, predicted)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1_PER"] == 1.0 and result["f1_LOC"] == 0.0


# --- trainer: checkpoints, precision, XLA --------------------------------------


def _pretraining_data(batch=8, seq=12, predictions=3, n=32):
    x = tiny_inputs(batch=n, length=seq, mask_positions=predictions)
    rng = np.random.default_rng(0)
    y = {
        "masked_lm_ids": rng.integers(5, 64, (n, predictions)).astype("int32"),
        "masked_lm_weights": np.ones((n, predictions), "float32"),
        "next_sentence_labels": (np.arange(n) % 2).astype("int32"),
    }
    return lambda: (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(n, seed=1)
        .repeat()
        .batch(batch, drop_remainder=True)
    )


def _trainer(output_dir, dtype=None, jit_compile=False, steps=4, **config):
    kwargs = {"dtype": dtype} if dtype else {}
    return Trainer(
        tf.distribute.get_strategy(),
        lambda: BertPretrainer(tiny_config(**config), **kwargs),
        lambda: create_optimizer(1e-3, steps, 1),
        TrainerSettings(
            output_dir=str(output_dir),
            num_train_steps=steps,
            global_batch_size=8,
            steps_per_execution=2,
            save_checkpoints_steps=2,
            jit_compile=jit_compile,
            verbose=0,
        ),
    )


def test_checkpoint_holds_dropout_seeds_outputs_are_written_truncation_named(tmp_path):
    trainer = _trainer(tmp_path)
    history = trainer.train(_pretraining_data())
    assert [row["step"] for row in history.rows] == [2, 4]
    latest = tf.train.latest_checkpoint(tmp_path / "checkpoints")
    assert latest.endswith("ckpt-4")
    names = [name for name, _ in tf.train.list_variables(latest)]
    assert any(n.startswith("optimizer/") for n in names)
    # Every model variable (not only those Keras exposes to tf.train),
    # dropout seed states included (saved once, under their first key).
    listed = {n.split("/")[1] for n in names if n.startswith("model_variables/")}
    variables = trainer.model.variables
    assert len(listed) == len(variables)
    seeds = checkpoints.seed_states(trainer.model)
    assert seeds and all(any(s is v for v in variables) for s in seeds)
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert rows[-1]["step"] == 4 and len(rows[-1]["step_losses"]) == 2
    assert (tmp_path / "metrics.csv").read_text().startswith("step,loss,learning_rate")
    assert (tmp_path / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    assert list((tmp_path / "tensorboard" / "train").iterdir())
    # A second run into the same directory resumes: nothing left to train.
    again = _trainer(tmp_path)
    assert again.restore_latest() == 4
    for a, b in zip(trainer.model.variables, again.model.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # A truncated checkpoint is an error naming it.
    data_file = latest + ".data-00000-of-00001"
    with open(data_file, "r+b") as f:
        f.truncate(os.path.getsize(data_file) // 2)
    with pytest.raises(ValueError, match="ckpt-4 is corrupt, truncated"):
        again.restore_latest()


def test_xla_bfloat16_train_step_compiles_on_cpu(tmp_path):
    # What the TPU path runs: static shapes, XLA, bf16 compute.
    trainer = _trainer(tmp_path, dtype="mixed_bfloat16", jit_compile=True, steps=2)
    history = trainer.train(_pretraining_data())
    losses = history.rows[-1]["step_losses"]
    assert len(losses) == 2 and np.all(np.isfinite(losses))
    assert trainer.model.backbone.compute_dtype == "bfloat16"


def test_mixed_float16_uses_loss_scaling(tmp_path):
    trainer = _trainer(tmp_path, dtype="mixed_float16", steps=2)
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    losses = trainer.train(_pretraining_data()).rows[-1]["step_losses"]
    assert np.all(np.isfinite(losses))


# --- kbi-finetune ---------------------------------------------------------------

WORDS = [f"word{i}" for i in range(40)]


def _tiny_checkpoint(tmp_path):
    """A tiny model directory in Hugging Face layout, with its vocabulary."""
    from keras_bert_impl.convert import to_huggingface
    from keras_bert_impl.models import BertBackbone

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(pretraining_records.TINY_VOCAB) + "\n")
    directory = tmp_path / "checkpoint"
    to_huggingface(BertBackbone(tiny_config()), directory, vocab_file=str(vocab))
    return str(directory)


def _glue_files(directory, rows=48):
    directory.mkdir()
    rng = np.random.default_rng(0)
    lines = ["sentence\tlabel"]
    for _ in range(rows):
        label = int(rng.integers(0, 2))
        words = rng.choice(WORDS[:20] if label else WORDS[20:], size=5)
        lines.append(" ".join(words) + f"\t{['neg', 'pos'][label]}")
    (directory / "train.tsv").write_text("\n".join(lines) + "\n")
    (directory / "dev.tsv").write_text("\n".join(lines[:17]) + "\n")
    (directory / "test.tsv").write_text("index\tsentence\n0\tword1 word2\n1\tword30\n")
    return str(directory)


def _settings(tmp_path, data_dir, checkpoint, **changes):
    values = dict(
        task_name="sst2",
        data_dir=data_dir,
        output_dir=str(tmp_path / "out"),
        init_checkpoint=checkpoint,
        do_train=True,
        do_eval=True,
        do_predict=True,
        max_seq_length=12,
        train_batch_size=8,
        eval_batch_size=8,
        learning_rate=1e-3,
        num_train_epochs=1,
        save_checkpoints_steps=4,
        verbose=0,
    )
    values.update(changes)
    return FinetuneSettings(**values)


def test_finetune_classifier_end_to_end(tmp_path):
    checkpoint = _tiny_checkpoint(tmp_path)
    data_dir = _glue_files(tmp_path / "glue")
    result = run_finetuning(_settings(tmp_path, data_dir, checkpoint))
    out = tmp_path / "out"
    assert result["train_steps"] == 6 and result["warmup_steps"] == 0
    lines = (out / "eval_results.txt").read_text().splitlines()
    assert "eval_examples = 16" in lines
    assert json.loads((out / "eval_results.json").read_text()) == result["eval_results"]
    header, *rows = (out / "test_results.tsv").read_text().splitlines()
    assert header.split("\t") == ["neg", "pos", "prediction"]
    probabilities = np.array([row.split("\t")[:2] for row in rows], float)
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
    predicted = [row.split("\t")[2] for row in rows]
    assert predicted == [["neg", "pos"][i] for i in probabilities.argmax(1)]
    assert json.loads((out / "labels.json").read_text()) == ["neg", "pos"]
    # Evaluation alone reloads the written model and agrees with the run.
    again = run_finetuning(
        _settings(tmp_path, data_dir, checkpoint, do_train=False, do_predict=False)
    )
    assert again["eval_results"] == result["eval_results"]
    assert not list(out.glob("*.tmp"))


def test_finetune_bad_inputs_name_file_line_or_flag(tmp_path):
    checkpoint = _tiny_checkpoint(tmp_path)
    data_dir = tmp_path / "glue"
    _glue_files(data_dir)
    with pytest.raises(ValueError, match=r"--task_name='imdb'.*sst2"):
        run_finetuning(_settings(tmp_path, str(data_dir), checkpoint, task_name="imdb"))
    with pytest.raises(ValueError, match="--strategy='gpu'"):
        run_finetuning(_settings(tmp_path, str(data_dir), checkpoint, strategy="gpu"))
    dev = data_dir / "dev.tsv"
    dev.write_text("sentence\tlabel\nword1 word2\tneg\nword3\tmaybe\n")
    with pytest.raises(ValueError, match=r"dev.tsv:3: label 'maybe' is not one of"):
        run_finetuning(_settings(tmp_path, str(data_dir), checkpoint))
    train = data_dir / "train.tsv"
    train.write_text("sentence\tlabel\nword1\tneg\nword2 word3\n")
    with pytest.raises(
        ValueError, match=r"train.tsv:3: expected 2 tab-separated columns"
    ):
        run_finetuning(_settings(tmp_path, str(data_dir), checkpoint))
    # Nothing that looks like a finished model was left behind.
    assert not (tmp_path / "out" / "model.keras").exists()


def test_finetune_ner_end_to_end_and_malformed_conll(tmp_path):
    checkpoint = _tiny_checkpoint(tmp_path)
    data_dir = tmp_path / "conll"
    data_dir.mkdir()
    rng = np.random.default_rng(0)
    sentences = []
    for _ in range(24):
        words = rng.choice(WORDS, size=6)
        tags = ["B-PER" if int(w[4:]) < 10 else "O" for w in words]
        sentences.append("\n".join(f"{w} {t}" for w, t in zip(words, tags)))
    text = "-DOCSTART- O\n\n" + "\n\n".join(sentences) + "\n"
    for name in ("train.txt", "valid.txt", "test.txt"):
        (data_dir / name).write_text(text)
    settings = _settings(
        tmp_path, str(data_dir), checkpoint, task_name="conll2003", do_predict=True
    )
    result = run_finetuning(settings)
    assert {"precision", "recall", "f1"} <= set(result["eval_results"])
    # Predictions keep each sentence's words beside their tags.
    predicted = json.loads((tmp_path / "out" / "test_predictions.json").read_text())
    assert len(predicted) == 24
    assert predicted[0]["first_line"] == 3  # after -DOCSTART- and a blank line
    assert predicted[0]["words"] == [
        line.split()[0] for line in sentences[0].split("\n")
    ]
    assert all(len(s["tags"]) == len(s["words"]) == 6 for s in predicted)
    assert {tag for s in predicted for tag in s["tags"]} <= {"O", "B-PER"}
    (data_dir / "valid.txt").write_text("word1 B-PER\nword2\n")
    with pytest.raises(ValueError, match=r"valid.txt:2: expected a word and a tag"):
        run_finetuning(dataclasses_replace(settings, do_train=False))


def _squad_file(path, answer_override=None):
    """SQuAD v2.0 JSON: contexts of tiny-vocabulary words, one question
    without an answer."""
    rng = np.random.default_rng(1)
    paragraphs = []
    for i in range(6):
        words = [str(w) for w in rng.choice(WORDS, size=20)]
        context = " ".join(words)
        answer = " ".join(words[5:7])
        qas = [
            {
                "id": f"q{i}",
                "question": f"{words[4]} {words[7]}",
                "answers": [
                    {
                        "text": answer_override or answer,
                        "answer_start": context.index(answer),
                    }
                ],
                "is_impossible": False,
            },
            {
                "id": f"n{i}",
                "question": "word39 word38",
                "answers": [],
                "is_impossible": True,
            },
        ]
        paragraphs.append({"context": context, "qas": qas})
    data = {"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]}
    path.write_text(json.dumps(data))
    return str(path)


def test_finetune_squad_v2_end_to_end_and_a_mismatched_answer(tmp_path):
    checkpoint = _tiny_checkpoint(tmp_path)
    squad = _squad_file(tmp_path / "train.json")
    settings = _settings(
        tmp_path,
        None,
        checkpoint,
        task_name="squad_v2",
        train_file=squad,
        predict_file=squad,
        max_seq_length=24,
        doc_stride=8,
        max_query_length=6,
    )
    result = run_finetuning(settings)
    scores = result["eval_results"]
    assert 0.0 <= scores["exact_match"] <= scores["f1"] <= 100.0
    predictions = json.loads(open(result["predictions_path"]).read())
    assert set(predictions) == {f"q{i}" for i in range(6)} | {f"n{i}" for i in range(6)}
    bad = _squad_file(tmp_path / "bad.json", answer_override="word0 word0 word0")
    with pytest.raises(ValueError, match=r"bad.json.*does not match the context"):
        run_finetuning(
            dataclasses_replace(
                settings, train_file=bad, do_eval=False, do_predict=False
            )
        )


def dataclasses_replace(settings, **changes):
    import dataclasses

    return dataclasses.replace(settings, **changes)


# --- kbi-pretrain ---------------------------------------------------------------


def _pretraining_inputs(tmp_path):
    records = tmp_path / "train.tfrecord"
    pretraining_records.write_records(records, 40, 16, 4)
    config = tmp_path / "bert_config.json"
    tiny_config().write_json_file(config)
    return str(records), str(config)


def test_pretrain_tool_trains_evaluates_and_resumes(tmp_path):
    sys.path.insert(0, TOOLS)
    from keras_bert_impl.cli import pretrain

    records, config = _pretraining_inputs(tmp_path)
    out = tmp_path / "out"
    argv = [
        "kbi-pretrain",
        f"--input_file={records}",
        f"--bert_config_file={config}",
        f"--output_dir={out}",
        "--max_seq_length=16",
        "--max_predictions_per_seq=4",
        "--train_batch_size=8",
        "--num_train_steps=4",
        "--num_warmup_steps=1",
        "--save_checkpoints_steps=2",
        "--do_eval",
        "--max_eval_steps=2",
    ]
    pretrain.run(argv)
    results = json.loads((out / "eval_results.json").read_text())
    assert results["global_step"] == 4 and results["eval_examples"] == 16
    assert 0.0 <= results["masked_lm_accuracy"] <= 1.0
    assert (out / "model.keras").exists()
    # --do_eval also evaluates at every checkpoint, into the curves.
    rows = json.loads((out / "metrics.json").read_text())
    assert [r["step"] for r in rows if "eval_masked_lm_accuracy" in r] == [2, 4]
    assert rows[-1]["eval_masked_lm_accuracy"] == results["masked_lm_accuracy"]
    assert "eval_masked_lm_accuracy" in (out / "metrics.csv").read_text()
    with pytest.raises(SystemExit) as exit_info:
        pretrain.run(argv[:-3] + ["--strategy=tpux"])
    assert exit_info.value.code == 1  # bad input; 2 is a misused command line


def test_pretrain_truncated_tfrecord_is_an_error_naming_it(tmp_path):
    records, config = _pretraining_inputs(tmp_path)
    data = open(records, "rb").read()
    with open(records, "wb") as f:
        f.write(data[: len(data) - 50])
    settings = PretrainSettings(
        input_file=records,
        output_dir=str(tmp_path / "out"),
        bert_config_file=config,
        max_seq_length=16,
        max_predictions_per_seq=4,
        train_batch_size=8,
        num_train_steps=2,
        num_warmup_steps=0,
        verbose=0,
    )
    with pytest.raises(ValueError, match=r"train.tfrecord: truncated TFRecord file"):
        run_pretraining(settings)
    assert not (tmp_path / "out" / "model.keras").exists()
