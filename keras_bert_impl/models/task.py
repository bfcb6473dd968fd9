"""What every model built on a `BertBackbone` shares: owning the backbone
(and optionally a preprocessor), accepting a config in its place, taking raw
text in `fit` / `evaluate` / `predict`, loading with `from_preset`, and
(de)serialising it all."""

import importlib

import keras
import numpy as np

from keras_bert_impl.layers.activations import truncated_normal
from keras_bert_impl.models import checkpoint_names
from keras_bert_impl.models import quantization
from keras_bert_impl.models import text_datasets
from keras_bert_impl.models.backbone import BertBackbone
from keras_bert_impl.models.summary import InformativeSummary

ACCEPTED_INPUTS = (
    "text (a list, numpy array or tf.string tensor of strings, a (text, "
    "text_pair) tuple of those, or a tf.data.Dataset of them; the model needs a "
    "preprocessor) or token dicts (token_ids, segment_ids, padding_mask as "
    "numpy arrays or tensors, or a tf.data.Dataset of them)"
)


def preprocessing_module():
    """`keras_bert_impl.preprocessing`, imported on first use: it needs
    TensorFlow, which the models must not import (they also run on JAX)."""
    return importlib.import_module("keras_bert_impl.preprocessing")


def load_saved(path):
    """The model a `.keras` file saved by this package holds, any of its classes,
    with its preprocessor. Its `serving_task` says what it is.

    Raises:
        ValueError: naming the file when it holds no model of this package.
    """
    preprocessing_module()  # registers the preprocessor classes
    model = keras.saving.load_model(path)
    if getattr(model, "serving_task", None) is None:
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not a BERT model of this package."
        )
    return model


