"""Structured pruning: the config field, importance against finite differences, pruned
weights against masked heads / zeroed neurons of the unpruned model, saving, precision,
export, Hugging Face transformers parity, `kbi-prune`, and JAX."""

import importlib.util
import json
import os
import textwrap

import keras
import numpy as np
import pytest

from keras_bert_impl import BertClassifier, BertConfig, BertTokenClassifier
from keras_bert_impl.compression import (
    ffn_importance,
    head_importance,
    prune,
    prune_ffn,
    prune_heads,
    with_precision,
)
from keras_bert_impl.compression import importance, pruning
from keras_bert_impl.convert import from_huggingface, to_huggingface
from keras_bert_impl.models import BertQuestionAnswerer
from keras_bert_impl.models.summary import describe
from model_helpers import (
    TINY_VOCABULARY,
    run_on_jax,
    tiny_config,
    tiny_inputs,
    tiny_text_model,
)

TEXTS = ["good film", "bad film , bad", "w1 w2 w3 good", "w4 bad w5", "film w6", "good"]
LABELS = ["positive", "negative", "positive", "negative", "negative", "positive"]
HEADS = {0: [1, 3], 1: [2]}  # pruned in the fixtures (original indices)


@pytest.fixture(scope="module")
def classifier():
    return tiny_text_model()


@pytest.fixture(scope="module")
def pruned(classifier):
    return prune_heads(classifier, HEADS)


def _inputs():
    return tiny_inputs(batch=4, length=10)


def _masked_logits(model, head_mask=None, ffn_mask=None, inputs=None):
    inputs = _inputs() if inputs is None else inputs
    out = model.backbone(inputs, head_mask=head_mask, ffn_mask=ffn_mask)
    return np.asarray(model.head(out[model.head_input]))


def _head_masks(config, removed):
    return [
        np.array(
            [0.0 if h in removed.get(i, ()) else 1.0 for h in range(config.num_heads)],
            "float32",
        )
        for i in range(config.num_layers)
    ]


# --- config -----------------------------------------------------------------------


def test_config_pruned_heads_normalised_and_round_trips_through_json():
    config = tiny_config(pruned_heads={"1": [3, 0, 3], 0: []})
    assert config.pruned_heads == {1: (0, 3)}
    assert [config.layer_num_heads(i) for i in range(2)] == [4, 2]
    assert config.remaining_heads(1) == (1, 2)
    assert hash(config) != hash(tiny_config())
    as_json = json.loads(json.dumps(config.to_dict()))  # keys become strings
    assert BertConfig.from_dict(as_json) == config
    hf = json.loads(json.dumps(config.to_huggingface_dict()))
    assert hf["pruned_heads"] == {"1": [0, 3]}
    assert BertConfig.from_json_dict(hf) == config
    # Unpruned configs write exactly what they always did.
    assert "pruned_heads" not in tiny_config().to_dict()
    assert "pruned_heads" not in tiny_config().to_huggingface_dict()
    assert BertConfig.from_dict(tiny_config().to_dict()) == tiny_config()


