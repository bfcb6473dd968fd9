"""Export: raw-text SavedModels in TF Serving's layout, and servability checks."""

from keras_bert_impl.export.clean_load import load_in_clean_subprocess
from keras_bert_impl.export.exporter import (
    export_classifier,
    export_embeddings,
    export_fill_mask,
    export_module,
    export_question_answerer,
    export_token_classifier,
)
from keras_bert_impl.export.servability import (
    ServabilityError,
    ServabilityReport,
    check_servability,
    inspect_saved_model,
)

__all__ = [
    "ServabilityError",
    "ServabilityReport",
    "check_servability",
    "export_classifier",
    "export_embeddings",
    "export_fill_mask",
    "export_module",
    "export_question_answerer",
    "export_token_classifier",
    "inspect_saved_model",
    "load_in_clean_subprocess",
]
