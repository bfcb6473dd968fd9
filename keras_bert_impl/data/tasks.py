"""Fine-tuning task readers in one place.

- Sentences or pairs with a class or score, in TSV (GLUE's files), CSV or
  JSON lines (chosen by extension): `read_text_examples` →
  `text_classification_dataset`.
- CoNLL NER (tag on each word's first piece, `IGNORE_LABEL` elsewhere):
  `read_conll` → `conll_features` → `TokenClassificationFeatures.dataset`.
- SQuAD v1.1/v2.0 (windows with doc stride, pieces mapped back to context
  characters): `read_squad` → `squad_features` → `SquadFeatures.dataset`;
  logits → answers with `squad_predictions`, scored with `squad_metrics`.
"""

from keras_bert_impl.data.conll import (
    ConllSentences,
    TokenClassificationFeatures,
    conll_features,
    read_conll,
    tag_vocabulary,
)
from keras_bert_impl.data.glue import (
    TextExamples,
    read_text_examples,
    read_tsv_examples,
    text_classification_dataset,
)
from keras_bert_impl.data.squad import (
    SquadExample,
    SquadFeatures,
    read_squad,
    squad_features,
)
from keras_bert_impl.data.squad_postprocess import (
    SquadPredictions,
    squad_metrics,
    squad_predictions,
)
from keras_bert_impl.constants import IGNORE_LABEL

__all__ = [
    "IGNORE_LABEL",
    "ConllSentences",
    "SquadExample",
    "SquadFeatures",
    "SquadPredictions",
    "TextExamples",
    "TokenClassificationFeatures",
    "conll_features",
    "read_conll",
    "read_squad",
    "read_text_examples",
    "read_tsv_examples",
    "squad_features",
    "squad_metrics",
    "squad_predictions",
    "tag_vocabulary",
    "text_classification_dataset",
]
