"""Pretraining data (google-research/bert recipe), tf.data readers, task readers.

Task readers (GLUE-style TSV, CoNLL, SQuAD) are gathered in
`keras_bert_impl.data.tasks`.
"""

from keras_bert_impl.data.masking import MaskedLMMasker
from keras_bert_impl.data.pretraining import PretrainingRecipe
from keras_bert_impl.data.pretraining_files import create_pretraining_files
from keras_bert_impl.data.pretraining_reader import dynamic_masking_dataset
from keras_bert_impl.data.pretraining_reader import pretraining_dataset
from keras_bert_impl.data.tfrecord import pretraining_feature_spec

__all__ = [
    "MaskedLMMasker",
    "PretrainingRecipe",
    "create_pretraining_files",
    "dynamic_masking_dataset",
    "pretraining_dataset",
    "pretraining_feature_spec",
]
