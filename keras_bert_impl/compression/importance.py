"""How much each attention head and feed-forward neuron matters to a task model,
for structured pruning (`compression.pruning`).

Michel et al. 2019 ("Are Sixteen Heads Really Better than One?"): a mask
variable ξ multiplies each head's attention probabilities (each feed-forward
neuron's activation), all ξ = 1, and a head's importance is the expected
absolute gradient of the task loss with respect to its ξ over the data,
normalised per layer by the L2 norm of that layer's scores.

    scores = head_importance(classifier, texts, labels, max_examples=2000)
"""

import weakref

import keras
import numpy as np

from keras_bert_impl import internals
from keras_bert_impl.constants import IGNORE_LABEL
from keras_bert_impl.models import BertClassifier
from keras_bert_impl.models import BertTokenClassifier
from keras_bert_impl.models import text_datasets
from keras_bert_impl.models.task import ACCEPTED_INPUTS

# The tasks whose loss the importance scores differentiate.
IMPORTANCE_TASKS = (BertClassifier, BertTokenClassifier)


def check_importance_model(model):
    if not isinstance(model, IMPORTANCE_TASKS):
        raise ValueError(
            "Importance scores need a task loss; supported models are "
            f"{', '.join(c.__name__ for c in IMPORTANCE_TASKS)}, got "
            f"{type(model).__name__}."
        )
    check_float_model(model)


def check_float_model(model):
    model.build()
    if any(layer.quantization_mode for layer in internals.sublayers(model)):
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
    if text_datasets.is_text(x):
        if y is None and not text_datasets.is_dataset(x):
            raise ValueError("Importance scores need labels: pass y.")
        batches = model.text_dataset(x, y, batch_size=batch_size)
    elif text_datasets.is_dataset(x):
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
            f"{text_datasets.describe(x)}."
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
    check_importance_model(model)
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


def normalized_per_layer(scores):
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
    return normalized_per_layer(scores)


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
    return normalized_per_layer(scores)
