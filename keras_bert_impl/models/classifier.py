"""`BertClassifier`: a dense layer on the pooled [CLS] output."""

import keras

from keras_bert_impl.models.task import BertDenseHeadTask


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertClassifier(BertDenseHeadTask):
    """Sequence classification (or regression with `num_classes=1`).

    Args:
        backbone: a `BertBackbone` or its config / preset name.
        num_classes: number of classes; 1 for regression.
        dropout: dropout on the pooled output (BERT used the hidden dropout).
        **kwargs: `keras.Model` arguments.

    Returns (call): float32 logits `[batch, num_classes]` (raw scores for
    regression).

    `compile()` defaults: AdamW(2e-5), sparse categorical cross-entropy from
    logits and accuracy, or mean squared error when `num_classes == 1`.
    """

    head_input = "pooled_output"
    head_name = "classifier_head"

    def __init__(self, backbone="base", num_classes=2, dropout=0.1, **kwargs):
        super().__init__(backbone, num_classes, dropout, **kwargs)

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        regression = self.num_classes == 1
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(2e-5)
        if loss == "auto":
            loss = (
                keras.losses.MeanSquaredError()
                if regression
                else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            )
        if metrics == "auto":
            metrics = (
                []
                if regression
                else [keras.metrics.SparseCategoricalAccuracy("accuracy")]
            )
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
