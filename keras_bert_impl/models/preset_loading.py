"""`from_preset` for the backbone and every task model.

A preset is a `BertConfig` preset name (random weights), a Hugging Face
checkpoint directory, a Google TF1 checkpoint directory, or a `.keras` file.
A task's preprocessor comes from the checkpoint's `vocab.txt` and casing (or,
for a `.keras` file, from the file itself). The checkpoint formats are read by
`keras_bert_impl.convert`, which builds whichever class it is given.
"""

import glob
import json
import os

from keras_bert_impl.config import PRESETS
from keras_bert_impl.convert.google import from_google_checkpoint
from keras_bert_impl.convert.huggingface import from_huggingface
from keras_bert_impl.models.backbone import BertBackbone
from keras_bert_impl.models.task import BertTask
from keras_bert_impl.models.task import load_saved
from keras_bert_impl.models.task import preprocessing_module

HF_CONFIG = "config.json"
GOOGLE_CONFIG = "bert_config.json"
_LABELLED_ARCHITECTURES = (
    "BertForSequenceClassification",
    "BertForTokenClassification",
)


def _accepted():
    return (
        f"a preset name ({', '.join(sorted(PRESETS))}), a Hugging Face checkpoint "
        f"directory ({HF_CONFIG} + model.safetensors), a Google checkpoint "
        f"directory ({GOOGLE_CONFIG} + bert_model.ckpt.*), or a .keras file"
    )


def _google_checkpoint_prefix(directory):
    indexes = sorted(glob.glob(os.path.join(directory, "*.index")))
    preferred = os.path.join(directory, "bert_model.ckpt.index")
    if preferred in indexes:
        return preferred[: -len(".index")]
    if len(indexes) == 1:
        return indexes[0][: -len(".index")]
    raise FileNotFoundError(
        f"{directory} has {GOOGLE_CONFIG} but "
        + (
            "no checkpoint (*.index)."
            if not indexes
            else f"several checkpoints {indexes}; keep one or name it bert_model.ckpt."
        )
    )


def _hf_label_names(directory, cls, kwargs):
    """`id2label` of a fine-tuned Hugging Face classifier, when the caller
    named no classes."""
    if "num_classes" in kwargs or "label_names" in kwargs:
        return
    if not hasattr(cls, "names_of"):
        return
    with open(os.path.join(directory, HF_CONFIG), encoding="utf-8") as handle:
        values = json.load(handle)
    if not set(values.get("architectures") or ()) & set(_LABELLED_ARCHITECTURES):
        return
    id2label = values.get("id2label") or {}
    if id2label:
        kwargs["label_names"] = [id2label[k] for k in sorted(id2label, key=int)]


def _make_preprocessor(cls, preprocessor, source, sequence_length, extra):
    """The task's preprocessor: given, None, or built from `source` (a
    vocabulary directory/file, or an existing preprocessor to take the
    tokenizer from)."""
    if preprocessor is False or preprocessor is None:
        return None
    if preprocessor is not True:
        return preprocessor
    if source is None:
        return None
    preprocessor_cls = cls.preprocessor_class()
    if sequence_length is not None:
        extra = dict(extra, sequence_length=sequence_length)
    base = preprocessing_module().BertPreprocessorBase
    if isinstance(source, base):
        if isinstance(source, preprocessor_cls) and not extra:
            return source
        extra.setdefault("sequence_length", source.sequence_length)
        return preprocessor_cls(source.tokenizer, **extra)
    return preprocessor_cls.from_preset(source, **extra)


def _load_keras_file(cls, path, kwargs):
    model = load_saved(path)
    if isinstance(model, cls) and not kwargs:
        return model, None
    backbone = model if isinstance(model, BertBackbone) else model.backbone
    if isinstance(model, cls):
        raise ValueError(
            f"{path} holds a complete {cls.__name__}; load it without task "
            f"arguments (got {sorted(kwargs)}), or use keras.saving.load_model."
        )
    return backbone, getattr(model, "preprocessor", None)


def load(cls, preset, **kwargs):
    """Builds `cls` (`BertBackbone` or a `BertTask`) from `preset`.

    See `BertTask.from_preset` for the arguments.
    """
    is_task = issubclass(cls, BertTask)
    preprocessor = kwargs.pop("preprocessor", True) if is_task else None
    sequence_length = kwargs.pop("sequence_length", None)
    extra = dict(kwargs.pop("preprocessor_kwargs", None) or {})
    vocabulary = kwargs.pop("vocabulary", None)
    if not is_task and (sequence_length is not None or extra or vocabulary):
        raise ValueError(
            "BertBackbone.from_preset builds no preprocessor: sequence_length, "
            "preprocessor_kwargs and vocabulary belong to the task models."
        )
    source = os.fspath(preset) if isinstance(preset, os.PathLike) else preset
    if not isinstance(source, str):
        raise TypeError(
            f"from_preset takes {_accepted()}; got {type(preset).__name__}."
        )

    def with_preprocessor(vocabulary_source):
        if is_task:
            kwargs["preprocessor"] = _make_preprocessor(
                cls, preprocessor, vocabulary_source, sequence_length, extra
            )
        return kwargs

    if source in PRESETS:
        return cls(source, **with_preprocessor(vocabulary))
    if source.endswith(".keras"):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"No such .keras file: {source}")
        loaded, saved_preprocessor = _load_keras_file(cls, source, kwargs)
        if isinstance(loaded, cls) or not is_task:
            return loaded
        return cls(loaded, **with_preprocessor(saved_preprocessor or vocabulary))
    if os.path.isfile(os.path.join(source, HF_CONFIG)):
        if is_task:
            _hf_label_names(source, cls, kwargs)
        return from_huggingface(source, cls, **with_preprocessor(vocabulary or source))
    if os.path.isfile(os.path.join(source, GOOGLE_CONFIG)):
        return from_google_checkpoint(
            _google_checkpoint_prefix(source),
            os.path.join(source, GOOGLE_CONFIG),
            cls,
            **with_preprocessor(vocabulary or source),
        )
    raise ValueError(f"from_preset takes {_accepted()}; got {preset!r}.")
