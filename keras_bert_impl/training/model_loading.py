"""Initial weights for training: `--init_checkpoint` in any of its forms.

- a `.keras` file saved by this package (any BERT model: its backbone is
  reused, the task head is fresh unless the classes match);
- a Hugging Face directory (`config.json` + `model.safetensors`);
- a google-research/bert TF1 checkpoint prefix (`.../bert_model.ckpt`),
  read with `--bert_config_file`;
- nothing: a fresh model from `--bert_config_file` or a `--config` preset.
"""

import json
import os
import zipfile

import keras
import tensorflow as tf

from keras_bert_impl.config import BertConfig
from keras_bert_impl.models.task import preprocessing_module


def resolve_config(bert_config_file=None, preset=None):
    """`BertConfig` from a JSON file (either dialect) or a preset name."""
    if bert_config_file:
        if not tf.io.gfile.exists(bert_config_file):
            raise ValueError(f"--bert_config_file={bert_config_file} does not exist.")
        return BertConfig.from_json_file(bert_config_file)
    return BertConfig.preset(preset or "base")


def default_vocab_file(init_checkpoint):
    """The `vocab.txt` beside a checkpoint, or None."""
    if not init_checkpoint:
        return None
    folder = (
        init_checkpoint
        if tf.io.gfile.isdir(init_checkpoint)
        else os.path.dirname(init_checkpoint)
    )
    candidate = os.path.join(folder, "vocab.txt")
    return candidate if tf.io.gfile.exists(candidate) else None


def saved_model_config(path):
    """The `.keras` file's model config (class name and arguments), read
    without its weights: what a run takes its vocabulary, casing, sequence
    length and label names from.

    Raises:
        ValueError: naming `path` when it is not a readable `.keras` file.
    """
    try:
        with tf.io.gfile.GFile(path, "rb") as f, zipfile.ZipFile(f) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path} is not a readable .keras file: {e}") from None
    return config.get("class_name"), config.get("config") or {}


def saved_preprocessor(path):
    """The preprocessor saved in a `.keras` model file, or None (a backbone,
    or a model saved without one); built from its config alone."""
    preprocessing_module()  # registers the preprocessor classes
    _, config = saved_model_config(path)
    serialized = config.get("preprocessor")
    if serialized is None:
        return None
    return keras.saving.deserialize_keras_object(serialized)


def _from_keras_file(path, model_cls, **kwargs):
    loaded = keras.saving.load_model(path, compile=False)
    # The head is reused when it is the same task with the same classes; the
    # dtype policy and the preprocessor may differ.
    if type(loaded) is model_cls and all(
        getattr(loaded, k, None) == v
        for k, v in kwargs.items()
        if k not in ("dtype", "preprocessor")
    ):
        source = loaded
    else:
        source = None
    backbone = getattr(loaded, "backbone", loaded)
    model = model_cls(backbone.config, **kwargs)
    model.build()
    if source is not None:
        model.set_weights(source.get_weights())
    else:
        model.backbone.set_weights(backbone.get_weights())
    return model


def load_model(
    model_cls, init_checkpoint=None, bert_config_file=None, preset=None, **kwargs
):
    """Builds `model_cls(**kwargs)` with the weights `init_checkpoint` holds.

    Raises:
        ValueError: naming `--init_checkpoint` when it is none of the forms
            above.
    """
    from keras_bert_impl import convert

    if not init_checkpoint:
        config = resolve_config(bert_config_file, preset)
        return model_cls(config, **kwargs)
    path = os.fspath(init_checkpoint)
    if path.endswith(".keras"):
        if not tf.io.gfile.exists(path):
            raise ValueError(f"--init_checkpoint={path} does not exist.")
        return _from_keras_file(path, model_cls, **kwargs)
    if tf.io.gfile.isdir(path):
        if not tf.io.gfile.exists(os.path.join(path, "config.json")):
            raise ValueError(
                f"--init_checkpoint={path} is a directory without config.json; "
                "expected a Hugging Face checkpoint directory."
            )
        return convert.from_huggingface(path, model_cls, **kwargs)
    if tf.io.gfile.exists(path + ".index"):
        config_file = bert_config_file or os.path.join(
            os.path.dirname(path), "bert_config.json"
        )
        return convert.from_google_checkpoint(path, config_file, model_cls, **kwargs)
    raise ValueError(
        f"--init_checkpoint={path} is neither a .keras file, a Hugging Face "
        "directory nor a TF checkpoint prefix (no .index file)."
    )
