"""Training runs that need a process of their own (run by the training tests).

python training_child.py pretrain OUTPUT_DIR RECORDS VOCAB CONFIG STEPS [--slow]
    kbi-pretrain's function on tiny records, dropout on; writes the final
    weights to OUTPUT_DIR/weights.npz. --slow sleeps in the input
    pipeline so that a parent can kill the run mid-way.
python training_child.py mirrored OUTPUT_JSON
    The same tiny pretraining on the default strategy and on
    MirroredStrategy over 2 logical CPUs; writes both loss curves.
python training_child.py multi_worker OUTPUT_DIR RECORDS CONFIG STEPS WEIGHTS
    One worker of a MultiWorkerMirroredStrategy cluster (TF_CONFIG in the
    environment) running kbi-pretrain's function; writes the weights its
    trainer ends with to WEIGHTS (.npz, `trained_<i>`), and on the chief
    also those of the model.keras it saved (`saved_<i>`).
"""

import json
import os
import sys
import time


def pretrain(output_dir, records, vocab, config, steps, slow):
    import numpy as np
    import tensorflow as tf

    from keras_bert_impl.training import pretraining
    from keras_bert_impl.training.settings import PretrainSettings

    if slow:
        original = pretraining.pretraining_input

        def slowed(*args, **kwargs):
            def pause(x, y):
                token = tf.numpy_function(
                    lambda: time.sleep(0.15) or np.int32(0), [], tf.int32
                )
                token = tf.reshape(token, [])  # numpy_function loses the shape
                x = dict(x, token_ids=x["token_ids"] + token * 0)
                return x, y

            return original(*args, **kwargs).map(pause)

        pretraining.pretraining_input = slowed
    settings = PretrainSettings(
        input_file=records,
        output_dir=output_dir,
        bert_config_file=config,
        vocab_file=vocab,
        dynamic_masking=True,
        train_batch_size=8,
        max_seq_length=16,
        max_predictions_per_seq=4,
        num_train_steps=steps,
        num_warmup_steps=2,
        learning_rate=1e-3,
        save_checkpoints_steps=3,
        verbose=0,
    )
    result = pretraining.run_pretraining(settings)
    import keras

    model = keras.saving.load_model(f"{output_dir}/model.keras", compile=False)
    np.savez(
        f"{output_dir}/weights.npz",
        *[v.numpy() for v in model.variables],
    )
    print(json.dumps({"steps": len(result["history"])}))


def mirrored(output_json):
    from keras_bert_impl.training.strategy import get_strategy, split_logical_cpus

    split_logical_cpus(2)
    import keras
    import numpy as np
    import tensorflow as tf

    from model_helpers import tiny_config

    from keras_bert_impl import BertPretrainer
    from keras_bert_impl.training import Trainer, TrainerSettings, create_optimizer

    def dataset():
        rng = np.random.default_rng(0)
        n, seq, k = 32, 12, 3
        ids = rng.integers(5, 64, (n, seq)).astype("int32")
        x = {
            "token_ids": ids,
            "segment_ids": np.zeros((n, seq), "int32"),
            "padding_mask": (np.arange(seq)[None] < rng.integers(6, 13, (n, 1))).astype(
                "int32"
            ),
            "mask_positions": np.tile(np.arange(1, 1 + k, dtype="int32"), (n, 1)),
        }
        y = {
            "masked_lm_ids": ids[:, 1 : 1 + k],
            # The same number of real slots in every row (one padded): the
            # MLM loss is normalised per replica, as google-research/bert's
            # per-TPU-core loss, so only then is the global loss identical.
            "masked_lm_weights": np.tile(np.array([1, 1, 0], "float32"), (n, 1)),
            "next_sentence_labels": (ids[:, 0] % 2).astype("int32"),
        }
        return (
            tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(n, seed=1)
            .repeat()
            .batch(8, drop_remainder=True)
        )

    curves = {}
    for name in ("default", "mirrored"):
        keras.utils.set_random_seed(3)
        config = tiny_config(hidden_dropout=0.0, attention_dropout=0.0)
        strategy = get_strategy(name)
        trainer = Trainer(
            strategy,
            lambda config=config: BertPretrainer(config),
            # A clipnorm small enough to bind, so cross-replica clipping counts.
            lambda: create_optimizer(1e-3, 12, 2, clipnorm=0.5),
            TrainerSettings(
                output_dir=f"{output_json}.{name}",
                num_train_steps=12,
                global_batch_size=8,
                steps_per_execution=4,
                save_checkpoints_steps=0,
                tensorboard=False,
                verbose=0,
            ),
        )
        history = trainer.train(dataset)
        curves[name] = {
            "losses": [v for row in history.rows for v in row["step_losses"]],
            "replicas": strategy.num_replicas_in_sync,
            "weights": [
                float(np.sum(np.abs(v.numpy())))
                for v in trainer.model.trainable_variables
            ],
        }
    with open(output_json, "w") as f:
        json.dump(curves, f)


def multi_worker(output_dir, records, config, steps, weights_file):
    # The strategy first: collective ops are configured before any op exists.
    from keras_bert_impl.training.strategy import get_strategy

    strategy = get_strategy("multi_worker_mirrored")
    import keras
    import numpy as np

    from keras_bert_impl.training import pretraining
    from keras_bert_impl.training.settings import PretrainSettings

    trainers = []

    class RecordedTrainer(pretraining.Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    pretraining.Trainer = RecordedTrainer
    settings = PretrainSettings(
        input_file=records,
        output_dir=output_dir,
        bert_config_file=config,
        train_batch_size=8,
        max_seq_length=16,
        max_predictions_per_seq=4,
        num_train_steps=steps,
        num_warmup_steps=1,
        learning_rate=1e-3,
        save_checkpoints_steps=2,
        steps_per_execution=2,
        strategy="multi_worker_mirrored",
        verbose=0,
    )
    result = pretraining.run_pretraining(settings, strategy=strategy)
    (trainer,) = trainers
    # `weights`: the model's weights, without the dropout seed states.
    weights = {f"trained_{i}": v.numpy() for i, v in enumerate(trainer.model.weights)}
    saved = os.path.join(output_dir, "model.keras")
    if os.path.exists(saved):  # the chief's: what it wrote, read back
        model = keras.saving.load_model(saved, compile=False)
        weights.update({f"saved_{i}": v.numpy() for i, v in enumerate(model.weights)})
    np.savez(weights_file, **weights)
    losses = [v for row in result["history"] for v in row["step_losses"]]
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "losses": losses}))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "pretrain":
        pretrain(*sys.argv[2:6], int(sys.argv[6]), "--slow" in sys.argv)
    elif mode == "mirrored":
        mirrored(sys.argv[2])
    elif mode == "multi_worker":
        multi_worker(*sys.argv[2:5], int(sys.argv[5]), sys.argv[6])
    else:
        raise SystemExit(f"unknown mode {mode}")
