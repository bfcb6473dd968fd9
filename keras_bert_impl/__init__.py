"""keras_bert_impl: BERT for TensorFlow / Keras 3.

The model classes load on first use, so tools that only touch text or data
(`keras_bert_impl.text`, `keras_bert_impl.data`) start without importing the
models.
"""

import importlib

from keras_bert_impl.config import PRESETS
from keras_bert_impl.config import BertConfig

__version__ = "0.1.0"

_MODELS = (
    "BertBackbone",
    "BertClassifier",
    "BertPretrainer",
    "BertQuestionAnswerer",
    "BertTokenClassifier",
)
__all__ = ["PRESETS", "BertConfig", *_MODELS]


def __getattr__(name):
    if name in _MODELS:
        return getattr(importlib.import_module("keras_bert_impl.models"), name)
    raise AttributeError(f"module 'keras_bert_impl' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_MODELS))
