"""BERT's optimizer recipe on Keras optimizers and schedules.

google-research/bert (and transformers' examples) train with AdamW, weight
decay 0.01 on every weight except LayerNorm's and the biases, epsilon 1e-6,
gradients clipped to global norm 1.0, and a learning rate that rises
linearly over the warm-up steps and then decays linearly to zero.
"""

import keras

OPTIMIZERS = ("adamw", "lamb")

# Keras matches these against variable *names* (not paths): LayerNorm's
# `gamma`/`beta`, every Dense `bias` and the MLM head's `output_bias`.
WEIGHT_DECAY_EXCLUSIONS = ("gamma", "beta", "bias")


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak_learning_rate`, then polynomial decay.

    At step s (0-based optimizer iterations): `peak * s / warmup_steps`
    while `s < warmup_steps`, then Keras' `PolynomialDecay` from `peak` to
    `end_learning_rate` over the remaining `decay_steps - warmup_steps`
    steps (`power=1` is BERT's linear decay, the same values as
    transformers' `get_linear_schedule_with_warmup`).

    Args:
        peak_learning_rate: the rate reached at the end of warm-up.
        decay_steps: total training steps (warm-up included).
        warmup_steps: steps of linear warm-up; 0 for none.
        end_learning_rate: the rate at `decay_steps` and after.
        power: 1.0 for linear decay.
    """

    def __init__(
        self,
        peak_learning_rate,
        decay_steps,
        warmup_steps=0,
        end_learning_rate=0.0,
        power=1.0,
    ):
        if decay_steps < 1 or not 0 <= warmup_steps <= decay_steps:
            raise ValueError(
                f"Need 0 <= warmup_steps ({warmup_steps}) <= decay_steps "
                f"({decay_steps}) and decay_steps >= 1."
            )
        self.peak_learning_rate = peak_learning_rate
        self.decay_steps = decay_steps
        self.warmup_steps = warmup_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self._decay = keras.optimizers.schedules.PolynomialDecay(
            peak_learning_rate,
            max(decay_steps - warmup_steps, 1),
            end_learning_rate=end_learning_rate,
            power=power,
        )

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = float(max(self.warmup_steps, 1))
        warming = self.peak_learning_rate * step / warmup
        decayed = self._decay(keras.ops.maximum(step - self.warmup_steps, 0.0))
        return keras.ops.where(step < self.warmup_steps, warming, decayed)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "decay_steps": self.decay_steps,
            "warmup_steps": self.warmup_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
        }


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
    cls = keras.optimizers.AdamW if optimizer == "adamw" else keras.optimizers.Lamb
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
