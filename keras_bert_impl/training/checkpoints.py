"""Checkpoints that resume a run exactly: weights, optimizer slots and
iterations, the step, and every dropout seed state.

Keras models and optimizers are `tf.train.Checkpoint`-trackable, but the
states of `keras.random.SeedGenerator`s (what dropout draws from) are not
reached through the model's attributes, so they are tracked explicitly here;
without them a resumed run would draw the masks of step 0 again.
"""

import os

import tensorflow as tf

CHECKPOINT_PREFIX = "ckpt"


def seed_states(model):
    """The model's `SeedGenerator` state variables, in a stable order."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


def training_checkpoint(model, optimizer, step):
    """A `tf.train.Checkpoint` of everything that changes the next step.

    Keras 3 models do not expose every nested layer to `tf.train.Checkpoint`
    (a backbone's block list is missed), so all model variables are also
    tracked as one list, in the model's own stable order.
    """
    return tf.train.Checkpoint(
        model=model,
        model_variables=list(model.variables),
        optimizer=optimizer,
        step=step,
        seed_states=seed_states(model),
    )


def restore(checkpoint, path):
    """Restores `path` into `checkpoint`, naming the file when it is unusable.

    Raises:
        ValueError: the checkpoint is missing, truncated, corrupt, or does
            not hold this model/optimizer.
    """
    if not tf.io.gfile.exists(path + ".index"):
        raise ValueError(f"Checkpoint {path} not found (no {path}.index).")
    try:
        status = checkpoint.restore(path)
        status.assert_existing_objects_matched()
    except (
        tf.errors.OpError,
        AssertionError,
        ValueError,
        IndexError,
        KeyError,
        RuntimeError,
    ) as e:  # what the reader raises on a damaged file varies
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(
            f"Checkpoint {path} is corrupt, truncated or from another model: "
            f"{type(e).__name__}: {message[:300]}"
        ) from e
    return status


def checkpoint_directory(output_dir):
    return os.path.join(output_dir, "checkpoints")
