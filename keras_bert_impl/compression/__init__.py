"""Smaller and faster models for inference."""

from keras_bert_impl.compression.precision import (
    PRECISIONS,
    check_precision,
    model_precision,
    with_precision,
)

__all__ = ["PRECISIONS", "check_precision", "model_precision", "with_precision"]