@pytest.mark.parametrize(
    "pruned_heads, message",
    [
        ({2: [0]}, r"pruned_heads: layer 2 is not an integer in \[0, 2\)"),
        ({0: [4]}, r"layer 0's head 4 is not an integer in \[0, 4\)"),
        ({"x": [0]}, r"layer 'x' is not an integer"),
        ({1: [0, 1, 2, 3]}, r"pruned_heads\[1\] removes all 4 heads"),
        ([[0, 1]], r"pruned_heads must be a dict \{layer: \[head, ...\]\}"),
        ({0: 1}, r"pruned_heads\[0\] must be a list of head indices"),
    ],
)
def test_config_rejects_bad_pruned_heads_naming_what_is_valid(pruned_heads, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(pruned_heads=pruned_heads)


def test_google_config_cannot_express_pruned_heads():
    config = tiny_config(hidden_act="gelu_approximate", pruned_heads={0: [1]})
    with pytest.raises(ValueError, match="pruned_heads .* no bert_config.json"):
        config.to_google_dict()


# --- importance ---------------------------------------------------------------------


def _loss(model, labels, **masks):
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return float(loss(labels, _masked_logits(model, **masks)))


def test_head_importance_matches_finite_differences(classifier):
    inputs, labels = _inputs(), np.array([0, 1, 1, 0])
    heads, ffn = importance.mask_gradients(classifier, inputs, labels, batch_size=4)
    config, eps = classifier.config, 1e-2
    for layer, head in [(0, 0), (0, 3), (1, 1)]:
        masks = [np.ones(config.num_heads, "float32") for _ in range(2)]
        masks[layer][head] = 1 + eps
        up = _loss(classifier, labels, head_mask=[m.copy() for m in masks])
        masks[layer][head] = 1 - eps
        down = _loss(classifier, labels, head_mask=masks)
        numeric = abs(up - down) / (2 * eps)
        np.testing.assert_allclose(heads[layer][head], numeric, rtol=0.02, atol=1e-4)
    for layer, neuron in [(0, 5), (1, 17)]:
        masks = [np.ones(config.intermediate_size, "float32") for _ in range(2)]
        masks[layer][neuron] = 1 + eps
        up = _loss(classifier, labels, ffn_mask=[m.copy() for m in masks])
        masks[layer][neuron] = 1 - eps
        down = _loss(classifier, labels, ffn_mask=masks)
        numeric = abs(up - down) / (2 * eps)
        np.testing.assert_allclose(ffn[layer][neuron], numeric, rtol=0.02, atol=1e-4)
    assert min(h.max() for h in heads) > 1e-3  # not trivially zero


def test_importance_averages_batches_and_normalises_each_layer(classifier):
    """Expected |gradient| over batches, weighted by their size; then unit L2 norm
    per layer (Michel et al.)."""
    inputs, labels = tiny_inputs(batch=6, length=10), np.array([0, 1, 1, 0, 1, 0])
    first = {k: v[:4] for k, v in inputs.items()}
    second = {k: v[4:] for k, v in inputs.items()}
    g1, _ = importance.mask_gradients(classifier, first, labels[:4], ffn=False)
    g2, _ = importance.mask_gradients(classifier, second, labels[4:], ffn=False)
    scores = head_importance(classifier, inputs, labels, batch_size=4)
    for layer in range(2):
        expected = (4 * g1[layer] + 2 * g2[layer]) / 6
        np.testing.assert_allclose(
            scores[layer], expected / np.linalg.norm(expected), rtol=1e-4
        )
    # max_examples cuts the batch of 6 after the first 4.
    limited = head_importance(classifier, inputs, labels, batch_size=6, max_examples=4)
    for layer in range(2):
        np.testing.assert_allclose(
            limited[layer], g1[layer] / np.linalg.norm(g1[layer]), rtol=1e-4
        )
    ffn = ffn_importance(classifier, inputs, labels)
    assert [s.shape for s in ffn] == [(64,), (64,)]
    np.testing.assert_allclose([np.linalg.norm(s) for s in ffn], 1.0, rtol=1e-6)


def test_token_classifier_pruned_on_words():
    model = tiny_text_model(BertTokenClassifier, label_names=["O", "B-X"])
    words = [["good", "film"], ["bad", "w1", "w2"], ["w3"]]
    tags = [["B-X", "O"], ["O", "O", "B-X"], ["O"]]
    smaller = prune(model, words, tags, head_fraction=0.25)
    assert sum(len(h) for h in smaller.config.pruned_heads.values()) == 2
    removed = smaller.config.pruned_heads
    np.testing.assert_allclose(
        np.asarray(smaller(_inputs())),
        _masked_logits(model, head_mask=_head_masks(model.config, removed)),
        atol=1e-5,
    )


# --- pruning is exact ---------------------------------------------------------------


def test_pruned_heads_equal_the_unpruned_model_with_those_heads_masked(
    classifier, pruned
):
    assert pruned.config.pruned_heads == {0: (1, 3), 1: (2,)}
    query = pruned.backbone.transformer_layers[0].self_attention.query
    assert tuple(query.kernel.shape) == (32, 16)  # 2 heads of 8 left
    masked = _masked_logits(classifier, _head_masks(classifier.config, HEADS))
    assert np.abs(masked - _masked_logits(classifier)).max() > 1e-3  # heads matter
    np.testing.assert_allclose(np.asarray(pruned(_inputs())), masked, atol=1e-5)
    assert pruned.label_names == classifier.label_names
    np.testing.assert_array_equal(pruned.head.kernel, classifier.head.kernel)

    # Pruning again merges, in original indices, with what is already pruned.
    again = prune_heads(pruned, {0: [0, 1], 1: ["3"]})
    assert again.config.pruned_heads == {0: (0, 1, 3), 1: (2, 3)}
    removed = {0: [0, 1, 3], 1: [2, 3]}
    np.testing.assert_allclose(
        np.asarray(again(_inputs())),
        _masked_logits(classifier, _head_masks(classifier.config, removed)),
        atol=1e-5,
    )
    # Head masks on a pruned model index its remaining heads.
    partial = [np.array([1, 0], "float32"), None]
    np.testing.assert_allclose(
        _masked_logits(pruned, partial),
        _masked_logits(
            classifier, _head_masks(classifier.config, {0: [1, 2, 3], 1: [2]})
        ),
        atol=1e-5,
    )


def test_pruned_ffn_equals_the_unpruned_model_with_those_neurons_zeroed(classifier):
    rng = np.random.default_rng(0)
    keep = [np.sort(rng.choice(64, 40, replace=False)) for _ in range(2)]
    smaller = prune_ffn(classifier, keep)
    assert smaller.config.intermediate_size == 40
    masks = [np.zeros(64, "float32") for _ in range(2)]
    for mask, kept in zip(masks, keep):
        mask[kept] = 1
    masked = _masked_logits(classifier, ffn_mask=masks)
    assert np.abs(masked - _masked_logits(classifier)).max() > 1e-3
    np.testing.assert_allclose(np.asarray(smaller(_inputs())), masked, atol=1e-5)


def test_prune_on_text_removes_the_globally_least_important(classifier):
    heads, neurons = importance.mask_gradients(classifier, TEXTS, LABELS)
    scores = [s / np.linalg.norm(s) for s in heads]
    assert all(np.isfinite(s).all() and s.min() > 0 for s in scores)
    smaller = prune(classifier, TEXTS, LABELS, head_fraction=0.5, ffn_fraction=0.25)
    ranked = sorted(
        (s, layer, h) for layer, ls in enumerate(scores) for h, s in enumerate(ls)
    )
    expected = {}
    for _, layer, head in ranked[:4]:  # no layer loses all 4 heads among 8
        expected.setdefault(layer, []).append(head)
    assert smaller.config.pruned_heads == {
        layer: tuple(sorted(h)) for layer, h in expected.items()
    }
    assert smaller.config.intermediate_size == 48
    keep = [np.sort(np.argsort(-s)[:48]) for s in neurons]
    reference = prune_ffn(prune_heads(classifier, expected), keep)
    np.testing.assert_allclose(
        np.asarray(smaller(_inputs())), np.asarray(reference(_inputs())), atol=1e-6
    )
    assert smaller.count_params() < classifier.count_params()


def test_every_layer_keeps_a_head():
    config = tiny_config()
    scores = [np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.9, 0.8, 0.95, 0.99])]
    heads = pruning.least_important_heads(config, scores, 0.75)  # 6 of 8
    assert heads == {0: [0, 1, 2], 1: [0, 1, 2]}


