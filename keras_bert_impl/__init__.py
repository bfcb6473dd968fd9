"""keras_bert_impl: BERT for TensorFlow / Keras 3."""

from keras_bert_impl.config import PRESETS
from keras_bert_impl.config import BertConfig
from keras_bert_impl.models import BertBackbone
from keras_bert_impl.models import BertClassifier
from keras_bert_impl.models import BertPretrainer
from keras_bert_impl.models import BertQuestionAnswerer
from keras_bert_impl.models import BertTokenClassifier

__version__ = "0.1.0"
