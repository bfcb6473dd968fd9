"""Parity with implementations nobody here wrote: transformers on a real
checkpoint, a Google-named TF1 checkpoint, and keras-hub."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_bert_impl import BertBackbone
from keras_bert_impl import BertClassifier
from keras_bert_impl import BertConfig
from keras_bert_impl import BertPretrainer
from keras_bert_impl import BertQuestionAnswerer
from keras_bert_impl import BertTokenClassifier
from keras_bert_impl.convert import from_google_checkpoint
from keras_bert_impl.convert import from_huggingface
from keras_bert_impl.convert import from_keras_hub
from keras_bert_impl.convert import to_huggingface
from keras_bert_impl.convert.huggingface import canonical_name
from keras_bert_impl.convert.huggingface import hf_name
from tests.model_helpers import max_abs_diff
from tests.model_helpers import real_checkpoint_dir
from tests.model_helpers import real_sentences
from tests.model_helpers import tiny_config
from tests.model_helpers import tiny_inputs

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch", reason="torch (test extra) is not installed")
transformers = pytest.importorskip(
    "transformers", reason="transformers (test extra) missing"
)

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def checkpoint():
    return real_checkpoint_dir()


@pytest.fixture(scope="module")
def batches(checkpoint):
    """≥ 32 real sentences of mixed lengths in padded batches of 8."""
    tokenizer = transformers.BertTokenizerFast.from_pretrained(checkpoint)
    sentences = real_sentences()
    assert len(sentences) >= 32
    out = []
    for start in range(0, len(sentences), 8):
        enc = tokenizer(sentences[start : start + 8], padding=True, return_tensors="np")
        out.append(
            {
                "token_ids": enc["input_ids"].astype("int32"),
                "segment_ids": enc["token_type_ids"].astype("int32"),
                "padding_mask": enc["attention_mask"].astype("int32"),
            }
        )
    return out


def _torch_outputs(model, inputs):
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(inputs["token_ids"], dtype=torch.long),
            token_type_ids=torch.tensor(inputs["segment_ids"], dtype=torch.long),
            attention_mask=torch.tensor(inputs["padding_mask"], dtype=torch.long),
        )
    return out


def _assert_backbone_matches_torch(ours, reference, batches):
    worst_seq = worst_pooled = 0.0
    for inputs in batches:
        mine = ours(inputs)
        theirs = _torch_outputs(reference, inputs)
        worst_seq = max(
            worst_seq,
            max_abs_diff(
                mine["sequence_output"],
                theirs.last_hidden_state.numpy(),
                inputs["padding_mask"],
            ),
        )
        worst_pooled = max(
            worst_pooled,
            max_abs_diff(mine["pooled_output"], theirs.pooler_output.numpy()),
        )
    assert worst_seq <= TOLERANCE, worst_seq
    assert worst_pooled <= TOLERANCE, worst_pooled


def test_huggingface_real_checkpoint_parity(checkpoint, batches):
    ours = from_huggingface(checkpoint, BertBackbone)
    reference = transformers.BertModel.from_pretrained(checkpoint).eval()
    assert sum(b["padding_mask"].sum() for b in batches) > 500
    _assert_backbone_matches_torch(ours, reference, batches)


def test_to_huggingface_round_trip(checkpoint, batches, tmp_path):
    ours = from_huggingface(checkpoint, BertBackbone)
    to_huggingface(ours, tmp_path, vocab_file=os.path.join(checkpoint, "vocab.txt"))
    reloaded = transformers.BertModel.from_pretrained(str(tmp_path)).eval()
    _assert_backbone_matches_torch(ours, reloaded, batches[:1])
    assert (
        transformers.BertTokenizerFast.from_pretrained(str(tmp_path)).vocab_size
        == 30522
    )


@pytest.mark.parametrize(
    "model_cls, hf_cls, kwargs",
    [
        (BertPretrainer, "BertForPreTraining", {}),
        (BertClassifier, "BertForSequenceClassification", {"num_classes": 3}),
        (BertTokenClassifier, "BertForTokenClassification", {"num_classes": 4}),
        (BertQuestionAnswerer, "BertForQuestionAnswering", {}),
    ],
)
def test_task_heads_round_trip_through_transformers(
    model_cls, hf_cls, kwargs, tmp_path
):
    ours = model_cls(tiny_config(), **kwargs)
    inputs = tiny_inputs(mask_positions=2 if model_cls is BertPretrainer else 0)
    mine = ours(inputs)
    to_huggingface(ours, tmp_path)
    theirs = getattr(transformers, hf_cls).from_pretrained(str(tmp_path)).eval()
    out = _torch_outputs(theirs, inputs)
    mask = inputs["padding_mask"]
    if model_cls is BertPretrainer:
        positions = inputs["mask_positions"]
        gathered = np.take_along_axis(
            out.prediction_logits.numpy(), positions[..., None], 1
        )
        assert max_abs_diff(mine["mlm_logits"], gathered) <= TOLERANCE
        assert (
            max_abs_diff(mine["nsp_logits"], out.seq_relationship_logits.numpy())
            <= TOLERANCE
        )
    elif model_cls is BertQuestionAnswerer:
        assert (
            max_abs_diff(mine["start_logits"], out.start_logits.numpy(), mask)
            <= TOLERANCE
        )
        assert (
            max_abs_diff(mine["end_logits"], out.end_logits.numpy(), mask) <= TOLERANCE
        )
    elif model_cls is BertTokenClassifier:
        assert max_abs_diff(mine, out.logits.numpy(), mask) <= TOLERANCE
    else:
        assert max_abs_diff(mine, out.logits.numpy()) <= TOLERANCE
    # And back: our import of the exported heads reproduces the outputs.
    again = from_huggingface(tmp_path, model_cls, **kwargs)
    for a, b in zip(tf.nest.flatten(again(inputs)), tf.nest.flatten(mine)):
        assert max_abs_diff(a, b) == 0.0


def test_backbone_checkpoint_into_task_model_warns_about_the_fresh_head(
    checkpoint, caplog
):
    model = from_huggingface(checkpoint, BertClassifier, num_classes=2)
    assert "classifier" in caplog.text and "fresh" in caplog.text
    assert model.num_classes == 2


def _write_hf_checkpoint(directory, state, config):
    from safetensors.numpy import save_file

    os.makedirs(directory, exist_ok=True)
    save_file(state, os.path.join(directory, "model.safetensors"))
    config.write_json_file(os.path.join(directory, "config.json"))


@pytest.fixture
def tiny_hf_state(tmp_path):
    model = BertBackbone(tiny_config())
    to_huggingface(model, tmp_path / "good")
    from safetensors.numpy import load_file

    return load_file(str(tmp_path / "good" / "model.safetensors")), model.config


def test_unknown_tensor_is_listed(tmp_path, tiny_hf_state):
    state, config = tiny_hf_state
    state["encoder.layer.0.attention.self.rotary.weight"] = np.zeros(3, "float32")
    _write_hf_checkpoint(tmp_path / "ckpt", state, config)
    with pytest.raises(ValueError, match="unknown tensors.*rotary"):
        from_huggingface(tmp_path / "ckpt", BertBackbone)


def test_missing_tensor_is_listed(tmp_path, tiny_hf_state):
    state, config = tiny_hf_state
    del state["encoder.layer.1.output.dense.bias"]
    _write_hf_checkpoint(tmp_path / "ckpt", state, config)
    with pytest.raises(ValueError, match="missing tensors.*layer_1/output/dense/bias"):
        from_huggingface(tmp_path / "ckpt", BertBackbone)


def test_misshaped_tensor_is_listed(tmp_path, tiny_hf_state):
    state, config = tiny_hf_state
    state["pooler.dense.bias"] = np.zeros(7, "float32")
    _write_hf_checkpoint(tmp_path / "ckpt", state, config)
    with pytest.raises(
        ValueError, match=r"mis-shaped.*pooler/dense/bias: checkpoint \(7,\)"
    ):
        from_huggingface(tmp_path / "ckpt", BertBackbone)


def test_missing_weights_file(tmp_path):
    tiny_config().write_json_file(tmp_path / "config.json")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        from_huggingface(tmp_path, BertBackbone)


def test_every_model_head_is_a_head_the_formats_know():
    """The models declare their heads' canonical names; the readers know the heads
    of the formats. The two lists cannot drift apart."""
    from keras_bert_impl.convert.weight_map import HEAD_NAMES
    from keras_bert_impl.convert.weight_map import model_weights

    config = tiny_config()
    heads = set()
    for model in (
        BertPretrainer(config),
        BertClassifier(config),
        BertTokenClassifier(config),
        BertQuestionAnswerer(config),
    ):
        model_weights(model)
        heads.update(model.head_checkpoint_weights())
    assert heads == HEAD_NAMES
    assert not BertBackbone(config).head_checkpoint_weights()


def test_name_translation_round_trips():
    from keras_bert_impl.convert.weight_map import model_weights

    names = set()
    for model in (
        BertPretrainer(tiny_config()),
        BertClassifier(tiny_config()),
        BertQuestionAnswerer(tiny_config()),
    ):
        names.update(model_weights(model))
    assert len(names) > 40
    for canonical in names:
        assert canonical_name(hf_name(canonical)) == canonical
    assert (
        canonical_name("bert.embeddings.LayerNorm.gamma")
        == "embeddings/LayerNorm/gamma"
    )


def _google_variables(hf_state, num_layers):
    """The original BERT variable names and layouts, written out by hand."""
    variables = {
        "bert/embeddings/word_embeddings": hf_state[
            "embeddings.word_embeddings.weight"
        ],
        "bert/embeddings/position_embeddings": hf_state[
            "embeddings.position_embeddings.weight"
        ],
        "bert/embeddings/token_type_embeddings": hf_state[
            "embeddings.token_type_embeddings.weight"
        ],
        "bert/embeddings/LayerNorm/gamma": hf_state["embeddings.LayerNorm.weight"],
        "bert/embeddings/LayerNorm/beta": hf_state["embeddings.LayerNorm.bias"],
        "bert/pooler/dense/kernel": hf_state["pooler.dense.weight"].T,
        "bert/pooler/dense/bias": hf_state["pooler.dense.bias"],
        "global_step": np.array(1000, "int64"),
    }
    parts = {
        "attention/self/query": "attention.self.query",
        "attention/self/key": "attention.self.key",
        "attention/self/value": "attention.self.value",
        "attention/output/dense": "attention.output.dense",
        "intermediate/dense": "intermediate.dense",
        "output/dense": "output.dense",
    }
    for i in range(num_layers):
        for google, hf in parts.items():
            variables[f"bert/encoder/layer_{i}/{google}/kernel"] = hf_state[
                f"encoder.layer.{i}.{hf}.weight"
            ].T
            variables[f"bert/encoder/layer_{i}/{google}/bias"] = hf_state[
                f"encoder.layer.{i}.{hf}.bias"
            ]
            variables[f"bert/encoder/layer_{i}/{google}/kernel/adam_m"] = np.zeros(
                1, "float32"
            )
        for google, hf in (
            ("attention/output/LayerNorm", "attention.output.LayerNorm"),
            ("output/LayerNorm", "output.LayerNorm"),
        ):
            variables[f"bert/encoder/layer_{i}/{google}/gamma"] = hf_state[
                f"encoder.layer.{i}.{hf}.weight"
            ]
            variables[f"bert/encoder/layer_{i}/{google}/beta"] = hf_state[
                f"encoder.layer.{i}.{hf}.bias"
            ]
    return variables


def _write_tf1_checkpoint(prefix, variables):
    graph = tf.Graph()
    with graph.as_default():
        tf_vars = [
            tf.compat.v1.Variable(value, name=name) for name, value in variables.items()
        ]
        saver = tf.compat.v1.train.Saver(tf_vars)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, prefix)


def test_google_tf1_checkpoint_parity(checkpoint, batches, tmp_path):
    from safetensors.numpy import load_file

    hf_state = load_file(os.path.join(checkpoint, "model.safetensors"))
    prefix = str(tmp_path / "bert_model.ckpt")
    _write_tf1_checkpoint(prefix, _google_variables(hf_state, 6))
    hf_config = json.load(open(os.path.join(checkpoint, "config.json")))
    config = BertConfig.from_json_dict(hf_config).replace(hidden_act="gelu_approximate")
    config.write_json_file(tmp_path / "bert_config.json", dialect="google")

    ours = from_google_checkpoint(prefix, tmp_path / "bert_config.json", BertBackbone)
    assert ours.config.hidden_act == "gelu_approximate"
    # Google's "gelu" is the tanh form, which transformers calls "gelu_new".
    reference = transformers.BertModel.from_pretrained(
        checkpoint, hidden_act="gelu_new"
    ).eval()
    _assert_backbone_matches_torch(ours, reference, batches)


def test_google_checkpoint_errors(tmp_path):
    tiny_config(hidden_act="gelu_approximate").write_json_file(
        tmp_path / "bert_config.json", dialect="google"
    )
    with pytest.raises(FileNotFoundError, match="No TensorFlow checkpoint"):
        from_google_checkpoint(
            tmp_path / "nothing.ckpt", tmp_path / "bert_config.json", BertBackbone
        )
    prefix = str(tmp_path / "partial.ckpt")
    _write_tf1_checkpoint(
        prefix, {"bert/embeddings/word_embeddings": np.zeros((64, 32), "float32")}
    )
    with pytest.raises(ValueError, match="missing tensors"):
        from_google_checkpoint(prefix, tmp_path / "bert_config.json", BertBackbone)


def test_keras_hub_parity(batches):
    keras_hub = pytest.importorskip("keras_hub")
    reference = keras_hub.models.BertBackbone(
        vocabulary_size=30522,
        num_layers=2,
        num_heads=4,
        hidden_dim=64,
        intermediate_dim=128,
        max_sequence_length=128,
    )
    ours = from_keras_hub(reference, BertBackbone)
    untouched = BertBackbone(ours.config)
    for inputs in batches:
        mine, theirs = ours(inputs), reference(inputs)
        mask = inputs["padding_mask"]
        assert (
            max_abs_diff(mine["sequence_output"], theirs["sequence_output"], mask)
            <= TOLERANCE
        )
        assert max_abs_diff(mine["pooled_output"], theirs["pooled_output"]) <= TOLERANCE
    # The comparison has teeth: a model without the imported weights is far off.
    assert (
        max_abs_diff(
            untouched(batches[0])["pooled_output"],
            reference(batches[0])["pooled_output"],
        )
        > 1e-2
    )


def test_from_keras_hub_rejects_other_models():
    with pytest.raises(ValueError, match="keras_hub.models.BertBackbone"):
        from_keras_hub(BertBackbone(tiny_config()), BertBackbone)
