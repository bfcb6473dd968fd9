"""`BertTokenClassifier`: a dense layer on every token (NER, tagging)."""

import keras
from keras import ops

from keras_bert_impl.models.task import BertDenseHeadTask

# Label of positions that carry no loss (continuation pieces, [CLS], [SEP],
# padding), as in Hugging Face's token-classification examples.
IGNORE_LABEL = -100


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class LabelledTokenAccuracy(keras.metrics.Metric):
    """Accuracy over the positions whose label is not `IGNORE_LABEL`.

    Keras' SparseCategoricalAccuracy would count ignored positions (padding,
    continuation pieces) as errors.
    """

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable((), initializer="zeros", name="correct")
        self.labelled = self.add_variable((), initializer="zeros", name="labelled")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        weight = ops.cast(ops.not_equal(y_true, IGNORE_LABEL), self.dtype)
        if sample_weight is not None:
            weight = weight * ops.cast(sample_weight, self.dtype)
        hits = ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), y_true), self.dtype)
        self.correct.assign_add(ops.sum(hits * weight))
        self.labelled.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.correct, self.labelled)


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertTokenClassifier(BertDenseHeadTask):
    """Per-token classification.

    Args:
        backbone: a `BertBackbone` or its config / preset name.
        num_classes: number of tags.
        dropout: dropout on the sequence output.
        **kwargs: `keras.Model` arguments.

    Returns (call): float32 logits `[batch, seq_length, num_classes]`.

    `compile()` defaults: AdamW(5e-5), sparse categorical cross-entropy from
    logits that skips labels equal to `IGNORE_LABEL` (-100), and accuracy
    over the labelled positions.
    """

    head_input = "sequence_output"
    head_name = "token_classifier_head"

    def __init__(self, backbone="base", num_classes=9, dropout=0.1, **kwargs):
        super().__init__(backbone, num_classes, dropout, **kwargs)

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(5e-5)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, ignore_class=IGNORE_LABEL
            )
        if metrics == "auto":
            metrics = [LabelledTokenAccuracy()]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
