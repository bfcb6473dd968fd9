"""keras_bert_impl: BERT for TensorFlow / Keras 3.

The model classes load on first use, so tools that only touch text or data
(`keras_bert_impl.text`, `keras_bert_impl.data`) start without importing the
models.
"""

from keras_bert_impl.config import PRESETS
from keras_bert_impl.config import BertConfig
from keras_bert_impl.lazy_exports import lazy_exports

__version__ = "0.1.0"

_MODELS = (
    "BertBackbone",
    "BertClassifier",
    "BertPretrainer",
    "BertQuestionAnswerer",
    "BertTokenClassifier",
)
__all__ = ["PRESETS", "BertConfig", *_MODELS]
__getattr__, __dir__ = lazy_exports(
    __name__, {name: "keras_bert_impl.models" for name in _MODELS}
)