# --- the pruned model is an ordinary model ---------------------------------------------


def test_keras_round_trip_and_precision(pruned, tmp_path):
    path = str(tmp_path / "pruned.keras")
    pruned.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.config == pruned.config
    np.testing.assert_array_equal(np.asarray(loaded(_inputs())), pruned(_inputs()))
    assert loaded.preprocessor is not None and loaded.label_names == pruned.label_names
    assert "heads per layer [2, 3] of 4 (pruned)" in "\n".join(describe(pruned))
    for precision in ("bfloat16", "int8"):
        lower = with_precision(pruned, precision)
        np.testing.assert_allclose(
            np.asarray(lower(_inputs())), pruned(_inputs()), atol=0.05
        )
    with pytest.raises(ValueError, match="int8-quantized; prune the float model"):
        prune_heads(lower, {0: [0]})


def test_pruned_export_passes_the_op_check(pruned, tmp_path):
    from keras_bert_impl.export import export_classifier
    from keras_bert_impl.export.check import check_servable

    path = export_classifier(pruned, str(tmp_path / "pruned"), bucket_lengths=None)
    for server_version in ("2.10", "2.20"):
        report = check_servable(path, server_version=server_version, clean_load=False)
        assert report.ok, (server_version, report.problems)


def test_hugging_face_round_trip_and_transformers_parity(pruned, tmp_path):
    import torch
    import transformers

    shrunk = to_huggingface(pruned, str(tmp_path / "shrunk"))
    with open(os.path.join(shrunk, "config.json")) as f:
        assert json.load(f)["pruned_heads"] == {"0": [1, 3], "1": [2]}
    back = from_huggingface(shrunk, BertClassifier)
    assert back.config == pruned.config
    np.testing.assert_allclose(
        np.asarray(back(_inputs())), pruned(_inputs()), atol=1e-6
    )
    from_preset = BertClassifier.from_preset(shrunk, preprocessor=False)
    assert from_preset.config.pruned_heads == pruned.config.pruned_heads

    inputs = _inputs()
    torch_inputs = {
        "input_ids": torch.tensor(inputs["token_ids"], dtype=torch.long),
        "token_type_ids": torch.tensor(inputs["segment_ids"], dtype=torch.long),
        "attention_mask": torch.tensor(inputs["padding_mask"], dtype=torch.long),
    }
    # transformers 4.x prunes `pruned_heads` when it builds the model and loads the
    # smaller matrices; 5.x dropped head pruning and loads the zero-padded form.
    shrinks = int(transformers.__version__.split(".")[0]) < 5
    directory = (
        shrunk
        if shrinks
        else to_huggingface(pruned, str(tmp_path / "padded"), pruned_heads="pad")
    )
    model, info = transformers.BertForSequenceClassification.from_pretrained(
        directory, output_loading_info=True
    )
    assert not any(
        info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")
    )
    with torch.no_grad():
        logits = model.eval()(**torch_inputs).logits.numpy()
    np.testing.assert_allclose(logits, pruned(inputs), atol=1e-5)
    backbone = transformers.BertModel.from_pretrained(directory)
    with torch.no_grad():
        hidden = backbone.eval()(**torch_inputs).last_hidden_state.numpy()
    ours = np.asarray(pruned.backbone(inputs)["sequence_output"])
    mask = inputs["padding_mask"].astype(bool)
    np.testing.assert_allclose(hidden[mask], ours[mask], atol=1e-5)


