"""`from_preset` on the backbone and every task: preset names, Hugging Face
and Google checkpoint directories, `.keras` files; the preprocessor comes
from the checkpoint's vocabulary and casing."""

import json
import os

import keras
import numpy as np
import pytest

from keras_bert_impl import BertBackbone
from keras_bert_impl import BertClassifier
from keras_bert_impl import BertPretrainer
from keras_bert_impl import BertQuestionAnswerer
from keras_bert_impl import BertTokenClassifier
from keras_bert_impl.convert import from_huggingface
from keras_bert_impl.convert import to_huggingface
from keras_bert_impl.preprocessing import BertPretrainingPreprocessor
from keras_bert_impl.preprocessing import BertQuestionAnswererPreprocessor
from keras_bert_impl.preprocessing import BertTextClassifierPreprocessor
from keras_bert_impl.preprocessing import BertTokenClassifierPreprocessor
from tests.model_helpers import max_abs_diff
from tests.model_helpers import real_checkpoint_dir
from tests.model_helpers import tiny_config
from tests.test_convert import _google_variables
from tests.test_convert import _write_tf1_checkpoint

# A cased vocabulary (upper-case tokens): casing is read off it when the
# checkpoint does not say.
CASED_VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
    f"Word{i}" for i in range(59)
]


@pytest.fixture(scope="module")
def tiny_hf_dir(tmp_path_factory):
    """A tiny Hugging Face checkpoint with a cased vocabulary."""
    directory = tmp_path_factory.mktemp("tiny_hf")
    backbone = BertBackbone(tiny_config())
    to_huggingface(backbone, directory)
    (directory / "vocab.txt").write_text("\n".join(CASED_VOCABULARY) + "\n")
    return str(directory), backbone


def test_real_checkpoint_gives_every_task_its_preprocessor():
    checkpoint = real_checkpoint_dir()
    reference = from_huggingface(checkpoint, BertBackbone)
    inputs = {"token_ids": np.array([[101, 7592, 2088, 102]], "int32")}
    expected = {
        BertClassifier: BertTextClassifierPreprocessor,
        BertTokenClassifier: BertTokenClassifierPreprocessor,
        BertQuestionAnswerer: BertQuestionAnswererPreprocessor,
        BertPretrainer: BertPretrainingPreprocessor,
    }
    for task, preprocessor_class in expected.items():
        model = task.from_preset(checkpoint, sequence_length=64)
        assert type(model.preprocessor) is preprocessor_class
        assert model.preprocessor.tokenizer.lowercase  # tokenizer_config.json
        assert model.preprocessor.sequence_length == 64
        assert model.preprocessor.tokenizer.vocab_size == 30522
        diff = max_abs_diff(
            model.backbone(inputs)["pooled_output"], reference(inputs)["pooled_output"]
        )
        assert diff == 0.0
    backbone = BertBackbone.from_preset(checkpoint)
    assert (
        max_abs_diff(
            backbone(inputs)["sequence_output"], reference(inputs)["sequence_output"]
        )
        == 0.0
    )


def test_task_arguments_and_label_names(tiny_hf_dir):
    directory, _ = tiny_hf_dir
    model = BertClassifier.from_preset(directory, label_names=["neg", "pos", "mixed"])
    assert model.num_classes == 3 and model.label_names == ("neg", "pos", "mixed")
    assert not model.preprocessor.tokenizer.lowercase  # read off the vocabulary
    tagger = BertTokenClassifier.from_preset(directory, num_classes=5, dropout=0.2)
    assert tagger.num_classes == 5 and tagger.dropout == 0.2
    bare = BertClassifier.from_preset(directory, preprocessor=False)
    assert bare.preprocessor is None
    with pytest.raises(ValueError, match="label_names must be 2 distinct"):
        BertClassifier.from_preset(
            directory, num_classes=2, label_names=["a", "b", "c"]
        )


def test_fine_tuned_hugging_face_classifier_keeps_its_label_names(
    tiny_hf_dir, tmp_path
):
    directory, _ = tiny_hf_dir
    classifier = BertClassifier(tiny_config(), num_classes=2)
    to_huggingface(classifier, tmp_path)
    config_path = tmp_path / "config.json"
    config = json.loads(config_path.read_text())
    config["id2label"] = {"0": "negative", "1": "positive"}
    config_path.write_text(json.dumps(config))
    (tmp_path / "vocab.txt").write_text("\n".join(CASED_VOCABULARY) + "\n")
    loaded = BertClassifier.from_preset(str(tmp_path))
    assert loaded.label_names == ("negative", "positive")
    inputs = {"token_ids": np.array([[2, 5, 6, 3]], "int32")}
    assert max_abs_diff(loaded(inputs), classifier(inputs)) < 1e-6


