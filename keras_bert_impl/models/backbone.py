"""`BertBackbone`: embeddings → N encoder blocks → pooled [CLS]."""

import keras
from keras import ops

from keras_bert_impl.config import BertConfig
from keras_bert_impl.layers import BertEmbeddings
from keras_bert_impl.layers import TransformerEncoderBlock
from keras_bert_impl.layers.activations import truncated_normal
from keras_bert_impl.models import checkpoint_names
from keras_bert_impl.models import quantization
from keras_bert_impl.models.inputs import validate_inputs
from keras_bert_impl.models.summary import InformativeSummary


def as_config(config):
    """Accepts a `BertConfig`, a preset name or a `to_dict()` dict."""
    if isinstance(config, BertConfig):
        return config
    if isinstance(config, str):
        return BertConfig.preset(config)
    if isinstance(config, dict):
        return BertConfig.from_dict(config)
    raise ValueError(
        "config must be a BertConfig, a preset name or a dict of BertConfig "
        f"fields; got {type(config).__name__}."
    )


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class BertBackbone(InformativeSummary, keras.Model):
    """The BERT encoder.

    Args:
        config: a `BertConfig`, a preset name (`"tiny"` … `"large"`) or a dict.
        output_hidden_states: also return `hidden_states`, the embedding
            output followed by every block's output (`num_layers + 1` tensors).
        **kwargs: `keras.Model` arguments such as `name` and `dtype`
            (e.g. `"mixed_bfloat16"`).

    Call args:
        inputs: dict of int `[batch, seq_length]` tensors: `token_ids`, and
            optionally `segment_ids` (default zeros) and `padding_mask`
            (default `token_ids != 0`).
        training: whether dropout is active.
        head_mask: optional list of `num_layers` float vectors (or None),
            layer i's of length `config.layer_num_heads(i)`, multiplying the
            heads' attention probabilities; gradients with respect to them
            measure head importance
            (`keras_bert_impl.compression.head_importance`).
        ffn_mask: optional list of `num_layers` float `[intermediate_size]`
            vectors (or None) multiplying the feed-forward activations.

    Returns:
        dict with `sequence_output` `[batch, seq_length, hidden_size]` and
        `pooled_output` `[batch, hidden_size]` (tanh dense on [CLS]).

    Example:
    ```python
    backbone = BertBackbone("tiny")
    out = backbone({"token_ids": np.array([[101, 7592, 102, 0]])})
    ```
    """

    # What a saved backbone serves as (a `kbi-export --task`; see BertTask).
    serving_task = "embeddings"
    # transformers' class for this model (`config.json`'s `architectures`).
    huggingface_architecture = "BertModel"

    def __init__(self, config="base", output_hidden_states=False, **kwargs):
        super().__init__(**kwargs)
        self.config = as_config(config)
        self.output_hidden_states = output_hidden_states
        cfg = self.config
        self.embeddings = BertEmbeddings(
            vocab_size=cfg.vocab_size,
            hidden_size=cfg.hidden_size,
            max_position_embeddings=cfg.max_position_embeddings,
            type_vocab_size=cfg.type_vocab_size,
            dropout=cfg.hidden_dropout,
            layer_norm_epsilon=cfg.layer_norm_epsilon,
            initializer_range=cfg.initializer_range,
            dtype=self.dtype_policy,
            name="embeddings",
        )
        self.transformer_layers = [
            TransformerEncoderBlock(
                # Pruned layers keep fewer heads of the original size.
                num_heads=cfg.layer_num_heads(i),
                head_size=cfg.head_size,
                hidden_size=cfg.hidden_size,
                intermediate_size=cfg.intermediate_size,
                hidden_act=cfg.hidden_act,
                hidden_dropout=cfg.hidden_dropout,
                attention_dropout=cfg.attention_dropout,
                layer_norm_epsilon=cfg.layer_norm_epsilon,
                initializer_range=cfg.initializer_range,
                dtype=self.dtype_policy,
                name=f"transformer_layer_{i}",
            )
            for i in range(cfg.num_layers)
        ]
        self.pooled_dense = keras.layers.Dense(
            cfg.hidden_size,
            activation="tanh",
            kernel_initializer=truncated_normal(cfg.initializer_range),
            dtype=self.dtype_policy,
            name="pooled_dense",
        )

    def checkpoint_weights(self):
        """Canonical name → variable (see `checkpoint_names`), every weight."""
        return checkpoint_names.backbone_weights(self)

    def head_checkpoint_weights(self):
        """The weights of a task head: a backbone has none."""
        return {}

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Builds the backbone from a preset name (random weights), a Hugging
        Face or Google TF1 checkpoint directory, or a `.keras` file (a saved
        backbone, or a task model whose backbone is taken).

        Args:
            preset: see above.
            **kwargs: `BertBackbone` arguments (`dtype`, `output_hidden_states`).
        """
        from keras_bert_impl.models import preset_loading

        return preset_loading.load(cls, preset, **kwargs)

    @property
    def token_embedding(self):
        return self.embeddings.token_embedding

    def build(self, input_shape=None):
        # Every weight's shape follows from the config, so the input shape is
        # irrelevant: building eagerly lets weights load before any call.
        if self.built:
            return
        hidden_shape = (None, None, self.config.hidden_size)
        self.embeddings.build((None, None), (None, None))
        for layer in self.transformer_layers:
            layer.build(hidden_shape)
        self.pooled_dense.build((None, self.config.hidden_size))
        self.built = True

    def call(self, inputs, training=None, head_mask=None, ffn_mask=None):
        validate_inputs(inputs, self.config)
        head_mask = self._per_layer("head_mask", head_mask)
        ffn_mask = self._per_layer("ffn_mask", ffn_mask)
        token_ids = inputs["token_ids"]
        segment_ids = inputs.get("segment_ids")
        if segment_ids is None:
            segment_ids = ops.zeros_like(token_ids)
        padding_mask = inputs.get("padding_mask")
        if padding_mask is None:
            padding_mask = ops.not_equal(token_ids, 0)

        x = self.embeddings(token_ids, segment_ids, training=training)
        hidden_states = [x]
        for i, layer in enumerate(self.transformer_layers):
            x = layer(
                x,
                padding_mask,
                training=training,
                head_mask=head_mask[i],
                ffn_mask=ffn_mask[i],
            )
            hidden_states.append(x)
        outputs = {
            "sequence_output": x,
            "pooled_output": self.pooled_dense(x[:, 0, :]),
        }
        if self.output_hidden_states:
            outputs["hidden_states"] = hidden_states
        return outputs

    def _per_layer(self, name, masks):
        """`masks` as one entry per layer (all None when not given)."""
        num_layers = self.config.num_layers
        if masks is None:
            return [None] * num_layers
        if not isinstance(masks, (list, tuple)) or len(masks) != num_layers:
            raise ValueError(
                f"{name} must be a list of {num_layers} per-layer vectors (or "
                f"None entries), got {type(masks).__name__}"
                + (
                    f" of length {len(masks)}"
                    if isinstance(masks, (list, tuple))
                    else ""
                )
                + "."
            )
        return list(masks)

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "config": self.config.to_dict(),
            "output_hidden_states": self.output_hidden_states,
        }
        if self.built:
            quantized = quantization.quantized_layers(self)
            if quantized:
                config[quantization.CONFIG_KEY] = quantized
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        quantized = config.pop(quantization.CONFIG_KEY, None)
        backbone = cls(**config)
        quantization.requantize(backbone, quantized)
        return backbone
