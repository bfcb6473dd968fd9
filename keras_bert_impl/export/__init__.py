"""Export support: servability checks for SavedModels meant for TF Serving."""

from keras_bert_impl.export.clean_load import load_in_clean_subprocess
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
    "inspect_saved_model",
    "load_in_clean_subprocess",
]
