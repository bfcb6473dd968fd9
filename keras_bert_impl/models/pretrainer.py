"""`BertPretrainer`: masked-LM + next-sentence prediction, trained with `fit()`."""

import keras
from keras import ops

from keras_bert_impl.layers import MaskedLMHead
from keras_bert_impl.layers.activations import truncated_normal
from keras_bert_impl.models import checkpoint_names
from keras_bert_impl.models.inputs import validate_inputs
from keras_bert_impl.models.task import BertTask
from keras_bert_impl.optimizers import FusedAdamW


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

    Comes compiled with FusedAdamW(1e-4, weight decay 0.01), BERT's pretraining
    optimizer (`compile(optimizer=...)` to change it); `fit()` on batches of
    `(x, y)`:
    - x: `token_ids`, `segment_ids`, `padding_mask`, `mask_positions`
      (int `[batch, num_predictions]`);
    - y: `masked_lm_ids` (int `[batch, num_predictions]`),
      `masked_lm_weights` (float, 0 for padding predictions) and
      `next_sentence_labels` (int `[batch]` or `[batch, 1]`, 1 = random next).

    With a preprocessor (`from_preset`, or `preprocessor=`
    `BertPretrainingPreprocessor(...)`), `fit` also takes raw passages: a
    list, numpy array or `tf.data.Dataset` of strings, each a document or a
    paragraph; pairs and masks are drawn afresh in `tf.data` every epoch.

    Metrics: `masked_lm_accuracy` (weighted), `next_sentence_accuracy`,
    `masked_lm_loss`, `next_sentence_loss`, plus any passed to `compile`.
    Compile metrics see the outputs by name, with the targets they score:
    `metrics={"mlm_logits": [...], "nsp_logits": [...]}` receive
    `masked_lm_ids` and `next_sentence_labels`; put MLM metrics in
    `weighted_metrics` so that padded prediction slots (weight 0) do not
    count (Keras reports them as `mlm_logits_<name>`).

    Args:
        backbone: a `BertBackbone` or its config / preset name.
        **kwargs: `keras.Model` arguments.

    Returns (call): dict with float32 `mlm_logits`
    `[batch, num_predictions, vocab_size]` and `nsp_logits` `[batch, 2]`.
    """

    # from_preset gives it a BertPretrainingPreprocessor (raw passages →
    # next-sentence pairs and dynamic masks, in tf.data).
    preprocessor_class_name = "BertPretrainingPreprocessor"
    export_task = "fill_mask"
    huggingface_architecture = "BertForPreTraining"

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
        self.compile()  # the defaults below; compile() again to change them

    def compile(self, optimizer="auto", **kwargs):
        # BERT's pretraining recipe: Adam with decoupled weight decay 0.01 and a
        # peak learning rate of 1e-4 (give a schedule for warm-up and decay).
        if optimizer == "auto":
            optimizer = FusedAdamW(1e-4, weight_decay=0.01)
        super().compile(optimizer=optimizer, **kwargs)

    def build(self, input_shape=None):
        if self.built:
            return
        self.backbone.build()
        self.mlm_head.build()
        self.nsp_head.build((None, self.config.hidden_size))
        self.built = True

    def head_checkpoint_weights(self):
        # The MLM decoder is the word-embedding table itself (tied): only its
        # transform and output bias are the head's own.
        return {
            **checkpoint_names.dense(
                "cls/predictions/transform/dense", self.mlm_head.transform_dense
            ),
            **checkpoint_names.layer_norm(
                "cls/predictions/transform/LayerNorm", self.mlm_head.transform_layer_norm
            ),
            "cls/predictions/output_bias": self.mlm_head.output_bias,
            "cls/seq_relationship/output_weights": self.nsp_head.kernel,
            "cls/seq_relationship/output_bias": self.nsp_head.bias,
        }

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
                    f"'masked_lm_weights' and 'next_sentence_labels'; missing {key!r}"
                    " (for raw passages without labels, use a "
                    "BertPretrainingPreprocessor: it forms the next-sentence pairs)."
                )
        mlm = masked_lm_loss(
            y["masked_lm_ids"], y["masked_lm_weights"], y_pred["mlm_logits"]
        )
        nsp = next_sentence_loss(y["next_sentence_labels"], y_pred["nsp_logits"])
        return mlm, nsp

    def _replicas_in_sync(self):
        # Under tf.distribute every replica's loss is summed into the
        # gradient, so each must be divided by the number of replicas, as
        # Keras' own Loss objects do. JAX models have no distribute_strategy.
        strategy = getattr(self, "distribute_strategy", None)
        return 1 if strategy is None else strategy.num_replicas_in_sync

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        # The only place the two losses are computed: their trackers are
        # updated here, and compute_metrics reuses nothing but the logits.
        mlm, nsp = self._pretraining_losses(y, y_pred)
        self.masked_lm_loss_tracker.update_state(mlm)
        self.next_sentence_loss_tracker.update_state(nsp)
        total = mlm + nsp
        for loss in self.losses:  # regularisers, if a user adds any
            total = total + ops.cast(ops.sum(loss), total.dtype)
        replicas = self._replicas_in_sync()
        if replicas > 1:
            total = total * (1.0 / replicas)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        self.masked_lm_accuracy.update_state(
            y["masked_lm_ids"],
            y_pred["mlm_logits"],
            sample_weight=y["masked_lm_weights"],
        )
        labels = ops.reshape(y["next_sentence_labels"], (-1,))
        self.next_sentence_accuracy.update_state(labels, y_pred["nsp_logits"])
        # Metrics passed to compile(), keyed like the outputs.
        targets = {"mlm_logits": y["masked_lm_ids"], "nsp_logits": labels}
        weights = {
            "mlm_logits": y["masked_lm_weights"],
            "nsp_logits": ops.ones_like(labels, dtype="float32"),
        }
        return super().compute_metrics(x, targets, y_pred, sample_weight=weights)
