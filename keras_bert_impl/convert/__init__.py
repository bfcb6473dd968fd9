"""Checkpoint import/export: Hugging Face, original Google TF1, keras-hub."""

from keras_bert_impl.convert.google import from_google_checkpoint
from keras_bert_impl.convert.huggingface import from_huggingface
from keras_bert_impl.convert.huggingface import to_huggingface
from keras_bert_impl.convert.keras_hub import from_keras_hub
