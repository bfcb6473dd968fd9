"""BERT models: the backbone and the models that put heads on it."""

# Registers the learning-rate schedule a saved, compiled model may carry.
import keras_bert_impl.schedules  # noqa: F401

from keras_bert_impl.models.backbone import BertBackbone
from keras_bert_impl.models.classifier import BertClassifier
from keras_bert_impl.models.pretrainer import BertPretrainer
from keras_bert_impl.models.question_answerer import BertQuestionAnswerer
from keras_bert_impl.models.task import BertTask
from keras_bert_impl.models.token_classifier import BertTokenClassifier
