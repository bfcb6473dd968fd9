"""`BertTokenClassifier`: a dense layer on every token (NER, tagging)."""

import keras

from keras_bert_impl.layers.activations import truncated_normal
from keras_bert_impl.models.task import BertTask

# Label of positions that carry no loss (continuation pieces, [CLS], [SEP],
# padding), as in Hugging Face's token-classification examples.
IGNORE_LABEL = -100


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertTokenClassifier(BertTask):
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

    def __init__(self, backbone="base", num_classes=9, dropout=0.1, **kwargs):
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
        self.token_classifier_head = keras.layers.Dense(
            num_classes,
            kernel_initializer=truncated_normal(self.config.initializer_range),
            dtype="float32",
            name="token_classifier_head",
        )

    def build(self, input_shape=None):
        if self.built:
            return
        self.backbone.build()
        self.token_classifier_head.build((None, None, self.config.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        sequence = self.backbone(inputs, training=training)["sequence_output"]
        return self.token_classifier_head(
            self.output_dropout(sequence, training=training)
        )

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(5e-5)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, ignore_class=IGNORE_LABEL
            )
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy("accuracy")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "dropout": self.dropout})
        return config
