"""Raw text into `fit` / `evaluate` / `predict`: a `tf.data` pipeline that
runs the task's preprocessor.

The task models take token dicts in `call`; when `fit`, `evaluate` or
`predict` get text instead (lists, numpy arrays or tf.string tensors of
strings, `(text, text_pair)` tuples, or a `tf.data.Dataset` whose inputs are
strings), the text is batched and mapped through `model.preprocessor` in
`tf.data`, so tokenization overlaps the model's steps and never reaches the
accelerator, on every Keras backend. TensorFlow is imported only when text
arrives: token dicts never touch it.
"""

import sys
import weakref

import numpy as np

DEFAULT_BATCH_SIZE = 32

# Batches a preprocessor with `independent_rows` tokenizes in one call. Most of
# a small batch's preprocessing time is per-call overhead (about thirty
# tokenizer and packing ops), so eight batches cost little more than one; the
# block is then split back into the same batches.
BATCHES_PER_CALL = 8

def _tf():
    import tensorflow as tf

    return tf


def is_dataset(value):
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(value, tf.data.Dataset)


def _is_string_leaf(value):
    if isinstance(value, (str, bytes)):
        return True
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "US":
            return True
        return (
            value.dtype.kind == "O"
            and value.size > 0
            and isinstance(value.flat[0], (str, bytes, list, tuple))
        )
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_is_string_leaf(v) for v in value[:8])
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(value, (tf.Tensor, tf.RaggedTensor)):
        return value.dtype == tf.string
    return False


def is_text(x):
    """Whether `x` is text (or a dataset of text) rather than token dicts."""
    if is_dataset(x):
        tf = _tf()
        spec = x.element_spec
        inputs = spec[0] if isinstance(spec, tuple) and len(spec) in (2, 3) else spec
        return any(
            getattr(s, "dtype", None) == tf.string for s in tf.nest.flatten(inputs)
        )
    if isinstance(x, dict):
        return False
    if isinstance(x, tuple):
        return bool(x) and all(_is_string_leaf(part) for part in x)
    return _is_string_leaf(x)


def describe(value):
    """A short description of a value's type for error messages."""
    if isinstance(value, np.ndarray):
        return f"a numpy array of dtype {value.dtype}"
    if isinstance(value, (list, tuple)) and value:
        return f"a {type(value).__name__} of {type(value[0]).__name__}"
    if isinstance(value, (list, tuple)):
        return f"an empty {type(value).__name__}"
    return type(value).__name__


