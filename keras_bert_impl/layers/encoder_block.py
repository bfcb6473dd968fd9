"""One post-LayerNorm transformer encoder block, as in BERT."""

import keras
from keras import ops

from keras_bert_impl.layers.activations import get_activation
from keras_bert_impl.layers.activations import layer_norm_dtype
from keras_bert_impl.layers.activations import truncated_normal
from keras_bert_impl.layers.self_attention import MultiHeadSelfAttention


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class TransformerEncoderBlock(keras.layers.Layer):
    """attention → dropout → residual → LN → FFN → dropout → residual → LN.

    Args:
        num_heads: attention heads.
        hidden_size: width of the residual stream.
        intermediate_size: width of the feed-forward inner layer.
        hidden_act: a `BertConfig.hidden_act` name for the feed-forward layer.
        hidden_dropout: dropout on the attention and feed-forward outputs.
        attention_dropout: dropout on the attention probabilities.
        layer_norm_epsilon: LayerNorm epsilon.
        initializer_range: stddev of the truncated-normal initializer.
        head_size: width of each attention head; None: `hidden_size //
            num_heads`. A layer with pruned heads has fewer heads of the
            original size, so `num_heads * head_size < hidden_size`.

    Call args:
        inputs: `[batch, seq_length, hidden_size]`.
        padding_mask: `[batch, seq_length]`, true/1 for real tokens.
        training: whether dropout is active.
        head_mask: optional float `[num_heads]`, multiplies each head's
            attention probabilities (see `MultiHeadSelfAttention`).
        ffn_mask: optional float `[intermediate_size]`, multiplies each
            feed-forward neuron's activation (0 silences the neuron).
    """

    def __init__(
        self,
        num_heads,
        hidden_size,
        intermediate_size,
        hidden_act="gelu",
        hidden_dropout=0.1,
        attention_dropout=0.1,
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        head_size=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if head_size is None:
            head_size = hidden_size // num_heads
        self.head_size = head_size
        self.num_heads = num_heads
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range

        self.self_attention = MultiHeadSelfAttention(
            num_heads,
            head_size,
            dropout=attention_dropout,
            initializer_range=initializer_range,
            output_size=hidden_size,
            dtype=self.dtype_policy,
            name="self_attention",
        )
        self.attention_dropout_layer = keras.layers.Dropout(
            hidden_dropout, dtype=self.dtype_policy, name="attention_output_dropout"
        )
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon,
            dtype=layer_norm_dtype(self.dtype_policy),
            name="attention_layer_norm",
        )
        self.intermediate_dense = keras.layers.Dense(
            intermediate_size,
            activation=get_activation(hidden_act),
            kernel_initializer=truncated_normal(initializer_range),
            dtype=self.dtype_policy,
            name="intermediate_dense",
        )
        self.output_dense = keras.layers.Dense(
            hidden_size,
            kernel_initializer=truncated_normal(initializer_range),
            dtype=self.dtype_policy,
            name="output_dense",
        )
        self.output_dropout = keras.layers.Dropout(
            hidden_dropout, dtype=self.dtype_policy, name="output_dropout"
        )
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon,
            dtype=layer_norm_dtype(self.dtype_policy),
            name="output_layer_norm",
        )

    def build(self, inputs_shape, padding_mask_shape=None):
        hidden_shape = tuple(inputs_shape[:-1]) + (self.hidden_size,)
        self.self_attention.build(hidden_shape)
        self.attention_layer_norm.build(hidden_shape)
        self.intermediate_dense.build(hidden_shape)
        self.output_dense.build(tuple(inputs_shape[:-1]) + (self.intermediate_size,))
        self.output_layer_norm.build(hidden_shape)
        self.built = True

    def call(
        self, inputs, padding_mask=None, training=None, head_mask=None, ffn_mask=None
    ):
        attention = self.self_attention(
            inputs, padding_mask, training=training, head_mask=head_mask
        )
        attention = self.attention_dropout_layer(attention, training=training)
        x = self.attention_layer_norm(ops.add(inputs, attention))

        # The feed-forward layers run on [batch * seq_length, hidden] rows.
        # On 2-D inputs TensorFlow's graph optimizer fuses matmul, bias and
        # activation into one oneDNN kernel; a 3-D Dense matmuls through a
        # reshape (tensordot) that breaks that fusion.
        rows = ops.reshape(x, (-1, self.hidden_size))
        intermediate = self.intermediate_dense(rows)
        if ffn_mask is not None:
            intermediate = intermediate * ops.cast(ffn_mask, intermediate.dtype)
        ffn = self.output_dense(intermediate)
        ffn = ops.reshape(ffn, ops.shape(x))
        ffn = self.output_dropout(ffn, training=training)
        return self.output_layer_norm(ops.add(x, ffn))

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "hidden_size": self.hidden_size,
                "intermediate_size": self.intermediate_size,
                "hidden_act": self.hidden_act,
                "hidden_dropout": self.hidden_dropout,
                "attention_dropout": self.attention_dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "initializer_range": self.initializer_range,
                "head_size": self.head_size,
            }
        )
        return config
