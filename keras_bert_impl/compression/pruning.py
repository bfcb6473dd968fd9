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

import weakref

import keras
import numpy as np

from keras_bert_impl.constants import IGNORE_LABEL
from keras_bert_impl.models import BertBackbone
from keras_bert_impl.models import BertClassifier
from keras_bert_impl.models import BertTokenClassifier
from keras_bert_impl.models import text_inputs
from keras_bert_impl.models.task import ACCEPTED_INPUTS

# The tasks whose loss the importance scores differentiate.
IMPORTANCE_TASKS = (BertClassifier, BertTokenClassifier)


# --- importance --------------------------------------------------------------


def _check_importance_model(model):
    if not isinstance(model, IMPORTANCE_TASKS):
        raise ValueError(
            "Importance scores need a task loss; supported models are "
            f"{', '.join(c.__name__ for c in IMPORTANCE_TASKS)}, got "
            f"{type(model).__name__}."
        )
    _check_float(model)


def _check_float(model):
    model.build()
    if any(layer.quantization_mode for layer in model._flatten_layers()):
        raise ValueError(
            f"{type(model).__name__} {model.name!r} is int8-quantized; prune the "
            "float model, then apply with_precision."
        )


def _task_loss(model):
    """The loss `model.compile()` defaults to: hard-label cross-entropy
    (mean squared error for a regression classifier)."""
    if isinstance(model, BertClassifier) and model.num_classes == 1:
        return keras.losses.MeanSquaredError()
    if isinstance(model, BertTokenClassifier):
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=IGNORE_LABEL
        )
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _labelled_batches(model, x, y, batch_size):
    """(inputs, labels, sample_weight) batches of text or token dicts."""
    if text_inputs.is_text(x):
        if y is None and not text_inputs.is_dataset(x):
            raise ValueError("Importance scores need labels: pass y.")
        batches = model._text_dataset(x, y, batch_size=batch_size)
    elif text_inputs.is_dataset(x):
        batches = x
    elif isinstance(x, dict):
        if y is None:
            raise ValueError("Importance scores need labels: pass y.")
        size = len(x["token_ids"])
        y = np.asarray(model.label_indices(y) if hasattr(model, "label_indices") else y)
        batches = (
            (
                {k: np.asarray(v)[i : i + batch_size] for k, v in x.items()},
                y[i : i + batch_size],
            )
            for i in range(0, size, batch_size)
        )
    else:
        raise TypeError(
            f"Importance scores take {ACCEPTED_INPUTS}, with labels; got "
            f"{text_inputs.describe(x)}."
        )
    for element in batches:
        inputs, labels, weights = keras.utils.unpack_x_y_sample_weight(element)
        if labels is None:
            raise ValueError("Importance scores need labels; the dataset has none.")
        yield inputs, labels, weights


def _masked_loss(model, loss, inputs, labels, weights, masks):
    features = model.backbone(
        inputs, training=False, head_mask=masks.get("head"), ffn_mask=masks.get("ffn")
    )[model.head_input]
    # The task's output dropout is the identity at inference.
    logits = model.head(features)
    return loss(labels, logits, sample_weight=weights)


# Model → its traced gradient function: a second scoring of the same model (e.g.
# `prune` after `head_importance`) reuses the traced graph.
_GRADIENT_FUNCTIONS = weakref.WeakKeyDictionary()


def _gradient_function(model):
    """(inputs, labels, weights, {"head"/"ffn": per-layer masks}) → the
    gradients of the loss for those masks, on the running Keras backend."""
    if model not in _GRADIENT_FUNCTIONS:
        _GRADIENT_FUNCTIONS[model] = _new_gradient_function(model, _task_loss(model))
    return _GRADIENT_FUNCTIONS[model]


def _new_gradient_function(model, loss):
    # A weak reference: the cache must not keep its own key alive.
    model = weakref.ref(model)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def gradients(inputs, labels, weights, masks):
            with tf.GradientTape() as tape:
                tape.watch(masks)
                value = _masked_loss(model(), loss, inputs, labels, weights, masks)
            return tape.gradient(value, masks)

        return gradients
    if backend == "jax":
        return _jax_gradient_function(model, loss)
    raise ValueError(
        f"Importance scores need the tensorflow or jax backend, not {backend!r}."
    )


def _jax_gradient_function(model, loss):
    """The gradient step compiled with `jax.jit`, the weights passed in (as
    `stateless_call` takes them) rather than baked into the program."""
    import jax

    @jax.jit
    def step(masks, weights_of, inputs, labels, weights):
        task = model()

        def loss_of(m):
            out, _ = task.backbone.stateless_call(
                *weights_of["backbone"],
                inputs,
                training=False,
                head_mask=m.get("head"),
                ffn_mask=m.get("ffn"),
            )
            logits, _ = task.head.stateless_call(
                *weights_of["head"], out[task.head_input]
            )
            return loss(labels, logits, sample_weight=weights)

        return jax.grad(loss_of)(masks)

    def gradients(inputs, labels, weights, masks):
        task = model()
        weights_of = {
            name: (
                [v.value for v in layer.trainable_variables],
                [v.value for v in layer.non_trainable_variables],
            )
            for name, layer in (("backbone", task.backbone), ("head", task.head))
        }
        return step(masks, weights_of, inputs, labels, weights)

    return gradients


