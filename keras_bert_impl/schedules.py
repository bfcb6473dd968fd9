"""BERT's learning-rate schedule, a Keras `LearningRateSchedule`.

It sits below the models (keras only) because a compiled model saved as
`.keras` carries its optimizer, schedule included: whatever loads the model
must know the schedule, and loading the models imports this module.
"""

import keras


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
