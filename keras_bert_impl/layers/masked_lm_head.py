"""The masked-LM head: transform, then decode with the tied word embeddings."""

import keras
from keras import ops

from keras_bert_impl.layers.activations import get_activation
from keras_bert_impl.layers.activations import layer_norm_dtype
from keras_bert_impl.layers.activations import truncated_normal


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class MaskedLMHead(keras.layers.Layer):
    """Predicts the original tokens at the masked positions only.

    dense + activation + LayerNorm, then logits = h · Eᵀ + b with E the
    token embedding table (tied, as in BERT) and b a per-token output bias.
    Gathering before the transform keeps the cost proportional to the number
    of predictions, not the sequence length.

    Args:
        token_embedding: the backbone's `keras.layers.Embedding`; its table is
            reused, not copied. A head rebuilt from its config alone gets an
            embedding of its own; a model that ties the two (as
            `BertPretrainer` does) passes the shared one in again when it is
            rebuilt, which is how the tie survives a `.keras` file.
        hidden_act: a `BertConfig.hidden_act` name.
        layer_norm_epsilon: LayerNorm epsilon.
        initializer_range: stddev of the truncated-normal initializer.

    Call args:
        sequence_output: `[batch, seq_length, hidden_size]`.
        mask_positions: int `[batch, num_predictions]` positions to predict.

    Returns:
        float32 logits `[batch, num_predictions, vocab_size]`.
    """

    def __init__(
        self,
        token_embedding,
        hidden_act="gelu",
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.token_embedding = token_embedding
        self.hidden_act = hidden_act
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.hidden_size = token_embedding.output_dim
        self.vocab_size = token_embedding.input_dim

        self.transform_dense = keras.layers.Dense(
            self.hidden_size,
            activation=get_activation(hidden_act),
            kernel_initializer=truncated_normal(initializer_range),
            dtype=self.dtype_policy,
            name="transform_dense",
        )
        self.transform_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon,
            dtype=layer_norm_dtype(self.dtype_policy),
            name="transform_layer_norm",
        )

    def build(self, sequence_output_shape=None, mask_positions_shape=None):
        hidden_shape = (None, None, self.hidden_size)
        self.transform_dense.build(hidden_shape)
        self.transform_layer_norm.build(hidden_shape)
        self.output_bias = self.add_weight(
            name="output_bias", shape=(self.vocab_size,), initializer="zeros"
        )
        self.built = True

    def call(self, sequence_output, mask_positions):
        positions = ops.cast(mask_positions, "int32")[:, :, None]
        x = ops.take_along_axis(sequence_output, positions, axis=1)
        x = self.transform_layer_norm(self.transform_dense(x))
        embeddings = ops.cast(self.token_embedding.embeddings, self.compute_dtype)
        logits = ops.matmul(ops.cast(x, self.compute_dtype), ops.transpose(embeddings))
        return ops.cast(logits, "float32") + ops.cast(self.output_bias, "float32")

    def compute_output_shape(self, sequence_output_shape, mask_positions_shape):
        return tuple(mask_positions_shape) + (self.vocab_size,)

    def get_config(self):
        # The embedding's config travels along so the head rebuilds on its
        # own; a model that ties it (BertPretrainer) passes its own instead.
        config = super().get_config()
        config.update(
            {
                "token_embedding": keras.layers.serialize(self.token_embedding),
                "hidden_act": self.hidden_act,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "initializer_range": self.initializer_range,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["token_embedding"] = keras.layers.deserialize(config["token_embedding"])
        return cls(**config)
