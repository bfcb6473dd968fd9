"""A saved model knows its task: `kbi-export` reads it from the `.keras` file, and a
`--task` that contradicts the model is one line naming both, exit code 1."""

import os
import subprocess
import sys

import pytest
from model_helpers import tiny_config
from model_helpers import tiny_text_model

from keras_bert_impl import BertBackbone
from keras_bert_impl import BertClassifier
from keras_bert_impl import BertPretrainer
from keras_bert_impl import BertQuestionAnswerer
from keras_bert_impl import BertTokenClassifier
from keras_bert_impl.tasks import EXPORT_TASKS, FINETUNING_TASKS
from keras_bert_impl.models.task import load_saved


def _kbi_export(*flags):
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "kbi-export"), *flags],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "model.keras"
    tiny_text_model(label_names=("bad", "fine", "great")).save(path)
    return path


def test_every_model_names_an_export_task():
    config = tiny_config()
    models = [
        BertBackbone(config),
        BertClassifier(config, num_classes=3),
        BertClassifier(config, num_classes=1),
        BertTokenClassifier(config, num_classes=5),
        BertQuestionAnswerer(config),
        BertPretrainer(config),
    ]
    assert {model.serving_task for model in models} == set(EXPORT_TASKS)
    # A fine-tuned model exports through the task that trained it.
    for model in models:
        task = EXPORT_TASKS[model.serving_task]
        if task in FINETUNING_TASKS.values():
            assert task.model_class_name == type(model).__name__


def test_load_saved_refuses_a_file_of_another_model(tmp_path):
    import keras

    path = tmp_path / "other.keras"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(path)
    with pytest.raises(ValueError, match="not a BERT model of this package"):
        load_saved(path)


def test_export_without_task_uses_the_models(classifier_file, tmp_path):
    result = _kbi_export(
        f"--init_checkpoint={classifier_file}",
        f"--export_dir={tmp_path / 'export'}",
        "--bucket_lengths=16",
    )
    assert result.returncode == 0, result.stderr
    assert "Exported classifier ->" in result.stdout
    assert os.path.isfile(tmp_path / "export" / "1" / "saved_model.pb")


def test_a_task_that_contradicts_the_model_is_refused(classifier_file, tmp_path):
    result = _kbi_export(
        f"--init_checkpoint={classifier_file}",
        "--task=token_classifier",
        f"--export_dir={tmp_path / 'export'}",
    )
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("kbi-export: --task=token_classifier contradicts")
    assert "BertClassifier" in message and "--task=classifier" in message
    assert "labels bad, fine, great" in message
    assert not os.path.exists(tmp_path / "export")


def test_a_checkpoint_directory_needs_a_task(tmp_path):
    result = _kbi_export(
        f"--init_checkpoint={tmp_path}", f"--export_dir={tmp_path / 'export'}"
    )
    assert result.returncode == 1
    assert "--task is needed" in result.stderr
    assert "classifier, regression" in result.stderr
