"""`BertClassifier`: a dense layer on the pooled [CLS] output."""

import keras

from keras_bert_impl.layers.activations import truncated_normal
from keras_bert_impl.models.task import BertTask


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertClassifier(BertTask):
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

    def __init__(self, backbone="base", num_classes=2, dropout=0.1, **kwargs):
        super().__init__(backbone, **kwargs)
        if (
            isinstance(num_classes, bool)
            or not isinstance(num_classes, int)
            or num_classes < 1
        ):
            raise ValueError(
                f"num_classes must be a positive integer, got {num_classes!r}."
            )
        self.num_classes = num_classes
        self.dropout = dropout
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="output_dropout"
        )
        self.classifier_head = keras.layers.Dense(
            num_classes,
            kernel_initializer=truncated_normal(self.config.initializer_range),
            dtype="float32",
            name="classifier_head",
        )

    def build(self, input_shape=None):
        if self.built:
            return
        self.backbone.build()
        self.classifier_head.build((None, self.config.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        pooled = self.backbone(inputs, training=training)["pooled_output"]
        return self.classifier_head(self.output_dropout(pooled, training=training))

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

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "dropout": self.dropout})
        return config
