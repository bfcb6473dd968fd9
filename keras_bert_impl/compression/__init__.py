"""Smaller and faster models for inference."""

from keras_bert_impl.lazy_exports import lazy_exports

_EXPORTS = {
    "DistillationLoss": "keras_bert_impl.compression.distillation",
    "distill": "keras_bert_impl.compression.distillation",
    "student_from_teacher": "keras_bert_impl.compression.student",
    "teacher_logits": "keras_bert_impl.compression.teacher",
    "PRECISIONS": "keras_bert_impl.compression.precision",
    "check_precision": "keras_bert_impl.compression.precision",
    "model_precision": "keras_bert_impl.compression.precision",
    "with_precision": "keras_bert_impl.compression.precision",
    "ffn_importance": "keras_bert_impl.compression.importance",
    "head_importance": "keras_bert_impl.compression.importance",
    "prune": "keras_bert_impl.compression.pruning",
    "prune_ffn": "keras_bert_impl.compression.pruning",
    "prune_heads": "keras_bert_impl.compression.pruning",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
