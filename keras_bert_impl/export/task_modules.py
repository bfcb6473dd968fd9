"""Every task's serving module, by the task name an export's model card records."""

from keras_bert_impl.export.question_answerer_module import QuestionAnswererModule
from keras_bert_impl.export.serving_modules import (
    ClassifierModule,
    EmbeddingsModule,
    FillMaskModule,
)
from keras_bert_impl.export.token_classifier_module import TokenClassifierModule

MODULES_BY_TASK = {
    module.task: module
    for module in (
        ClassifierModule,
        EmbeddingsModule,
        FillMaskModule,
        TokenClassifierModule,
        QuestionAnswererModule,
    )
}
