"""What every model built on a `BertBackbone` shares: owning the backbone,
accepting a config in its place, and (de)serialising it."""

import keras

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
