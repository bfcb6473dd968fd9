"""Training on `tf.distribute`: strategies, BERT's optimizer, the trainer."""

from keras_bert_impl.training.optimization import WarmupPolynomialDecay
from keras_bert_impl.training.optimization import create_optimizer
from keras_bert_impl.training.strategy import get_strategy
from keras_bert_impl.training.trainer import Trainer
from keras_bert_impl.training.trainer import TrainerSettings

__all__ = [
    "Trainer",
    "TrainerSettings",
    "WarmupPolynomialDecay",
    "create_optimizer",
    "get_strategy",
]
