"""Smaller and faster models for inference."""

from keras_bert_impl.compression.precision import (
    PRECISIONS,
    check_precision,
    model_precision,
    with_precision,
)
from keras_bert_impl.compression.pruning import (
    ffn_importance,
    head_importance,
    prune,
    prune_ffn,
    prune_heads,
)

__all__ = [
    "PRECISIONS",
    "check_precision",
    "ffn_importance",
    "head_importance",
    "model_precision",
    "prune",
    "prune_ffn",
    "prune_heads",
    "with_precision",
]
