"""keras_bert_impl: BERT for TensorFlow / Keras 3."""

from keras_bert_impl.config import BertConfig
from keras_bert_impl.config import PRESETS

__version__ = "0.1.0"
