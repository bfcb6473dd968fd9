"""BERT's input embeddings: token + position + segment, then LayerNorm and dropout."""

import keras

from keras_bert_impl.layers.activations import layer_norm_dtype
from keras_bert_impl.layers.activations import truncated_normal
from keras_bert_impl.layers.position_embedding import PositionEmbedding


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertEmbeddings(keras.layers.Layer):
    """Sums token, position and segment embeddings, normalises, drops out.

    Sub-layer names (`token_embedding`, `position_embedding`,
    `segment_embedding`, `embeddings_layer_norm`) are the checkpoint-mapping
    contract of `keras_bert_impl.convert`.

    Args:
        vocab_size: number of token ids.
        hidden_size: embedding width.
        max_position_embeddings: longest sequence accepted.
        type_vocab_size: number of segment ids.
        dropout: dropout rate applied after the LayerNorm.
        layer_norm_epsilon: LayerNorm epsilon.
        initializer_range: stddev of the truncated-normal initializer.

    Call args:
        token_ids: int tensor `[batch, seq_length]`.
        segment_ids: int tensor `[batch, seq_length]`.
        training: whether dropout is active.
    """

    def __init__(
        self,
        vocab_size,
        hidden_size,
        max_position_embeddings,
        type_vocab_size,
        dropout=0.1,
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range

        self.token_embedding = keras.layers.Embedding(
            vocab_size,
            hidden_size,
            embeddings_initializer=truncated_normal(initializer_range),
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.position_embedding = PositionEmbedding(
            max_position_embeddings,
            initializer=truncated_normal(initializer_range),
            dtype=self.dtype_policy,
            name="position_embedding",
        )
        self.segment_embedding = keras.layers.Embedding(
            type_vocab_size,
            hidden_size,
            embeddings_initializer=truncated_normal(initializer_range),
            dtype=self.dtype_policy,
            name="segment_embedding",
        )
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon,
            dtype=layer_norm_dtype(self.dtype_policy),
            name="embeddings_layer_norm",
        )
        self.embeddings_dropout = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="embeddings_dropout"
        )

    def build(self, token_ids_shape=None, segment_ids_shape=None):
        hidden_shape = (None, None, self.hidden_size)
        self.token_embedding.build((None, None))
        self.position_embedding.build(hidden_shape)
        self.segment_embedding.build((None, None))
        self.embeddings_layer_norm.build(hidden_shape)
        self.built = True

    def call(self, token_ids, segment_ids, training=None):
        x = self.token_embedding(token_ids)
        x = x + self.position_embedding(x)
        x = x + self.segment_embedding(segment_ids)
        x = self.embeddings_layer_norm(x)
        return self.embeddings_dropout(x, training=training)

    def compute_output_shape(self, token_ids_shape, segment_ids_shape=None):
        return tuple(token_ids_shape) + (self.hidden_size,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "hidden_size": self.hidden_size,
                "max_position_embeddings": self.max_position_embeddings,
                "type_vocab_size": self.type_vocab_size,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "initializer_range": self.initializer_range,
            }
        )
        return config
