"""Structured pruning: whole attention heads and feed-forward neurons removed, the
weight matrices actually made smaller.

Importance follows Michel et al. 2019 ("Are Sixteen Heads Really Better than One?"):
a mask variable ξ multiplies each head's attention probabilities (each feed-forward
neuron's activation), all ξ = 1, and a head's importance is the expected absolute
gradient of the task loss with respect to its ξ over the data, normalised per layer
by the L2 norm of that layer's scores. The least important heads across all layers
are removed (every layer keeps at least one); feed-forward neurons are removed
uniformly, the same number in every layer (the least important of each layer), so the
result is an ordinary config with a smaller `intermediate_size`.

A pruned model records its removed heads in `BertConfig.pruned_heads` (original head
indices per layer, Hugging Face's convention), saves and loads as `.keras`, takes
`with_precision`, exports, and converts to Hugging Face like any other model.

    scores = head_importance(classifier, texts, labels, max_examples=2000)
    pruned = prune(classifier, texts, labels, head_fraction=0.5)
"""

import numpy as np

from keras_bert_impl.compression.importance import (
    check_float_model,
    check_importance_model,
    mask_gradients,
    normalized_per_layer,
)
from keras_bert_impl.models import BertBackbone


def _rebuilt(model, config):
    """A new model of the same class (same preprocessor, labels, dtype policy)
    whose backbone has `config`, built, with fresh weights."""
    values = model.get_config()
    if isinstance(model, BertBackbone):
        values["config"] = config.to_dict()
    else:
        backbone = dict(values["backbone"])
        backbone["config"] = dict(backbone["config"], config=config.to_dict())
        values["backbone"] = backbone
    copy = type(model).from_config(values)
    copy.build()
    return copy


def _backbone(model):
    return model if isinstance(model, BertBackbone) else model.backbone


def _copy_weights(source, target, replaced):
    """Copies `source`'s weights into `target`, except the variables in
    `replaced` ({id(target variable): new value})."""
    pairs = list(zip(source.weights, target.weights))
    assert len(source.weights) == len(target.weights)
    for old, new in pairs:
        if id(new) in replaced:
            new.assign(replaced[id(new)])
        else:
            new.assign(old)


def _head_columns(positions, head_size):
    return np.concatenate(
        [np.arange(p * head_size, (p + 1) * head_size) for p in positions]
    ).astype("int64")


def prune_heads(model, heads):
    """A copy of `model` without the given attention heads.

    Args:
        model: a float `BertBackbone` or task model (`BertClassifier`,
            `BertTokenClassifier`, `BertQuestionAnswerer`, `BertPretrainer`).
        heads: `{layer: [head, ...]}` with ORIGINAL head indices (as
            `BertConfig.pruned_heads` and Hugging Face's `prune_heads` take
            them); heads already pruned are ignored.

    Returns:
        A new model of the same class, with the same preprocessor, label names
        and head weights, whose query/key/value kernels and biases and attention
        output kernels are sliced to the remaining heads, and whose
        `config.pruned_heads` lists every removed head (the earlier ones too).
        `model` is unchanged.

    Raises:
        ValueError: an index out of range, a layer left without heads, or a
            quantized model.
    """
    check_float_model(model)
    config = model.config
    if not isinstance(heads, dict):
        raise ValueError(
            "heads must be a dict {layer: [original head index, ...]}, got "
            f"{type(heads).__name__}."
        )
    merged = {layer: set(h) for layer, h in config.pruned_heads.items()}
    for layer, removed in heads.items():
        key = int(layer) if isinstance(layer, str) and layer.isdigit() else layer
        merged.setdefault(key, set()).update(removed)
    new_config = config.replace(pruned_heads=merged)
    pruned = _rebuilt(model, new_config)
    replaced = {}
    pairs = zip(
        _backbone(model).transformer_layers, _backbone(pruned).transformer_layers
    )
    for i, (old_block, new_block) in enumerate(pairs):
        kept = new_config.remaining_heads(i)
        positions = [config.remaining_heads(i).index(h) for h in kept]
        columns = _head_columns(positions, config.head_size)
        old, new = old_block.self_attention, new_block.self_attention
        for name in ("query", "key", "value"):
            old_dense, new_dense = getattr(old, name), getattr(new, name)
            replaced[id(new_dense.kernel)] = np.take(
                np.asarray(old_dense.kernel), columns, axis=1
            )
            replaced[id(new_dense.bias)] = np.take(np.asarray(old_dense.bias), columns)
        replaced[id(new.output_dense.kernel)] = np.take(
            np.asarray(old.output_dense.kernel), columns, axis=0
        )
    _copy_weights(model, pruned, replaced)
    return pruned


