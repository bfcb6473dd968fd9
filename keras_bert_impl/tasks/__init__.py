"""One object per task: what `kbi-finetune` trains and `kbi-export` writes.

    FINETUNING_TASKS: `--task_name` -> its `FinetuningTask` class.
    EXPORT_TASKS: `kbi-export --task` (a model's `serving_task`) -> its `Task`.
"""

from keras_bert_impl.tasks.embeddings import EmbeddingsTask
from keras_bert_impl.tasks.masked_lm import FillMaskTask
from keras_bert_impl.tasks.question_answering import QuestionAnsweringTask
from keras_bert_impl.tasks.text_classification import TextClassificationTask
from keras_bert_impl.tasks.token_classification import TokenClassificationTask

_TASKS = (
    TextClassificationTask,
    EmbeddingsTask,
    FillMaskTask,
    TokenClassificationTask,
    QuestionAnsweringTask,
)
FINETUNING_TASKS = {
    name: task for task in _TASKS for name in getattr(task, "task_names", ())
}
EXPORT_TASKS = {name: task for task in _TASKS for name in task.export_names}

__all__ = [
    "EXPORT_TASKS",
    "EmbeddingsTask",
    "FINETUNING_TASKS",
    "FillMaskTask",
    "QuestionAnsweringTask",
    "TextClassificationTask",
    "TokenClassificationTask",
]