def _take(tree, count):
    return keras.tree.map_structure(lambda t: t[:count], tree)


def mask_gradients(model, x, y, batch_size=32, max_examples=None, heads=True, ffn=True):
    """Expected |∂L/∂ξ| for the head and feed-forward masks, unnormalised.

    The loss L is the task's mean loss over a batch; each batch's absolute
    gradient counts with its number of examples (Michel et al.'s estimator).

    Returns:
        (per-layer head arrays or None, per-layer neuron arrays or None),
        float64 numpy, each layer's array over its current heads / neurons.
    """
    _check_importance_model(model)
    config = model.config
    num_layers = config.num_layers
    masks = {}
    if heads:
        masks["head"] = [
            np.ones(config.layer_num_heads(i), "float32") for i in range(num_layers)
        ]
    if ffn:
        masks["ffn"] = [
            np.ones(config.intermediate_size, "float32") for _ in range(num_layers)
        ]
    if keras.backend.backend() == "tensorflow":
        masks = keras.tree.map_structure(keras.ops.convert_to_tensor, masks)
    gradients = _gradient_function(model)
    totals = keras.tree.map_structure(lambda m: np.zeros(m.shape, "float64"), masks)
    seen = 0
    for inputs, labels, weights in _labelled_batches(model, x, y, batch_size):
        count = int(keras.ops.shape(labels)[0])
        if max_examples is not None:
            count = min(count, max_examples - seen)
            if count <= 0:
                break
            inputs, labels = _take((inputs, labels), count)
            weights = None if weights is None else _take(weights, count)
        grads = gradients(inputs, labels, weights, masks)
        totals = keras.tree.map_structure(
            lambda total, g, count=count: (
                total + count * np.abs(np.asarray(g, "float64"))
            ),
            totals,
            grads,
        )
        seen += count
    if not seen:
        raise ValueError("Importance scores need at least one labelled example.")
    return tuple(
        [t / seen for t in totals[key]] if key in totals else None
        for key in ("head", "ffn")
    )


def _normalized(scores):
    # Michel et al. normalise each layer's scores by their L2 norm.
    return [s / (np.linalg.norm(s) + 1e-20) for s in scores]


def head_importance(model, x, y=None, batch_size=32, max_examples=None):
    """Importance of every attention head (Michel et al. 2019).

    The expected absolute gradient of the task loss (hard labels, dropout off)
    with respect to a mask multiplying each head's attention probabilities, all
    masks at 1, over `x`; each layer's scores divided by their L2 norm.

    Args:
        model: a float `BertClassifier` or `BertTokenClassifier`.
        x: text (what the model's `fit` takes with its preprocessor: texts, text
            pairs, word lists), token dicts of numpy arrays, or a
            `tf.data.Dataset` of (inputs, labels) batches.
        y: labels (indices or label names); None when `x` is a dataset.
        batch_size: examples per gradient step.
        max_examples: use at most this many examples.

    Returns:
        A list of per-layer float64 numpy arrays, layer i's of length
        `model.config.layer_num_heads(i)`, in the order of the layer's
        remaining heads (`model.config.remaining_heads(i)`).
    """
    scores, _ = mask_gradients(model, x, y, batch_size, max_examples, ffn=False)
    return _normalized(scores)


def ffn_importance(model, x, y=None, batch_size=32, max_examples=None):
    """Importance of every feed-forward neuron.

    The same estimator as `head_importance`, with the mask multiplying each
    neuron's activation (the output of `intermediate_dense`): the expected
    absolute gradient of the loss with respect to that per-neuron mask, i.e.
    |Σ over tokens of activation × ∂L/∂activation| per batch; each layer's
    scores divided by their L2 norm.

    Args: as `head_importance`.

    Returns:
        A list of per-layer float64 numpy arrays of length `intermediate_size`.
    """
    _, scores = mask_gradients(model, x, y, batch_size, max_examples, heads=False)
    return _normalized(scores)


# --- pruning -------------------------------------------------------------------


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
    _check_float(model)
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
    _check_float(model)
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
    _check_importance_model(model)
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
            model.config, _normalized(head_scores), head_fraction
        )
        pruned = prune_heads(model, heads)
    if ffn_fraction:
        keep = most_important_neurons(
            model.config, _normalized(ffn_scores), ffn_fraction
        )
        pruned = prune_ffn(pruned, keep)
    return pruned
