"""The canonical names a model gives its weights, for every checkpoint format.

A canonical name is google-research/bert's variable name without its `bert/`
scope (`encoder/layer_3/attention/self/query/kernel`, `cls/predictions/output_bias`),
the weight in Keras layout (kernels `[in, out]`). Each model declares its own
(`checkpoint_weights`): the readers and writers in `keras_bert_impl.convert` only
translate formats into and out of these names, knowing no model class.
"""


def dense(prefix, layer):
    return {f"{prefix}/kernel": layer.kernel, f"{prefix}/bias": layer.bias}


def layer_norm(prefix, layer):
    return {f"{prefix}/gamma": layer.gamma, f"{prefix}/beta": layer.beta}


def backbone_weights(backbone):
    """Canonical name → variable for a `BertBackbone`."""
    emb = backbone.embeddings
    names = {
        "embeddings/word_embeddings": emb.token_embedding.embeddings,
        "embeddings/position_embeddings": emb.position_embedding.embeddings,
        "embeddings/token_type_embeddings": emb.segment_embedding.embeddings,
        **layer_norm("embeddings/LayerNorm", emb.embeddings_layer_norm),
    }
    for i, block in enumerate(backbone.transformer_layers):
        p = f"encoder/layer_{i}"
        attention = block.self_attention
        names.update(dense(f"{p}/attention/self/query", attention.query))
        names.update(dense(f"{p}/attention/self/key", attention.key))
        names.update(dense(f"{p}/attention/self/value", attention.value))
        names.update(dense(f"{p}/attention/output/dense", attention.output_dense))
        names.update(
            layer_norm(f"{p}/attention/output/LayerNorm", block.attention_layer_norm)
        )
        names.update(dense(f"{p}/intermediate/dense", block.intermediate_dense))
        names.update(dense(f"{p}/output/dense", block.output_dense))
        names.update(layer_norm(f"{p}/output/LayerNorm", block.output_layer_norm))
    names.update(dense("pooler/dense", backbone.pooled_dense))
    return names
