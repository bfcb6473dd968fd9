"""Pretraining data (google-research/bert recipe), tf.data readers, task readers.

Task readers (GLUE-style TSV, CoNLL, SQuAD) are gathered in
`keras_bert_impl.data.tasks`.
"""

from keras_bert_impl.lazy_exports import lazy_exports

_EXPORTS = {
    "MaskedLMMasker": "keras_bert_impl.data.masking",
    "PretrainingRecipe": "keras_bert_impl.data.pretraining",
    "create_pretraining_files": "keras_bert_impl.data.pretraining_files",
    "dynamic_masking_dataset": "keras_bert_impl.data.pretraining_reader",
    "pretraining_dataset": "keras_bert_impl.data.pretraining_reader",
    "pretraining_feature_spec": "keras_bert_impl.data.tfrecord",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
