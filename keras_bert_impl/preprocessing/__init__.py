"""Text → model inputs as Keras layers: one per task, built on `text.Tokenizer`
and `text.Packer`, serialisable with their vocabulary, run inside `tf.data`
and inside exported serving graphs."""

from keras_bert_impl.preprocessing.base import BertPreprocessorBase
from keras_bert_impl.preprocessing.masked_lm_preprocessor import (
    BertMaskedLMPreprocessor,
)
from keras_bert_impl.preprocessing.pretraining_preprocessor import (
    BertPretrainingPreprocessor,
)
from keras_bert_impl.preprocessing.question_answerer_preprocessor import (
    BertQuestionAnswererPreprocessor,
)
from keras_bert_impl.preprocessing.text_classifier_preprocessor import (
    BertTextClassifierPreprocessor,
)
from keras_bert_impl.preprocessing.token_classifier_preprocessor import (
    BertTokenClassifierPreprocessor,
)

__all__ = [
    "BertMaskedLMPreprocessor",
    "BertPreprocessorBase",
    "BertPretrainingPreprocessor",
    "BertQuestionAnswererPreprocessor",
    "BertTextClassifierPreprocessor",
    "BertTokenClassifierPreprocessor",
]