# --- errors ---------------------------------------------------------------------------


def test_errors_name_what_is_valid(classifier):
    with pytest.raises(ValueError, match=r"pruned_heads\[1\] removes all 4 heads"):
        prune_heads(classifier, {1: [0, 1, 2, 3]})
    with pytest.raises(ValueError, match="supported models are BertClassifier, Bert"):
        head_importance(BertQuestionAnswerer(tiny_config()), _inputs(), None)
    with pytest.raises(ValueError, match="head_fraction must be in"):
        prune(classifier, TEXTS, LABELS, head_fraction=1.0)
    with pytest.raises(ValueError, match="need labels"):
        head_importance(classifier, TEXTS)
    with pytest.raises(ValueError, match="same positive number of distinct neurons"):
        prune_ffn(classifier, [[0, 1], [0]])
    with pytest.raises(ValueError, match=r"head_mask must be a list of 2"):
        classifier.backbone(_inputs(), head_mask=[np.ones(4)])


# --- kbi-prune -------------------------------------------------------------------------


def _write_tsv(path, texts, labels):
    with open(path, "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n")
        for text, label in zip(texts, labels):
            f.write(f"{text}\t{label}\n")


def test_kbi_prune_end_to_end_and_bad_input(classifier, tmp_path, capsys):
    from keras_bert_impl.cli import prune as prune_tool

    # As older kbi-finetune runs saved it: no preprocessor, no label names (the
    # classes are the TSV's sorted labels "0" / "1").
    model = BertClassifier(tiny_config(), num_classes=2)
    model.build()
    model.set_weights(classifier.get_weights())
    checkpoint = str(tmp_path / "classifier.keras")
    model.save(checkpoint)
    vocab_file = str(tmp_path / "vocab.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        f.write("\n".join(TINY_VOCABULARY) + "\n")
    train = str(tmp_path / "train.tsv")
    labels = ["1" if label == "positive" else "0" for label in LABELS]
    _write_tsv(train, TEXTS * 3, labels * 3)
    output_dir = str(tmp_path / "out")
    report = prune_tool.run(
        [
            "kbi-prune",
            f"--init_checkpoint={checkpoint}",
            f"--train_file={train}",
            f"--eval_file={train}",
            "--head_fraction=0.5",
            "--ffn_fraction=0.5",
            "--importance_examples=12",
            "--recovery_examples=8",
            "--train_batch_size=4",
            "--max_seq_length=12",
            f"--vocab_file={vocab_file}",
            f"--output_dir={output_dir}",
        ]
    )
    assert sorted(os.listdir(output_dir)) == ["model.keras", "pruning_report.json"]
    with open(os.path.join(output_dir, "pruning_report.json")) as f:
        assert json.load(f) == report
    assert report["importance_examples"] == 12 and report["recovery_examples"] == 8
    assert sum(len(h) for h in report["pruned_heads"].values()) == 4
    assert report["before"]["heads_per_layer"] == [4, 4]
    assert sum(report["after"]["heads_per_layer"]) == 4
    assert report["after"]["intermediate_size"] == 32
    assert report["after"]["parameters"] < report["before"]["parameters"]
    assert 0 <= report["eval_accuracy_after_recovery"] <= 1
    loaded = keras.saving.load_model(os.path.join(output_dir, "model.keras"))
    assert loaded.preprocessor.sequence_length == 12
    assert loaded.label_names == ("0", "1")
    assert {str(k): list(v) for k, v in loaded.config.pruned_heads.items()} == (
        report["pruned_heads"]
    )
    assert "parameters:" in capsys.readouterr().out

    bad = str(tmp_path / "bad.tsv")
    _write_tsv(bad, ["good film"], ["maybe"])
    for flag, message in [
        (
            f"--train_file={bad}",
            "has labels ['maybe'] but the classifier has 2 classes",
        ),
        (f"--train_file={tmp_path / 'missing.tsv'}", "missing.tsv: no such file"),
        ("--head_fraction=1.5", "--head_fraction=1.5: must be in [0, 1)"),
        ("--vocab_file=", "has no preprocessor; give --vocab_file"),
        ("--bucket_lengths=4,x", "--bucket_lengths='4,x' must be 'none', 'auto'"),
    ]:
        args = [
            "kbi-prune",
            f"--init_checkpoint={checkpoint}",
            f"--train_file={train}",
            f"--vocab_file={vocab_file}",
            f"--output_dir={tmp_path / 'failed'}",
            flag,
        ]
        with pytest.raises(SystemExit) as exit_info:
            prune_tool.run(args)
        assert exit_info.value.code == 1
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and error[0].startswith("kbi-prune: error:"), error
        assert message in error[0], error[0]
    assert not os.path.exists(tmp_path / "failed")  # nothing half-written


# --- JAX ---------------------------------------------------------------------------------

_JAX_SCRIPT = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np
    assert keras.backend.backend() == "jax", keras.backend.backend()
    from keras_bert_impl.compression import head_importance
    pruned = keras.saving.load_model(sys.argv[1])
    inputs = dict(np.load(sys.argv[2]))
    scores = head_importance(pruned, inputs, np.array([0, 1, 1, 0]))
    np.savez(
        sys.argv[3], scores=np.concatenate(scores), logits=np.asarray(pruned(inputs))
    )
    """
)


@pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax (test extra) is not installed"
)
def test_pruned_model_and_its_importance_on_jax(pruned, tmp_path):
    # Without the preprocessor: the JAX process needs no text processing.
    plain = BertClassifier(pruned.config, num_classes=2)
    plain.build()
    plain.set_weights(pruned.get_weights())
    plain.save(str(tmp_path / "plain.keras"))
    np.savez(tmp_path / "inputs.npz", **_inputs())
    run_on_jax(
        _JAX_SCRIPT,
        tmp_path / "plain.keras",
        tmp_path / "inputs.npz",
        tmp_path / "jax.npz",
    )
    out = np.load(tmp_path / "jax.npz")
    expected = head_importance(pruned, _inputs(), np.array([0, 1, 1, 0]))
    assert out["scores"].shape == (5,)  # 2 + 3 heads left
    np.testing.assert_allclose(out["scores"], np.concatenate(expected), atol=1e-4)
    np.testing.assert_allclose(out["logits"], pruned(_inputs()), atol=1e-5)


def test_kbi_prune_sets_the_lengths_of_a_saved_preprocessor(classifier):
    from keras_bert_impl.compression.pruning_run import _prepared
    from keras_bert_impl.compression.pruning_settings import PruneSettings

    settings = PruneSettings(
        "c.keras", "t.tsv", "out", max_seq_length=8, bucket_lengths="4,6"
    )
    copy = _prepared(classifier, settings, None)
    assert copy.preprocessor.sequence_length == 8
    assert copy.preprocessor.bucket_lengths == [4, 6]
    assert classifier.preprocessor.sequence_length == 16  # the input is unchanged
    np.testing.assert_array_equal(copy(_inputs()), classifier(_inputs()))
    assert _prepared(classifier, PruneSettings("c", "t", "o"), None) is classifier
