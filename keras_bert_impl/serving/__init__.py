"""Serving: a TF-Serving-protocol model server (`ModelServer`) and a client (`Client`)."""

from keras_bert_impl.serving.client import Client, make_example
from keras_bert_impl.serving.server import ModelServer, ServerOptions
from keras_bert_impl.serving.status import ServingError

__all__ = ["Client", "make_example", "ModelServer", "ServerOptions", "ServingError"]
