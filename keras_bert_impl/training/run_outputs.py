"""What every training run writes or computes the same way: the `.keras`
model file, `eval_results.{txt,json}` and model outputs
over a dataset."""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from keras_bert_impl.training.history import write_atomically

def save_model(model, path):
    """Writes `model` as `.keras` at `path` (any file system), atomically: config,
    weights, preprocessor and compile settings, but not the optimizer's slots — two
    more copies of the weights, which predicting, evaluating and exporting never
    read (a run resumes from its checkpoints, which keep them)."""
    optimizer = getattr(model, "optimizer", None)
    with tempfile.TemporaryDirectory() as local:
        local_path = os.path.join(local, "model.keras")
        if optimizer is not None and optimizer.built:
            model.optimizer = type(optimizer).from_config(optimizer.get_config())
        try:
            model.save(local_path)
        finally:
            if optimizer is not None:
                model.optimizer = optimizer
        temporary = path + ".tmp"
        tf.io.gfile.copy(local_path, temporary, overwrite=True)
        tf.io.gfile.rename(temporary, path, overwrite=True)


def write_eval_results(output_dir, results, name="eval_results"):
    """`name.txt` (google-research/bert's `key = value` lines) and `name.json`."""
    lines = "".join(f"{key} = {value}\n" for key, value in sorted(results.items()))
    write_atomically(os.path.join(output_dir, name + ".txt"), lines)
    write_atomically(
        os.path.join(output_dir, name + ".json"),
        json.dumps(results, indent=1, sort_keys=True) + "\n",
    )


def predict_outputs(model, dataset):
    """Model outputs over a dataset (numpy, concatenated; dicts kept)."""
    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    chunks = []
    for batch in dataset:
        x = batch[0] if isinstance(batch, tuple) else batch
        chunks.append(tf.nest.map_structure(lambda t: t.numpy(), call(x)))
    if isinstance(chunks[0], dict):
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    return np.concatenate(chunks)
