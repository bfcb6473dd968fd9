import json

import pytest

from keras_bert_impl import PRESETS
from keras_bert_impl import BertConfig


def test_presets_follow_the_bert_family():
    assert sorted(PRESETS) == ["base", "large", "medium", "mini", "small", "tiny"]
    base = BertConfig.preset("base")
    assert (
        base.num_layers,
        base.hidden_size,
        base.num_heads,
        base.intermediate_size,
    ) == (
        12,
        768,
        12,
        3072,
    )
    tiny = BertConfig.preset("tiny", vocab_size=100)
    assert (tiny.num_layers, tiny.hidden_size, tiny.vocab_size) == (2, 128, 100)
    large = BertConfig.preset("large")
    assert (large.num_layers, large.hidden_size, large.num_heads) == (24, 1024, 16)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("hidden_size", 0, "BertConfig.hidden_size"),
        ("num_layers", 2.5, "BertConfig.num_layers"),
        ("num_heads", 5, "divisible by BertConfig.num_heads"),
        ("hidden_act", "swishy", "BertConfig.hidden_act"),
        ("hidden_dropout", 1.0, "BertConfig.hidden_dropout"),
        ("layer_norm_epsilon", 0, "BertConfig.layer_norm_epsilon"),
        ("vocab_size", True, "BertConfig.vocab_size"),
    ],
)
def test_bad_field_is_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        BertConfig(**{field: value})


def test_unknown_preset_and_fields_are_named():
    with pytest.raises(ValueError, match="'huge'"):
        BertConfig.preset("huge")
    with pytest.raises(ValueError, match="hiden_size"):
        BertConfig.preset("tiny", hiden_size=3)
    with pytest.raises(ValueError, match="layers"):
        BertConfig.from_dict({"layers": 3})


def test_dict_round_trip():
    config = BertConfig.preset("mini", hidden_act="gelu_approximate")
    assert BertConfig.from_dict(config.to_dict()) == config


def test_google_dialect_reads_gelu_as_tanh_approximation(tmp_path):
    config = BertConfig.preset("tiny", hidden_act="gelu_approximate")
    path = tmp_path / "bert_config.json"
    config.write_json_file(path, dialect="google")
    values = json.loads(path.read_text())
    assert values["hidden_act"] == "gelu"
    assert "layer_norm_eps" not in values
    assert BertConfig.from_json_file(path) == config


def test_huggingface_dialect_reads_gelu_as_exact(tmp_path):
    config = BertConfig.preset("tiny", layer_norm_epsilon=1e-6)
    path = tmp_path / "config.json"
    config.write_json_file(path)
    values = json.loads(path.read_text())
    assert values["hidden_act"] == "gelu" and values["model_type"] == "bert"
    assert BertConfig.from_json_file(path) == config
    approx = BertConfig.preset("tiny", hidden_act="gelu_approximate")
    approx.write_json_file(path)
    assert json.loads(path.read_text())["hidden_act"] == "gelu_new"
    assert BertConfig.from_json_file(path) == approx


def test_exact_gelu_has_no_google_name(tmp_path):
    with pytest.raises(ValueError, match="gelu_approximate"):
        BertConfig.preset("tiny").write_json_file(tmp_path / "c.json", dialect="google")


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"vocab_size": 10}', "missing required key"),
        (
            '{"model_type": "roberta", "vocab_size": 1, "hidden_size": 1, '
            '"num_hidden_layers": 1, "num_attention_heads": 1, "intermediate_size": 1}',
            "roberta",
        ),
        (
            '{"vocab_size": 1, "hidden_size": 1, "num_hidden_layers": 1, '
            '"num_attention_heads": 1, "intermediate_size": 1, "hidden_act": "mish"}',
            "hidden_act 'mish'",
        ),
    ],
)
def test_bad_json_files_are_named(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as error:
        BertConfig.from_json_file(path)
    assert str(path) in str(error.value)


def test_missing_json_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        BertConfig.from_json_file(tmp_path / "nope.json")
