"""What every model built on a `BertBackbone` shares: owning the backbone,
accepting a config in its place, and (de)serialising it."""

import keras

from keras_bert_impl.layers.activations import truncated_normal
from keras_bert_impl.models.backbone import BertBackbone


class BertTask(keras.Model):
    """Base of the models that put a head on a `BertBackbone`.

    Args:
        backbone: a `BertBackbone`, or anything `BertBackbone` accepts as its
            config (a `BertConfig`, a preset name, a dict); then a fresh
            backbone is built with this model's dtype policy.
        **kwargs: `keras.Model` arguments.
    """

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(backbone, BertBackbone):
            backbone = BertBackbone(backbone, dtype=self.dtype_policy, name="backbone")
        self.backbone = backbone

    @property
    def config(self):
        return self.backbone.config

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)

    def compile_from_config(self, config):
        """Restores `compile()` when a `.keras` file is loaded.

        Keras skips this for models that override `compile()` (ours resolve
        `"auto"` arguments); the saved config already holds the resolved
        optimizer, loss and metrics, so plain `compile()` with them restores
        the state, and the optimizer is built so its saved slots load into it.
        """
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)


class BertDenseHeadTask(BertTask):
    """A task whose head is dropout + one dense layer on a backbone output.

    Subclasses name the backbone output (`head_input`) and the head layer
    (`head_name`, part of the checkpoint-mapping contract).

    Args:
        backbone: a `BertBackbone` or its config / preset name.
        num_classes: width of the head.
        dropout: dropout on the head's input.
        **kwargs: `keras.Model` arguments.
    """

    head_input = None
    head_name = None

    def __init__(self, backbone, num_classes, dropout=0.1, **kwargs):
        super().__init__(backbone, **kwargs)
        if (
            isinstance(num_classes, bool)
            or not isinstance(num_classes, int)
            or num_classes < 1
        ):
            raise ValueError(
                f"num_classes must be a positive integer, got {num_classes!r}."
            )
        self.num_classes = num_classes
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

    def call(self, inputs, training=None):
        features = self.backbone(inputs, training=training)[self.head_input]
        return self.head(self.output_dropout(features, training=training))

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "dropout": self.dropout})
        return config