def prune_ffn(model, keep):
    """A copy of `model` keeping only the given feed-forward neurons.

    Args:
        model: a float `BertBackbone` or task model.
        keep: one sequence of neuron indices (into the current
            `intermediate_size`) per layer, all of the same length, which
            becomes the new `intermediate_size`.

    Returns:
        A new model of the same class whose `intermediate_dense` kernels and
        biases keep those columns and whose FFN `output_dense` kernels keep
        those rows. `model` is unchanged.
    """
    check_float_model(model)
    config = model.config
    if not isinstance(keep, (list, tuple)) or len(keep) != config.num_layers:
        raise ValueError(
            f"keep must list the neurons kept in each of the {config.num_layers} "
            f"layers, got {keep!r:.80}."
        )
    keep = [np.unique(np.asarray(k, "int64")) for k in keep]
    sizes = {len(k) for k in keep}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(
            "keep must keep the same positive number of distinct neurons in every "
            f"layer (one intermediate_size); got {[len(k) for k in keep]}."
        )
    for i, k in enumerate(keep):
        if k.min() < 0 or k.max() >= config.intermediate_size:
            raise ValueError(
                f"keep[{i}] holds neuron indices outside [0, "
                f"{config.intermediate_size})."
            )
    pruned = _rebuilt(model, config.replace(intermediate_size=int(sizes.pop())))
    replaced = {}
    pairs = zip(
        _backbone(model).transformer_layers, _backbone(pruned).transformer_layers
    )
    for k, (old, new) in zip(keep, pairs):
        replaced[id(new.intermediate_dense.kernel)] = np.take(
            np.asarray(old.intermediate_dense.kernel), k, axis=1
        )
        replaced[id(new.intermediate_dense.bias)] = np.take(
            np.asarray(old.intermediate_dense.bias), k
        )
        replaced[id(new.output_dense.kernel)] = np.take(
            np.asarray(old.output_dense.kernel), k, axis=0
        )
    _copy_weights(model, pruned, replaced)
    return pruned


def _check_fraction(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}.")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}.")


def least_important_heads(config, scores, fraction):
    """`{layer: [original head index, ...]}`: the `fraction` of the current heads
    with the lowest scores across all layers, every layer keeping one."""
    total = sum(config.layer_num_heads(i) for i in range(config.num_layers))
    count = int(round(fraction * total))
    ranked = sorted(
        (float(score), layer, position)
        for layer, layer_scores in enumerate(scores)
        for position, score in enumerate(layer_scores)
    )
    left = [config.layer_num_heads(i) for i in range(config.num_layers)]
    chosen = {}
    for _, layer, position in ranked:
        if count == 0:
            break
        if left[layer] > 1:
            left[layer] -= 1
            count -= 1
            chosen.setdefault(layer, []).append(config.remaining_heads(layer)[position])
    return {layer: sorted(heads) for layer, heads in sorted(chosen.items())}


def most_important_neurons(config, scores, fraction):
    """Per layer, the indices of the `1 - fraction` most important neurons
    (the same number in every layer), in index order."""
    size = config.intermediate_size
    kept = max(1, size - int(round(fraction * size)))
    return [np.sort(np.argsort(-np.asarray(s), kind="stable")[:kept]) for s in scores]


def prune(
    model,
    x,
    y=None,
    *,
    head_fraction=0.5,
    ffn_fraction=0.0,
    batch_size=32,
    max_examples=None,
):
    """Scores heads and neurons on `x`, then removes the least important.

    Both importances are computed in one pass over the data on the unpruned
    model (`head_importance`, `ffn_importance`).

    Args:
        model: a float `BertClassifier` or `BertTokenClassifier`.
        x, y: labelled data, as `head_importance` takes.
        head_fraction: fraction of the model's current heads removed, the
            globally least important after per-layer normalisation; every
            layer keeps at least one head.
        ffn_fraction: fraction of the feed-forward neurons removed from every
            layer (the least important of each layer).
        batch_size: examples per gradient step.
        max_examples: score on at most this many examples.

    Returns:
        The pruned model (a new one; `model` is unchanged). Its
        `config.pruned_heads` names the removed heads.
    """
    _check_fraction("head_fraction", head_fraction)
    _check_fraction("ffn_fraction", ffn_fraction)
    check_importance_model(model)
    if not head_fraction and not ffn_fraction:
        return prune_heads(model, {})
    head_scores, ffn_scores = mask_gradients(
        model,
        x,
        y,
        batch_size,
        max_examples,
        heads=bool(head_fraction),
        ffn=bool(ffn_fraction),
    )
    pruned = model
    if head_fraction:
        heads = least_important_heads(
            model.config, normalized_per_layer(head_scores), head_fraction
        )
        pruned = prune_heads(model, heads)
    if ffn_fraction:
        keep = most_important_neurons(
            model.config, normalized_per_layer(ffn_scores), ffn_fraction
        )
        pruned = prune_ffn(pruned, keep)
    return pruned