def text_dataset(
    preprocessor,
    x,
    y=None,
    sample_weight=None,
    *,
    batch_size=None,
    shuffle=False,
    owner="model",
):
    """Batches text and maps `preprocessor` over it in `tf.data`.

    Args:
        preprocessor: the task's preprocessor layer (None raises).
        x: text as `is_text` accepts, or a `tf.data.Dataset` of text.
        y, sample_weight: labels and weights for in-memory text.
        batch_size: examples per batch for in-memory text (default 32).
        shuffle: reshuffle in-memory examples every epoch.
        owner: what to call the model in errors.

    Returns:
        A prefetched `tf.data.Dataset` of preprocessed batches. When the
        preprocessor has `independent_rows`, in-memory text is tokenized
        `BATCHES_PER_CALL` batches at a time and split back into the same
        batches.
    """
    tf = _tf()
    if preprocessor is None:
        raise ValueError(
            f"{owner} got text but has no preprocessor: build it with "
            f"`{owner}.from_preset(checkpoint)` or pass `preprocessor=`, or give "
            "token dicts (token_ids, segment_ids, padding_mask)."
        )
    if shuffle and not is_dataset(x) and getattr(preprocessor, "bucket_lengths", None):
        dataset = _length_grouped(x, y, sample_weight, batch_size)
        dataset = dataset.map(_preprocess(preprocessor, dataset), tf.data.AUTOTUNE)
    elif is_dataset(x) or not getattr(preprocessor, "independent_rows", False):
        dataset = batched_text(
            x, y, sample_weight, batch_size=batch_size, shuffle=shuffle
        )
        dataset = dataset.map(_preprocess(preprocessor, dataset), tf.data.AUTOTUNE)
    else:
        batch_size = batch_size or DEFAULT_BATCH_SIZE
        examples, count = _examples(x, y, sample_weight, shuffle)
        dataset = examples.batch(batch_size * BATCHES_PER_CALL)
        dataset = dataset.map(_preprocess(preprocessor, dataset), tf.data.AUTOTUNE)
        # rebatch() cannot know the number of batches; Keras needs it to end
        # an epoch without running out of data.
        dataset = dataset.rebatch(batch_size).apply(
            tf.data.experimental.assert_cardinality(-(-count // batch_size))
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def _length_grouped(x, y, sample_weight, batch_size):
    """Shuffled in-memory text in batches of similar length, every example
    once per epoch: the one grouping policy, `data.batching.length_grouped`."""
    from keras_bert_impl.data.batching import length_grouped

    tf = _tf()
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    examples, count = _examples(x, y, sample_weight, shuffle=True)
    return length_grouped(examples, batch_size).apply(
        tf.data.experimental.assert_cardinality(-(-count // batch_size))
    )


def _preprocess(preprocessor, dataset):
    """The traced preprocessing function for the dataset's elements."""
    return _graph_functions(preprocessor)[_is_text_only(dataset.element_spec)]


# Preprocessor → its traced tf.functions. Tracing the tokenizer's graph costs
# about a second; every fit / evaluate / predict call on text builds a new
# pipeline, which then reuses the traced graph instead of tracing it again.
_GRAPH_FUNCTIONS = weakref.WeakKeyDictionary()


def _graph_functions(preprocessor):
    """(preprocess (x[, y[, sample_weight]]), preprocess a text-pair-only
    element) as tf.functions."""
    tf = _tf()
    if preprocessor not in _GRAPH_FUNCTIONS:

        @tf.autograph.experimental.do_not_convert
        def preprocess(*element):
            return preprocessor(*element)

        @tf.autograph.experimental.do_not_convert
        def preprocess_pair(*texts):
            # tf.data passes (text, text_pair) as two arguments, x and y.
            return preprocessor(texts)

        _GRAPH_FUNCTIONS[preprocessor] = {
            False: tf.function(preprocess),
            True: tf.function(preprocess_pair),
        }
    return _GRAPH_FUNCTIONS[preprocessor]


def _is_text_only(spec):
    """An element that is a tuple of strings only: a text pair, no labels."""
    tf = _tf()
    return (
        isinstance(spec, tuple)
        and len(spec) > 1
        and all(getattr(s, "dtype", None) == tf.string for s in spec)
    )


def batched_text(x, y=None, sample_weight=None, *, batch_size=None, shuffle=False):
    """In-memory text (and labels) as a batched `tf.data.Dataset`; a dataset
    passes through unchanged."""
    if is_dataset(x):
        if y is not None or sample_weight is not None or batch_size is not None:
            raise ValueError(
                "With a tf.data.Dataset as x, labels and weights come from the "
                "dataset and it is already batched: do not pass y, "
                "sample_weight or batch_size."
            )
        return x
    examples, _ = _examples(x, y, sample_weight, shuffle)
    return examples.batch(batch_size or DEFAULT_BATCH_SIZE)


def _examples(x, y, sample_weight, shuffle):
    """(unbatched dataset of in-memory examples, their number)."""
    tf = _tf()
    elements = _slices(x, y, sample_weight)
    count = _num_examples(elements)
    if count == 0:
        raise ValueError("Got no examples: the text input is empty.")
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        dataset = dataset.shuffle(count, reshuffle_each_iteration=True)
    return dataset, count


def encoded_batches(preprocessor, x, batch_size=None, method="encode"):
    """Batches of `preprocessor.encode(x)` (model inputs plus the map back to
    the text; `method` names another such method), as numpy, for
    `predict_text`."""
    tf = _tf()
    encode = getattr(preprocessor, method)
    dataset = batched_text(x, batch_size=batch_size)
    dataset = dataset.map(
        # tf.data passes a tuple element (question, context) as two arguments.
        lambda *parts: encode(parts[0] if len(parts) == 1 else parts),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    for batch in dataset.prefetch(tf.data.AUTOTUNE):
        yield {
            key: value.numpy() if isinstance(value, tf.Tensor) else value
            for key, value in batch.items()
        }


def _as_tensor(value):
    tf = _tf()
    if isinstance(value, (tf.Tensor, tf.RaggedTensor)):
        return value
    if (
        isinstance(value, (list, tuple))
        and value
        and isinstance(value[0], (list, tuple, np.ndarray))
    ):
        # Word lists (token classification) or per-word labels: ragged rows.
        return tf.ragged.constant([list(row) for row in value])
    if (
        isinstance(value, (list, tuple))
        and value
        and isinstance(value[0], (str, bytes))
    ):
        return tf.constant([_utf8(item) for item in value], tf.string)
    if isinstance(value, np.ndarray) and value.dtype.kind in "UO":
        return tf.constant([_utf8(item) for item in value.tolist()], tf.string)
    return value


def _utf8(item):
    # Lone surrogates become invalid UTF-8 bytes, which the tokenizer drops.
    return item.encode("utf-8", "surrogatepass") if isinstance(item, str) else item


def _slices(x, y, sample_weight):
    if isinstance(x, (str, bytes)):
        x = [x]
    if isinstance(x, tuple):
        x = tuple(_as_tensor(part) for part in x)
    else:
        x = _as_tensor(x)
    if isinstance(y, dict):
        y = {key: _as_tensor(value) for key, value in y.items()}
    elif y is not None:
        y = _as_tensor(y)
    if sample_weight is not None:
        sample_weight = _as_tensor(sample_weight)
    if y is None:
        if sample_weight is not None:
            raise ValueError("sample_weight needs labels (y) to weight.")
        return x
    return (x, y) if sample_weight is None else (x, y, sample_weight)


def _num_examples(elements):
    tf = _tf()
    sizes = {
        int(leaf.shape[0])
        if not isinstance(leaf, tf.RaggedTensor)
        else int(leaf.nrows())
        for leaf in tf.nest.flatten(elements)
        if leaf is not None and getattr(leaf, "shape", None) is not None
    }
    if len(sizes) > 1:
        raise ValueError(
            f"Texts, labels and sample weights must have the same number of "
            f"examples; got {sorted(sizes)}."
        )
    return sizes.pop()
