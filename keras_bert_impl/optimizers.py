"""AdamW whose per-variable update is one fused TensorFlow kernel.

Keras' `AdamW.update_step` writes Adam's update as separate tensor ops: for each
variable about ten passes over memory (the moments' subtract, multiply and add, the
square, the square root, the divide...). TensorFlow's `ResourceApplyAdam` kernel does
the same arithmetic in one pass: `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`,
`var -= lr·√(1 - β2ᵗ)/(1 - β1ᵗ) · m / (√v + ε)` — Keras' own formula, term for term
(the kernel forms 1 - β from float32 β, Keras from the Python float: the second
moment differs by 1.3e-5 relative, the steps by less).
On BERT the optimizer touches every weight each step (the word embeddings are half
of all-MiniLM-L6-v2's), and this halves its time (BENCHMARKS.md, the optimizer
table of "Fine-tuning: SST-2 with all-MiniLM-L6-v2").
It writes Keras' own slot variables, so checkpoints keep their layout.

It sits below the models (keras only, TensorFlow imported when used) because the
task models compile with it by default and a saved, compiled model names it.
"""

import keras

from keras_bert_impl import internals


@keras.saving.register_keras_serializable(package="keras_bert_impl")
class FusedAdamW(keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with its update in one TensorFlow kernel per variable.

    Same arguments, slots and weight decay as Keras' AdamW, and the same steps up to
    float32 rounding (tested against it). On other backends, and with
    `amsgrad=True` (which the kernel lacks), Keras' own update runs.

    Example:
    ```python
    classifier = BertClassifier.from_preset(checkpoint_dir)  # compiled with it
    classifier.compile(optimizer=FusedAdamW(3e-5, weight_decay=0.01))
    classifier.fit(train_texts, train_labels, batch_size=32)
    ```
    """

    def update_step(self, gradient, variable, learning_rate):
        if keras.backend.backend() != "tensorflow" or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        dtype = variable.dtype
        momentum, velocity = internals.adam_slots(self, variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        # A sparse gradient (the word embeddings') becomes dense, as Keras' update
        # makes it: AdamW decays every row's moments each step.
        gradient = tf.cast(tf.convert_to_tensor(gradient), dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(momentum),
            v=_handle(velocity),
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=gradient,
        )


def _handle(variable):
    """The resource handle of a Keras variable or of the `tf.Variable` it holds
    (under a `tf.distribute` update, the handle of this replica's copy)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle
