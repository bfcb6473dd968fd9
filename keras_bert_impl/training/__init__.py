"""Training on `tf.distribute`: strategies, BERT's optimizer, the trainer."""

from keras_bert_impl.lazy_exports import lazy_exports

_EXPORTS = {
    "WarmupPolynomialDecay": "keras_bert_impl.training.optimization",
    "create_optimizer": "keras_bert_impl.training.optimization",
    "get_strategy": "keras_bert_impl.training.strategy",
    "Trainer": "keras_bert_impl.training.trainer",
    "TrainerSettings": "keras_bert_impl.training.trainer",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
