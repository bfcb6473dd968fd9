"""`BertQuestionAnswerer`: start/end logits for extractive QA (SQuAD)."""

import keras
from keras import ops

from keras_bert_impl.layers.activations import truncated_normal
from keras_bert_impl.models.task import BertTask

# Logit given to padded positions so no answer span can start or end there.
_MASKED_LOGIT = -1e9


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertQuestionAnswerer(BertTask):
    """Predicts the answer span as start and end positions.

    Args:
        backbone: a `BertBackbone` or its config / preset name.
        **kwargs: `keras.Model` arguments.

    Returns (call): dict with float32 `start_logits` and `end_logits`
    `[batch, seq_length]`; padded positions get -1e9.

    Train with `fit()` on `(x, y)` where y holds int `start_positions` and
    `end_positions` (`[batch]`; 0, the [CLS] position, for "no answer"); the
    loss is the mean of the two cross-entropies, as in BERT's run_squad.py.
    """

    def __init__(self, backbone="base", **kwargs):
        super().__init__(backbone, **kwargs)
        self.span_head = keras.layers.Dense(
            2,
            kernel_initializer=truncated_normal(self.config.initializer_range),
            dtype="float32",
            name="span_head",
        )
        self._span_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def build(self, input_shape=None):
        if self.built:
            return
        self.backbone.build()
        self.span_head.build((None, None, self.config.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        sequence = self.backbone(inputs, training=training)["sequence_output"]
        logits = self.span_head(sequence)
        padding_mask = inputs.get("padding_mask")
        if padding_mask is None:
            padding_mask = ops.not_equal(inputs["token_ids"], 0)
        logits = ops.where(
            ops.cast(padding_mask, "bool")[..., None], logits, _MASKED_LOGIT
        )
        return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}

    def compile(self, optimizer="auto", **kwargs):
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(3e-5)
        super().compile(optimizer=optimizer, **kwargs)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        for key in ("start_positions", "end_positions"):
            if key not in y:
                raise ValueError(
                    "BertQuestionAnswerer targets must be a dict with "
                    f"'start_positions' and 'end_positions'; missing {key!r}."
                )
        start = self._span_loss(y["start_positions"], y_pred["start_logits"])
        end = self._span_loss(y["end_positions"], y_pred["end_logits"])
        return (start + end) / 2.0
