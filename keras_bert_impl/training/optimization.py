"""BERT's optimizer recipe on Keras optimizers and schedules.

google-research/bert (and transformers' examples) train with AdamW, weight
decay 0.01 on every weight except LayerNorm's and the biases, epsilon 1e-6,
gradients clipped to global norm 1.0, and a learning rate that rises
linearly over the warm-up steps and then decays linearly to zero.
"""

import keras

from keras_bert_impl.optimizers import FusedAdamW

# Lives beside the models so that loading a saved, compiled model registers it.
from keras_bert_impl.schedules import WarmupPolynomialDecay

OPTIMIZERS = ("adamw", "lamb")

# Keras matches these against variable *names* (not paths): LayerNorm's
# `gamma`/`beta`, every Dense `bias` and the MLM head's `output_bias`.
WEIGHT_DECAY_EXCLUSIONS = ("gamma", "beta", "bias")


def create_optimizer(
    learning_rate,
    num_train_steps,
    num_warmup_steps=0,
    *,
    optimizer="adamw",
    weight_decay=0.01,
    epsilon=1e-6,
    beta_1=0.9,
    beta_2=0.999,
    clipnorm=1.0,
    power=1.0,
    end_learning_rate=0.0,
):
    """BERT's optimizer: AdamW (or LAMB) on a warm-up + decay schedule.

    Args:
        learning_rate: peak learning rate.
        num_train_steps: total steps; the rate reaches `end_learning_rate`
            there.
        num_warmup_steps: linear warm-up steps.
        optimizer: `adamw` or `lamb`.
        weight_decay: decoupled weight decay, not applied to LayerNorm
            weights or biases.
        epsilon, beta_1, beta_2: Adam's constants.
        clipnorm: global-norm gradient clipping; None for none.
        power: polynomial decay power (1.0 = linear).
        end_learning_rate: the rate after decay.

    Returns:
        A Keras optimizer, not yet built.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"Unknown --optimizer={optimizer!r}; valid optimizers are {list(OPTIMIZERS)}."
        )
    schedule = WarmupPolynomialDecay(
        learning_rate,
        num_train_steps,
        warmup_steps=num_warmup_steps,
        end_learning_rate=end_learning_rate,
        power=power,
    )
    cls = FusedAdamW if optimizer == "adamw" else keras.optimizers.Lamb
    result = cls(
        learning_rate=schedule,
        weight_decay=weight_decay,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        global_clipnorm=clipnorm,
    )
    result.exclude_from_weight_decay(var_names=list(WEIGHT_DECAY_EXCLUSIONS))
    return result
