"""Command-line tools of keras_bert_impl (installed as `keras_bert_impl_tools`).

Every tool imports TensorFlow (directly or through the package), so it is
started here, once, with its CPU-machine start-up notices filtered out.
"""

from keras_bert_impl_tools.cli import start_tensorflow_quietly

start_tensorflow_quietly()
