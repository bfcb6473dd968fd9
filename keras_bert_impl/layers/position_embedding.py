"""Learned absolute position embeddings."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class PositionEmbedding(keras.layers.Layer):
    """A learned `[max_length, hidden_size]` table, sliced to the sequence length.

    Args:
        max_length: longest sequence the table covers.
        initializer: initializer of the table.

    Call args:
        inputs: a `[batch, seq_length, hidden_size]` tensor; only its shape is
            used.

    Returns:
        A `[1, seq_length, hidden_size]` tensor that broadcasts over the batch.
    """

    def __init__(self, max_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.max_length, input_shape[-1]),
            initializer=self.initializer,
        )

    def call(self, inputs):
        seq_length = ops.shape(inputs)[1]
        table = ops.convert_to_tensor(self.embeddings)
        positions = ops.slice(table, (0, 0), (seq_length, ops.shape(table)[1]))
        return ops.expand_dims(ops.cast(positions, self.compute_dtype), 0)

    def compute_output_shape(self, input_shape):
        return (1, input_shape[1], input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_length": self.max_length,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
