"""Smaller and faster models for inference."""

from keras_bert_impl.compression.distillation import (
    DistillationLoss,
    distill,
    student_from_teacher,
    teacher_logits,
)
from keras_bert_impl.compression.precision import (
    PRECISIONS,
    check_precision,
    model_precision,
    with_precision,
)
from keras_bert_impl.compression.importance import ffn_importance, head_importance
from keras_bert_impl.compression.pruning import prune, prune_ffn, prune_heads

__all__ = [
    "PRECISIONS",
    "DistillationLoss",
    "check_precision",
    "distill",
    "ffn_importance",
    "head_importance",
    "model_precision",
    "prune",
    "prune_ffn",
    "prune_heads",
    "student_from_teacher",
    "teacher_logits",
    "with_precision",
]
