"""Import a keras-hub `BertBackbone` (weights and config)."""

import numpy as np

from keras_bert_impl.config import BertConfig
from keras_bert_impl.convert.weight_map import load_canonical


def _config_from(backbone):
    cfg = backbone.get_config()
    return BertConfig(
        vocab_size=cfg["vocabulary_size"],
        hidden_size=cfg["hidden_dim"],
        num_layers=cfg["num_layers"],
        num_heads=cfg["num_heads"],
        intermediate_size=cfg["intermediate_dim"],
        # keras-hub's encoder uses the tanh approximation of GELU.
        hidden_act="gelu_approximate",
        hidden_dropout=cfg["dropout"],
        attention_dropout=cfg["dropout"],
        max_position_embeddings=cfg["max_sequence_length"],
        type_vocab_size=cfg["num_segments"],
    )


def _canonical_tensors(backbone):
    def value(variable):
        return np.asarray(variable.numpy(), dtype=np.float32)

    def layer_norm(prefix, layer):
        return {
            f"{prefix}/gamma": value(layer.gamma),
            f"{prefix}/beta": value(layer.beta),
        }

    def dense(prefix, layer):
        return {
            f"{prefix}/kernel": value(layer.kernel),
            f"{prefix}/bias": value(layer.bias),
        }

    def einsum(prefix, layer, hidden):
        # keras-hub's attention kernels are per head: fold them back to 2-D.
        kernel, bias = value(layer.kernel), value(layer.bias)
        if kernel.shape[0] == hidden:  # query/key/value: [hidden, heads, head_size]
            kernel = kernel.reshape(hidden, -1)
        else:  # output: [heads, head_size, hidden]
            kernel = kernel.reshape(-1, hidden)
        return {f"{prefix}/kernel": kernel, f"{prefix}/bias": bias.reshape(-1)}

    hidden = backbone.hidden_dim
    tensors = {
        "embeddings/word_embeddings": value(backbone.token_embedding.embeddings),
        "embeddings/position_embeddings": value(
            backbone.get_layer("position_embedding").position_embeddings
        ),
        "embeddings/token_type_embeddings": value(
            backbone.get_layer("segment_embedding").embeddings
        ),
        **layer_norm(
            "embeddings/LayerNorm", backbone.get_layer("embeddings_layer_norm")
        ),
        **dense("pooler/dense", backbone.get_layer("pooled_dense")),
    }
    for i in range(backbone.num_layers):
        block = backbone.get_layer(f"transformer_layer_{i}")
        attention = block._self_attention_layer
        p = f"encoder/layer_{i}"
        tensors.update(
            einsum(f"{p}/attention/self/query", attention._query_dense, hidden)
        )
        tensors.update(einsum(f"{p}/attention/self/key", attention._key_dense, hidden))
        tensors.update(
            einsum(f"{p}/attention/self/value", attention._value_dense, hidden)
        )
        tensors.update(
            einsum(f"{p}/attention/output/dense", attention._output_dense, hidden)
        )
        tensors.update(
            layer_norm(
                f"{p}/attention/output/LayerNorm", block._self_attention_layer_norm
            )
        )
        tensors.update(
            dense(f"{p}/intermediate/dense", block._feedforward_intermediate_dense)
        )
        tensors.update(dense(f"{p}/output/dense", block._feedforward_output_dense))
        tensors.update(
            layer_norm(f"{p}/output/LayerNorm", block._feedforward_layer_norm)
        )
    return tensors


def from_keras_hub(backbone, model_cls, **kwargs):
    """Builds `model_cls` with the weights of a `keras_hub.models.BertBackbone`.

    The config carries `hidden_act="gelu_approximate"`, keras-hub's GELU,
    so outputs match the keras-hub model.
    """
    if type(backbone).__name__ != "BertBackbone" or not hasattr(backbone, "hidden_dim"):
        raise ValueError(
            "from_keras_hub takes a keras_hub.models.BertBackbone, got "
            f"{type(backbone).__module__}.{type(backbone).__name__}."
        )
    model = model_cls(_config_from(backbone), **kwargs)
    load_canonical(model, _canonical_tensors(backbone), f"keras-hub {backbone.name}")
    return model
