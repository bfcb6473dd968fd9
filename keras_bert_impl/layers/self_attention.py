"""Multi-head self-attention with a key padding mask."""

import math

import keras
from keras import ops

from keras_bert_impl.layers.activations import truncated_normal

# Added to the scores of padded keys before the softmax. Large enough that
# exp() underflows to exactly 0 in float32, small enough to stay finite.
_MASKED_SCORE = -1e9


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Scaled dot-product self-attention over `num_heads` heads.

    The query is scaled by 1/sqrt(head_size) before QKᵀ, so the float16
    product is already the (small) score and cannot overflow where the
    unscaled one would; the softmax then runs in float32 whatever the dtype
    policy.

    Args:
        num_heads: number of heads.
        head_size: width of each head; the attention width (query, key,
            value) is their product.
        dropout: dropout rate on the attention probabilities.
        initializer_range: stddev of the truncated-normal initializer.
        output_size: width of the output projection; None: the attention
            width. A model with pruned heads keeps its residual width while
            its attention width shrinks, so the two differ.

    Call args:
        inputs: `[batch, seq_length, hidden_size]`.
        padding_mask: `[batch, seq_length]`, true/1 for real tokens. Padded
            keys receive no attention; padded queries still produce (unused)
            outputs.
        training: whether dropout is active.
        head_mask: optional float `[num_heads]` multiplying each head's
            attention probabilities (after dropout, as Hugging Face's
            `head_mask`): 0 silences a head, and the gradient of a loss with
            respect to it measures the head's importance.
    """

    def __init__(
        self,
        num_heads,
        head_size,
        dropout=0.1,
        initializer_range=0.02,
        output_size=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.head_size = head_size
        self.dropout = dropout
        self.initializer_range = initializer_range
        self.output_size = output_size
        attention_size = num_heads * head_size

        def dense(name, width):
            return keras.layers.Dense(
                width,
                kernel_initializer=truncated_normal(initializer_range),
                dtype=self.dtype_policy,
                name=name,
            )

        self.query = dense("query", attention_size)
        self.key = dense("key", attention_size)
        self.value = dense("value", attention_size)
        self.output_dense = dense("output_dense", output_size or attention_size)
        self.probs_dropout = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="probs_dropout"
        )

    def build(self, inputs_shape, padding_mask_shape=None):
        for layer in (self.query, self.key, self.value):
            layer.build(inputs_shape)
        self.output_dense.build(
            tuple(inputs_shape[:-1]) + (self.num_heads * self.head_size,)
        )
        self.built = True

    def call(self, inputs, padding_mask=None, training=None, head_mask=None):
        # The projections run on [batch * length, width] rows: a 2-D Dense is one
        # matmul + bias that TensorFlow's graph optimizer fuses (a 3-D one goes through
        # reshapes that block the fusion and add shape plumbing to every request).
        length = ops.shape(inputs)[1]
        rows = ops.reshape(inputs, (-1, inputs.shape[-1]))
        heads = (-1, length, self.num_heads, self.head_size)
        # Scale before the product: under mixed_float16 an unscaled QKᵀ
        # overflows to inf long before the scaled scores get large.
        query = ops.reshape(self.query(rows), heads)
        query = query * ops.cast(1.0 / math.sqrt(self.head_size), query.dtype)
        query = ops.transpose(query, (0, 2, 1, 3))  # [batch, heads, query, size]
        key = ops.transpose(ops.reshape(self.key(rows), heads), (0, 2, 3, 1))
        value = ops.transpose(ops.reshape(self.value(rows), heads), (0, 2, 1, 3))

        # [batch, heads, query, key]
        scores = ops.cast(ops.matmul(query, key), "float32")
        if padding_mask is not None:
            # Added rather than selected: one add of a [batch, 1, 1, key] row. exp()
            # of a score near _MASKED_SCORE is exactly 0 in float32 either way.
            key_bias = (1.0 - ops.cast(padding_mask, "float32")) * _MASKED_SCORE
            scores = scores + key_bias[:, None, None, :]
        probs = ops.softmax(scores, axis=-1)
        probs = self.probs_dropout(
            ops.cast(probs, self.compute_dtype), training=training
        )
        if head_mask is not None:
            probs = probs * ops.cast(head_mask, probs.dtype)[None, :, None, None]

        context = ops.transpose(ops.matmul(probs, value), (0, 2, 1, 3))
        context = ops.reshape(context, (-1, self.num_heads * self.head_size))
        output = self.output_dense(context)
        return ops.reshape(output, (-1, length, output.shape[-1]))

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        width = self.output_size or self.num_heads * self.head_size
        return tuple(inputs_shape[:-1]) + (width,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "head_size": self.head_size,
                "dropout": self.dropout,
                "initializer_range": self.initializer_range,
                "output_size": self.output_size,
            }
        )
        return config
