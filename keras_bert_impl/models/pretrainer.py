"""`BertPretrainer`: masked-LM + next-sentence prediction, trained with `fit()`."""

import keras
from keras import ops

# Keras scales a loss by 1/replicas under tf.distribute in its own Loss
# objects; a model that computes its loss by hand has to do the same.
from keras.src.losses.loss import scale_loss_for_distribution

from keras_bert_impl.layers import MaskedLMHead
from keras_bert_impl.layers.activations import truncated_normal
from keras_bert_impl.models.inputs import validate_inputs
from keras_bert_impl.models.task import BertTask


def masked_lm_loss(masked_lm_ids, masked_lm_weights, mlm_logits):
    """Σ(w·CE) / (Σw + 1e-5), exactly as google-research/bert."""
    per_token = keras.losses.sparse_categorical_crossentropy(
        masked_lm_ids, mlm_logits, from_logits=True
    )
    weights = ops.cast(masked_lm_weights, per_token.dtype)
    return ops.sum(per_token * weights) / (ops.sum(weights) + 1e-5)


def next_sentence_loss(next_sentence_labels, nsp_logits):
    """Mean cross-entropy of the 2-way [CLS] classifier (label 1 = random next)."""
    labels = ops.reshape(next_sentence_labels, (-1,))
    return ops.mean(
        keras.losses.sparse_categorical_crossentropy(
            labels, nsp_logits, from_logits=True
        )
    )


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertPretrainer(BertTask):
    """BERT with its two pretraining heads; the loss is their sum.

    Train with plain `compile(optimizer=...)` and `fit()` on batches of
    `(x, y)`:
    - x: `token_ids`, `segment_ids`, `padding_mask`, `mask_positions`
      (int `[batch, num_predictions]`);
    - y: `masked_lm_ids` (int `[batch, num_predictions]`),
      `masked_lm_weights` (float, 0 for padding predictions) and
      `next_sentence_labels` (int `[batch]` or `[batch, 1]`, 1 = random next).

    Metrics: `masked_lm_accuracy` (weighted), `next_sentence_accuracy`,
    `masked_lm_loss`, `next_sentence_loss`.

    Args:
        backbone: a `BertBackbone` or its config / preset name.
        **kwargs: `keras.Model` arguments.

    Returns (call): dict with float32 `mlm_logits`
    `[batch, num_predictions, vocab_size]` and `nsp_logits` `[batch, 2]`.
    """

    def __init__(self, backbone="base", **kwargs):
        super().__init__(backbone, **kwargs)
        cfg = self.config
        self.mlm_head = MaskedLMHead(
            self.backbone.token_embedding,
            hidden_act=cfg.hidden_act,
            layer_norm_epsilon=cfg.layer_norm_epsilon,
            initializer_range=cfg.initializer_range,
            dtype=self.dtype_policy,
            name="mlm_head",
        )
        self.nsp_head = keras.layers.Dense(
            2,
            kernel_initializer=truncated_normal(cfg.initializer_range),
            dtype="float32",
            name="nsp_head",
        )
        self.masked_lm_accuracy = keras.metrics.SparseCategoricalAccuracy(
            name="masked_lm_accuracy"
        )
        self.next_sentence_accuracy = keras.metrics.SparseCategoricalAccuracy(
            name="next_sentence_accuracy"
        )
        self.masked_lm_loss_tracker = keras.metrics.Mean(name="masked_lm_loss")
        self.next_sentence_loss_tracker = keras.metrics.Mean(name="next_sentence_loss")

    def build(self, input_shape=None):
        if self.built:
            return
        self.backbone.build()
        self.mlm_head.build()
        self.nsp_head.build((None, self.config.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        validate_inputs(inputs, self.config, extra_keys=("mask_positions",))
        backbone_inputs = {k: v for k, v in inputs.items() if k != "mask_positions"}
        outputs = self.backbone(backbone_inputs, training=training)
        return {
            "mlm_logits": self.mlm_head(
                outputs["sequence_output"], inputs["mask_positions"]
            ),
            "nsp_logits": self.nsp_head(outputs["pooled_output"]),
        }

    def _pretraining_losses(self, y, y_pred):
        for key in ("masked_lm_ids", "masked_lm_weights", "next_sentence_labels"):
            if key not in y:
                raise ValueError(
                    f"BertPretrainer targets must be a dict with 'masked_lm_ids', "
                    f"'masked_lm_weights' and 'next_sentence_labels'; missing {key!r}."
                )
        mlm = masked_lm_loss(
            y["masked_lm_ids"], y["masked_lm_weights"], y_pred["mlm_logits"]
        )
        nsp = next_sentence_loss(y["next_sentence_labels"], y_pred["nsp_logits"])
        return mlm, nsp

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        mlm, nsp = self._pretraining_losses(y, y_pred)
        total = mlm + nsp
        for loss in self.losses:  # regularisers, if a user adds any
            total = total + ops.cast(ops.sum(loss), total.dtype)
        return scale_loss_for_distribution(total)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        mlm, nsp = self._pretraining_losses(y, y_pred)
        self.masked_lm_loss_tracker.update_state(mlm)
        self.next_sentence_loss_tracker.update_state(nsp)
        self.masked_lm_accuracy.update_state(
            y["masked_lm_ids"],
            y_pred["mlm_logits"],
            sample_weight=y["masked_lm_weights"],
        )
        self.next_sentence_accuracy.update_state(
            ops.reshape(y["next_sentence_labels"], (-1,)), y_pred["nsp_logits"]
        )
        return self.get_metrics_result()