class BertTask(InformativeSummary, keras.Model):
    """Base of the models that put a head on a `BertBackbone`.

    Args:
        backbone: a `BertBackbone`, or anything `BertBackbone` accepts as its
            config (a `BertConfig`, a preset name, a dict); then a fresh
            backbone is built with this model's dtype policy.
        preprocessor: optional preprocessor layer (see
            `keras_bert_impl.preprocessing`); with one, `fit`, `evaluate`
            and `predict` also take raw text. It is saved with the model.
        **kwargs: `keras.Model` arguments.
    """

    # Name of the task's preprocessor class in keras_bert_impl.preprocessing.
    preprocessor_class_name = "BertTextClassifierPreprocessor"
    # The `kbi-export --task` this model is exported as (see `serving_task`).
    export_task = None
    # transformers' class for this model (`config.json`'s `architectures`).
    huggingface_architecture = None

    @property
    def serving_task(self):
        """What this model serves as (a `kbi-export --task`): a saved model
        knows it, so an export needs no `--task` and refuses a contradicting one."""
        return self.export_task

    def checkpoint_weights(self):
        """Canonical name → variable (see `checkpoint_names`), every weight."""
        return {**self.backbone.checkpoint_weights(), **self.head_checkpoint_weights()}

    def head_checkpoint_weights(self):
        """Canonical name → variable of this task's own head (none here)."""
        return {}

    def __init__(self, backbone, preprocessor=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(backbone, BertBackbone):
            backbone = BertBackbone(backbone, dtype=self.dtype_policy, name="backbone")
        self.backbone = backbone
        self.preprocessor = preprocessor

    @property
    def config(self):
        return self.backbone.config

    @classmethod
    def preprocessor_class(cls):
        return getattr(preprocessing_module(), cls.preprocessor_class_name)

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Builds the model from a preset name, a checkpoint or a `.keras` file.

        Args:
            preset: a `BertConfig` preset name ("tiny" … "large": random
                weights, no preprocessor unless `vocabulary=` is given), a
                Hugging Face checkpoint directory (`config.json`,
                `model.safetensors`, `vocab.txt`), a Google TF1 checkpoint
                directory (`bert_config.json`, `bert_model.ckpt.*`,
                `vocab.txt`), or a `.keras` file saved by this package.
            **kwargs: task arguments (`num_classes`, `label_names`,
                `dropout`, `dtype`, …) and the preprocessor's:
                `sequence_length`, `preprocessor` (False for none, or a
                preprocessor to use), `preprocessor_kwargs` (further
                arguments of the preprocessor class), `vocabulary` (a
                vocabulary file for a preset name).

        Returns:
            The model; its preprocessor uses the checkpoint's vocabulary and
            casing.
        """
        from keras_bert_impl.models import preset_loading

        return preset_loading.load(cls, preset, **kwargs)

    def prepare_text(self, x, y, sample_weight):
        """Text inputs and labels as users give them → what the preprocessor
        takes (e.g. label names into indices); each task overrides it.

        Returns:
            `(x, y, sample_weight)`.
        """
        return x, y, sample_weight

    def _check_inputs(self, x, method):
        if x is None or isinstance(x, dict) or text_datasets.is_text(x):
            return
        if isinstance(x, (list, tuple, str, bytes, int, float)) or (
            hasattr(x, "dtype") and hasattr(x, "shape")
        ):
            raise TypeError(
                f"{type(self).__name__}.{method} takes {ACCEPTED_INPUTS}; got "
                f"{text_datasets.describe(x)}."
            )
        # Generators, PyDatasets and token datasets: Keras' own adapters.

    def text_dataset(
        self, x, y=None, sample_weight=None, batch_size=None, shuffle=False
    ):
        """The `tf.data.Dataset` that `fit` / `evaluate` / `predict` make of
        text: batches of `x` (and `y`, `sample_weight`) run through the
        preprocessor, grouped by length when it has length buckets and
        `shuffle` is on."""
        if not text_datasets.is_dataset(x):
            x, y, sample_weight = self.prepare_text(x, y, sample_weight)
        return text_datasets.text_dataset(
            self.preprocessor,
            x,
            y,
            sample_weight,
            batch_size=batch_size,
            shuffle=shuffle,
            owner=type(self).__name__,
        )

    def fit(self, x=None, y=None, batch_size=None, **kwargs):
        """`keras.Model.fit`; `x` may also be text (see `ACCEPTED_INPUTS`).

        Text is batched (`batch_size`, default 32; shuffled every epoch
        unless `shuffle=False`) and run through the preprocessor in
        `tf.data`. `validation_data` may be text too: `(texts, labels)`.
        """
        self._check_inputs(x, "fit")
        validation = kwargs.get("validation_data")
        if validation is not None and not text_datasets.is_dataset(validation):
            vx, vy, vw = keras.utils.unpack_x_y_sample_weight(validation)
            if text_datasets.is_text(vx):
                kwargs["validation_data"] = self.text_dataset(
                    vx, vy, vw, kwargs.pop("validation_batch_size", None) or batch_size
                )
        elif validation is not None and text_datasets.is_text(validation):
            kwargs["validation_data"] = self.text_dataset(validation)
        if text_datasets.is_text(x):
            if kwargs.get("validation_split"):
                raise ValueError(
                    "validation_split is not supported with text inputs; pass "
                    "validation_data=(texts, labels)."
                )
            x = self.text_dataset(
                x,
                y,
                kwargs.pop("sample_weight", None),
                batch_size,
                # Shuffled here, in tf.data; Keras ignores it for datasets.
                shuffle=kwargs.pop("shuffle", True),
            )
            y = batch_size = None
            kwargs["shuffle"] = False
        return super().fit(x, y, batch_size=batch_size, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        """`keras.Model.evaluate`; `x` may also be text (see `fit`)."""
        self._check_inputs(x, "evaluate")
        if text_datasets.is_text(x):
            x = self.text_dataset(x, y, kwargs.pop("sample_weight", None), batch_size)
            y = batch_size = None
        return super().evaluate(x, y, batch_size=batch_size, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        """`keras.Model.predict`; `x` may also be text (see `fit`).

        Returns what `call` returns (logits), one row per preprocessed
        example, as Keras' `predict` always does; `predict_text` turns text
        into what a user wants (labels, tags, answers).
        """
        self._check_inputs(x, "predict")
        if text_datasets.is_text(x):
            x = self.text_dataset(x, batch_size=batch_size)
            batch_size = None
        return super().predict(x, batch_size=batch_size, **kwargs)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:
            # Task models come compiled: one saved before any training step holds
            # an optimizer without slots, and its reload must not make slots the
            # file lacks (Keras would skip the state with a warning).
            config["optimizer_built"] = bool(self.optimizer.built)
        return config

    def compile_from_config(self, config):
        """Recompiles a loaded model. The tasks' `compile` resolves "auto"
        before calling `keras.Model.compile`, so the saved compile config
        already holds the concrete optimizer, loss and metrics."""
        config = dict(config)
        optimizer_built = config.pop("optimizer_built", True)
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built and optimizer_built:
            # Slots exist before the saved optimizer state is read into them.
            self.optimizer.build(self.trainable_variables)

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
        }
        if self.preprocessor is not None:
            config["preprocessor"] = keras.saving.serialize_keras_object(
                self.preprocessor
            )
        if self.built:
            # The backbone's config lists its own quantized layers.
            quantized = quantization.quantized_layers(self, exclude=[self.backbone])
            if quantized:
                config[quantization.CONFIG_KEY] = quantized
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        if config.get("preprocessor") is not None:
            preprocessing_module()  # registers the preprocessor classes
            config["preprocessor"] = keras.saving.deserialize_keras_object(
                config["preprocessor"]
            )
        quantized = config.pop(quantization.CONFIG_KEY, None)
        model = cls(**config)
        quantization.requantize(model, quantized)
        return model


class BertDenseHeadTask(BertTask):
    """A task whose head is dropout + one dense layer on a backbone output.

    Subclasses name the backbone output (`head_input`) and the head layer
    (`head_name`, part of the checkpoint-mapping contract).

    Args:
        backbone: a `BertBackbone` or its config / preset name.
        num_classes: width of the head; None: the number of `label_names`.
        dropout: dropout on the head's input.
        label_names: optional class names in index order (what
            `predict_text` returns, and what labels given as strings mean).
        **kwargs: `BertTask` arguments (`preprocessor`) and `keras.Model`
            arguments.
    """

    head_input = None
    head_name = None

    def __init__(self, backbone, num_classes, dropout=0.1, label_names=None, **kwargs):
        super().__init__(backbone, **kwargs)
        if label_names is not None:
            label_names = tuple(str(name) for name in label_names)
            if num_classes is None:
                num_classes = len(label_names)
            if len(label_names) != num_classes or len(set(label_names)) != num_classes:
                raise ValueError(
                    f"label_names must be {num_classes} distinct names (num_classes="
                    f"{num_classes}), got {list(label_names)}."
                )
        if (
            isinstance(num_classes, bool)
            or not isinstance(num_classes, int)
            or num_classes < 1
        ):
            raise ValueError(
                f"num_classes must be a positive integer, got {num_classes!r}."
            )
        self.num_classes = num_classes
        self.label_names = label_names
        self.dropout = dropout
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="output_dropout"
        )
        self.head = keras.layers.Dense(
            num_classes,
            kernel_initializer=truncated_normal(self.config.initializer_range),
            dtype="float32",
            name=self.head_name,
        )

    def build(self, input_shape=None):
        if self.built:
            return
        self.backbone.build()
        self.head.build((None, self.config.hidden_size))
        self.built = True

    def head_checkpoint_weights(self):
        # google-research/bert's run_classifier.py and transformers' classifiers
        # (sequence and token) both call it "classifier".
        return checkpoint_names.dense("classifier", self.head)

    def call(self, inputs, training=None):
        features = self.backbone(inputs, training=training)[self.head_input]
        return self.head(self.output_dropout(features, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "dropout": self.dropout,
                "label_names": None
                if self.label_names is None
                else list(self.label_names),
            }
        )
        return config

    def names_of(self, indices):
        """Class indices → label names (`LABEL_i` without `label_names`)."""
        names = self.label_names or tuple(f"LABEL_{i}" for i in range(self.num_classes))
        return [names[int(i)] for i in indices]

    def label_indices(self, labels):
        """Labels given as names → indices; other labels pass unchanged."""
        values = np.asarray(labels) if isinstance(labels, (list, tuple)) else labels
        if not isinstance(values, np.ndarray) or values.dtype.kind not in "USO":
            return labels
        if self.label_names is None:
            raise ValueError(
                f"{type(self).__name__} got labels as strings but has no "
                "label_names: pass label_names= (or class indices as labels)."
            )
        index_of = {name: i for i, name in enumerate(self.label_names)}
        unknown = sorted({str(v) for v in values.ravel()} - set(index_of))
        if unknown:
            raise ValueError(
                f"Labels {unknown[:5]} are not among label_names "
                f"{list(self.label_names)}."
            )
        return np.vectorize(lambda v: index_of[str(v)], otypes=[np.int32])(values)