def test_google_checkpoint_directory(tmp_path):
    from safetensors.numpy import load_file

    backbone = BertBackbone(tiny_config(hidden_act="gelu_approximate"))
    to_huggingface(backbone, tmp_path / "hf")
    state = load_file(str(tmp_path / "hf" / "model.safetensors"))
    google = tmp_path / "uncased_L-2_H-32_A-4"
    google.mkdir()
    _write_tf1_checkpoint(str(google / "bert_model.ckpt"), _google_variables(state, 2))
    backbone.config.write_json_file(google / "bert_config.json", dialect="google")
    lower = [t if t.startswith("[") else t.lower() for t in CASED_VOCABULARY]
    (google / "vocab.txt").write_text("\n".join(lower) + "\n")
    model = BertClassifier.from_preset(str(google), num_classes=2, sequence_length=16)
    assert model.preprocessor.tokenizer.lowercase
    inputs = {"token_ids": np.array([[2, 5, 6, 3]], "int32")}
    assert (
        max_abs_diff(
            model.backbone(inputs)["sequence_output"],
            backbone(inputs)["sequence_output"],
        )
        < 1e-6
    )
    assert list(np.asarray(model.preprocessor("WORD5 word6")["token_ids"][:4])) == [
        2,
        10,
        11,
        3,
    ]


def test_preset_name_builds_random_weights(tiny_hf_dir):
    directory, _ = tiny_hf_dir
    model = BertClassifier.from_preset("tiny", num_classes=4)
    assert model.config.num_layers == 2 and model.num_classes == 4
    assert model.preprocessor is None
    with_vocabulary = BertClassifier.from_preset(
        "tiny", vocabulary=os.path.join(directory, "vocab.txt"), sequence_length=8
    )
    assert with_vocabulary.preprocessor.sequence_length == 8
    assert BertBackbone.from_preset("mini").config.hidden_size == 256


def test_keras_file_round_trip(tiny_hf_dir, tmp_path):
    directory, _ = tiny_hf_dir
    model = BertClassifier.from_preset(
        directory, label_names=["a", "b"], sequence_length=8
    )
    path = str(tmp_path / "classifier.keras")
    model.save(path)
    loaded = BertClassifier.from_preset(path)
    assert loaded.label_names == ("a", "b")
    assert loaded.preprocessor.tokenizer.vocabulary == CASED_VOCABULARY
    np.testing.assert_array_equal(
        loaded.predict(["Word1 Word2"], verbose=0),
        model.predict(["Word1 Word2"], verbose=0),
    )
    # The backbone of a saved task, or a task built on a saved backbone.
    assert isinstance(BertBackbone.from_preset(path), BertBackbone)
    tagger = BertTokenClassifier.from_preset(path, num_classes=3)
    assert type(tagger.preprocessor) is BertTokenClassifierPreprocessor
    backbone_path = str(tmp_path / "backbone.keras")
    model.backbone.save(backbone_path)
    on_backbone = BertClassifier.from_preset(backbone_path, num_classes=2)
    assert on_backbone.preprocessor is None
    with pytest.raises(ValueError, match="complete BertClassifier"):
        BertClassifier.from_preset(path, num_classes=5)


@pytest.mark.parametrize(
    "source, error, message",
    [
        ("no-such-preset", ValueError, "a preset name"),
        ("missing.keras", FileNotFoundError, "missing.keras"),
        (42, TypeError, "got int"),
    ],
)
def test_bad_sources_say_what_is_accepted(source, error, message):
    with pytest.raises(error, match=message):
        BertClassifier.from_preset(source)


def test_checkpoint_without_vocabulary_is_named(tmp_path):
    to_huggingface(BertBackbone(tiny_config()), tmp_path)
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        BertClassifier.from_preset(str(tmp_path))
    # Without a preprocessor nothing needs the vocabulary.
    assert (
        BertClassifier.from_preset(str(tmp_path), preprocessor=False).num_classes == 2
    )


def test_loaded_keras_file_is_a_plain_keras_model(tiny_hf_dir, tmp_path):
    directory, _ = tiny_hf_dir
    model = BertTokenClassifier.from_preset(directory, label_names=["O", "B", "I"])
    model.compile()
    path = str(tmp_path / "tagger.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.compiled and loaded.label_names == ("O", "B", "I")
    assert type(loaded.preprocessor) is BertTokenClassifierPreprocessor
