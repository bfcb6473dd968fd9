"""BERT pretraining (masked LM + next sentence): the pure function behind
`kbi-pretrain` (google-research/bert's `run_pretraining.py`).

Input (`input_format`):
- "tfrecord": TFRecords written by `kbi-create-pretraining-data` (or
  google-research/bert's `create_pretraining_data.py`), read with their
  static masks, or re-masked in every batch with `dynamic_masking` (then
  `vocab_file` is needed for the special ids);
- "sentences" / "raw": text files in `kbi-create-pretraining-data`'s formats
  (one sentence, or one paragraph, per line; blank lines between
  documents). Each document is a passage for `BertPretrainingPreprocessor`,
  which draws next-sentence pairs and masks afresh in every batch; "raw"
  also ends sentences at `.`, `!` and `?`, "sentences" only at line breaks.
"""

import dataclasses
import functools
import os

import numpy as np
import tensorflow as tf

from keras_bert_impl.training.settings import INPUT_FORMATS
from keras_bert_impl.training.settings import check_mixed_precision
from keras_bert_impl.training.run_outputs import save_model, write_eval_results
from keras_bert_impl.training.model_loading import default_vocab_file, load_model
from keras_bert_impl.training.model_loading import resolve_config
from keras_bert_impl.training.model_loading import saved_preprocessor
from keras_bert_impl.training.optimization import create_optimizer
from keras_bert_impl.training.strategy import get_strategy, is_chief
from keras_bert_impl.training.trainer import Trainer, TrainerSettings
from keras_bert_impl.data.record_checks import check_record_files, check_record_ids

def _masker(settings):
    from keras_bert_impl.data import MaskedLMMasker
    from keras_bert_impl.text.vocab_file import load_vocabulary

    if not settings.vocab_file:
        raise ValueError("--dynamic_masking needs --vocab_file (for the special ids).")
    return MaskedLMMasker.from_vocabulary(
        load_vocabulary(settings.vocab_file),
        settings.max_predictions_per_seq,
        whole_word_mask=settings.do_whole_word_mask,
    )


def _check_schedule(settings):
    # Named by the flags: the schedule's own check speaks of its arguments.
    if not settings.do_train:
        return
    if settings.num_train_steps < 1:
        raise ValueError(
            f"--num_train_steps={settings.num_train_steps}: train at least one step."
        )
    if not 0 <= settings.num_warmup_steps <= settings.num_train_steps:
        raise ValueError(
            f"--num_warmup_steps={settings.num_warmup_steps} must be between 0 and "
            f"--num_train_steps={settings.num_train_steps} (warm-up is part of training)."
        )


def _check_input_format(settings):
    if settings.input_format not in INPUT_FORMATS:
        raise ValueError(
            f"Unknown --input_format={settings.input_format!r}; valid values are "
            f"{', '.join(INPUT_FORMATS)}."
        )
    if settings.input_format != "tfrecord" and not settings.vocab_file:
        raise ValueError(
            f"--input_format={settings.input_format} needs --vocab_file (text is "
            "tokenized while training)."
        )


def _preprocessor_arguments(settings):
    line_sentences = (
        {} if settings.input_format == "raw" else {"sentence_end_tokens": ()}
    )
    casing = (
        {} if settings.do_lower_case is None else {"lowercase": settings.do_lower_case}
    )
    return dict(
        sequence_length=settings.max_seq_length,
        max_predictions_per_seq=settings.max_predictions_per_seq,
        whole_word_mask=settings.do_whole_word_mask,
        **line_sentences,
        **casing,
    )


@functools.lru_cache(maxsize=2)
def _text_preprocessor(settings):
    """One preprocessor per run: training and evaluation share it (and its
    traced graph)."""
    from keras_bert_impl.preprocessing import BertPretrainingPreprocessor

    return BertPretrainingPreprocessor.from_preset(
        settings.vocab_file, seed=settings.seed, **_preprocessor_arguments(settings)
    )


def _saved_preprocessor(settings):
    """The preprocessor the saved model carries, so that it loads, predicts
    and exports without being told its vocabulary again: `vocab_file`
    (casing from `--do_lower_case`, else read off it), else the one saved in a
    `.keras` checkpoint, else the checkpoint's `vocab.txt`; None when there is
    no vocabulary."""
    from keras_bert_impl.preprocessing import BertPretrainingPreprocessor

    arguments = _preprocessor_arguments(settings)
    if settings.vocab_file:
        if not tf.io.gfile.exists(settings.vocab_file):
            raise ValueError(f"--vocab_file={settings.vocab_file} does not exist.")
        return BertPretrainingPreprocessor.from_preset(settings.vocab_file, **arguments)
    checkpoint = settings.init_checkpoint
    if checkpoint and checkpoint.endswith(".keras") and tf.io.gfile.exists(checkpoint):
        saved = saved_preprocessor(checkpoint)
        if saved is not None:
            lowercase = arguments.pop("lowercase", saved.tokenizer.lowercase)
            if lowercase != saved.tokenizer.lowercase:
                raise ValueError(
                    f"--do_lower_case={str(lowercase).lower()} contradicts "
                    f"--init_checkpoint={checkpoint}, whose tokenizer "
                    f"{'lower-cases' if saved.tokenizer.lowercase else 'keeps case'}: "
                    "leave --do_lower_case unset, or give --vocab_file as well."
                )
            return BertPretrainingPreprocessor(saved.tokenizer, **arguments)
    vocab_file = default_vocab_file(checkpoint)
    if vocab_file is None:
        return None
    return BertPretrainingPreprocessor.from_preset(vocab_file, **arguments)


def _pretrainer(settings, preprocessor, **kwargs):
    """The `BertPretrainer` to train, with one embedding row per token of
    the preprocessor's vocabulary: a preset's `vocab_size` gives way to the
    vocabulary's; an explicit config or checkpoint that disagrees is an
    error naming both."""
    from keras_bert_impl.models import BertPretrainer

    size = None if preprocessor is None else len(preprocessor.tokenizer.vocabulary)
    vocabulary = (
        f"--vocab_file={settings.vocab_file}"
        if settings.vocab_file
        else f"The vocabulary of --init_checkpoint={settings.init_checkpoint}"
    )
    if settings.init_checkpoint:
        model = load_model(
            BertPretrainer,
            settings.init_checkpoint,
            settings.bert_config_file,
            settings.config,
            preprocessor=preprocessor,
            **kwargs,
        )
        if size is not None and model.config.vocab_size != size:
            raise ValueError(
                f"{vocabulary} holds {size} tokens, but --init_checkpoint="
                f"{settings.init_checkpoint} has vocab_size="
                f"{model.config.vocab_size}: give the checkpoint's own vocabulary."
            )
        return model
    config = resolve_config(settings.bert_config_file, settings.config)
    if size is not None and config.vocab_size != size:
        if settings.bert_config_file:
            raise ValueError(
                f"{vocabulary} holds {size} tokens, but --bert_config_file="
                f"{settings.bert_config_file} says vocab_size={config.vocab_size}: "
                "make them agree (or give --config, which takes the vocabulary's size)."
            )
        config = dataclasses.replace(config, vocab_size=size)
    return BertPretrainer(config, preprocessor=preprocessor, **kwargs)


def text_pretraining_dataset(settings, file_patterns, batch_size, training):
    """Batches of text documents through `BertPretrainingPreprocessor`."""
    from keras_bert_impl.data.text_files import read_documents
    from keras_bert_impl.text.file_patterns import expand_file_patterns

    documents = [
        document
        for path in expand_file_patterns(file_patterns)
        for document in read_documents(path)
    ]
    if len(documents) < batch_size:
        raise ValueError(
            f"--input_file={file_patterns} holds {len(documents)} document(s), "
            f"fewer than one batch of {batch_size}."
        )
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(documents))
    if training:
        dataset = dataset.shuffle(len(documents), seed=settings.seed).repeat()
    dataset = dataset.batch(batch_size, drop_remainder=True)
    # One seed per batch from a seeded stream, not a stateful op inside the
    # parallel map: the same batches get the same pairs and masks in every
    # run, which exact resumption (a deterministic skip) needs.
    seeds = tf.data.Dataset.random(seed=settings.seed).batch(2)
    preprocessor = _text_preprocessor(settings)
    dataset = tf.data.Dataset.zip((dataset, seeds)).map(
        lambda texts, seed: preprocessor(texts, seed=seed),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def pretraining_input(settings, file_patterns, batch_size, training):
    """The `(x, y)` batches of `file_patterns` as the settings ask."""
    from keras_bert_impl.data import dynamic_masking_dataset, pretraining_dataset

    _check_input_format(settings)
    if settings.input_format != "tfrecord":
        return text_pretraining_dataset(settings, file_patterns, batch_size, training)
    options = dict(shuffle=training, seed=settings.seed, repeat=training)
    if settings.dynamic_masking:
        return dynamic_masking_dataset(
            file_patterns,
            batch_size,
            settings.max_seq_length,
            _masker(settings),
            **options,
        )
    return pretraining_dataset(
        file_patterns,
        batch_size,
        settings.max_seq_length,
        settings.max_predictions_per_seq,
        **options,
    )


def evaluate_pretraining(model, dataset, max_steps, call=None):
    """Held-out masked-LM accuracy/loss and next-sentence accuracy/loss,
    weighted over real predictions, as run_pretraining.py's `metric_fn`.

    `call`: the model's inference function, when the caller keeps one
    traced across evaluations (default: a new `tf.function`)."""
    if call is None:
        call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    hits = total = mlm_loss = 0.0
    nsp_hits = nsp_loss = examples = 0.0
    for step, (x, y) in enumerate(dataset):
        if step >= max_steps:
            break
        out = {k: v.numpy().astype(np.float64) for k, v in call(x).items()}
        ids, weights = y["masked_lm_ids"].numpy(), y["masked_lm_weights"].numpy()
        logits = out["mlm_logits"]
        log_probs = logits - logits.max(-1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
        picked = np.take_along_axis(log_probs, ids[..., None], -1)[..., 0]
        hits += float(((logits.argmax(-1) == ids) * weights).sum())
        mlm_loss += float((-picked * weights).sum())
        total += float(weights.sum())
        labels = y["next_sentence_labels"].numpy().reshape(-1)
        nsp = out["nsp_logits"] - out["nsp_logits"].max(-1, keepdims=True)
        nsp -= np.log(np.exp(nsp).sum(-1, keepdims=True))
        nsp_hits += float((nsp.argmax(-1) == labels).sum())
        nsp_loss += float(-nsp[np.arange(len(labels)), labels].sum())
        examples += len(labels)
    if not examples:
        raise ValueError("The evaluation input holds less than one batch.")
    return {
        "masked_lm_accuracy": hits / max(total, 1e-5),
        "masked_lm_loss": mlm_loss / max(total, 1e-5),
        "next_sentence_accuracy": nsp_hits / examples,
        "next_sentence_loss": nsp_loss / examples,
        "eval_examples": int(examples),
    }


def _check_ids(settings, vocab_size):
    if settings.input_format != "tfrecord":
        return  # tokenized with the vocabulary itself
    vocabulary = (
        f"--vocab_file={settings.vocab_file}"
        if settings.vocab_file
        else f"the model's vocabulary (vocab_size={vocab_size})"
    )
    inputs = [settings.input_file] if settings.do_train else []
    if settings.do_eval:
        inputs.append(settings.eval_input_file or settings.input_file)
    for file_patterns in dict.fromkeys(inputs):
        check_record_files(file_patterns)
        check_record_ids(file_patterns, vocab_size, vocabulary)


def run_pretraining(settings, strategy=None):
    """Pretrains (and/or evaluates) as `settings` asks; returns a dict with
    the training history rows and `eval_results`."""
    import keras

    check_mixed_precision(settings.mixed_precision)
    _check_input_format(settings)
    _check_schedule(settings)
    if strategy is None:
        strategy = get_strategy(settings.strategy, settings.tpu)
    keras.utils.set_random_seed(settings.seed)
    tf.io.gfile.makedirs(settings.output_dir)
    kwargs = {"dtype": settings.mixed_precision} if settings.mixed_precision else {}
    preprocessor = _saved_preprocessor(settings)
    trainer = Trainer(
        strategy,
        lambda: _pretrainer(settings, preprocessor, **kwargs),
        lambda: create_optimizer(
            settings.learning_rate,
            settings.num_train_steps,
            settings.num_warmup_steps,
            optimizer=settings.optimizer,
            weight_decay=settings.weight_decay,
        ),
        TrainerSettings(
            output_dir=settings.output_dir,
            num_train_steps=settings.num_train_steps,
            global_batch_size=settings.train_batch_size,
            steps_per_execution=settings.steps_per_execution,
            save_checkpoints_steps=settings.save_checkpoints_steps,
            jit_compile=settings.jit_compile,
            verbose=settings.verbose,
        ),
    )
    result = {}
    _check_ids(settings, trainer.model.config.vocab_size)
    eval_dataset = None
    if settings.do_eval:
        eval_dataset = pretraining_input(
            settings,
            settings.eval_input_file or settings.input_file,
            settings.eval_batch_size,
            False,
        )
    if settings.do_train:
        evaluate = None
        if eval_dataset is not None:
            # At every checkpoint too, so the curves show the held-out metrics.
            call = tf.function(
                lambda x: trainer.model(x, training=False), reduce_retracing=True
            )

            def evaluate(model):
                results = evaluate_pretraining(
                    model, eval_dataset, settings.max_eval_steps, call=call
                )
                results.pop("eval_examples")
                return results

        try:
            history = trainer.train(
                lambda: pretraining_input(
                    settings, settings.input_file, settings.train_batch_size, True
                ),
                evaluate=evaluate,
            )
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
            if " is not in [0, " in e.message or "outside the valid range" in e.message:
                # An id past the embedding table, or a label past the logits.
                raise ValueError(
                    f"--input_file={settings.input_file}: a token id past the "
                    f"model's vocab_size={trainer.model.config.vocab_size} "
                    f"({e.message.strip().splitlines()[0]}): the records were "
                    "made with another vocabulary."
                ) from e
            raise ValueError(
                f"--input_file={settings.input_file}: unreadable record: "
                f"{e.message.strip().splitlines()[0]}"
            ) from e
        result["history"] = history.rows
        if is_chief(strategy):
            save_model(trainer.model, os.path.join(settings.output_dir, "model.keras"))
    else:
        trainer.restore_latest()
    if settings.do_eval:
        results = evaluate_pretraining(
            trainer.model, eval_dataset, settings.max_eval_steps
        )
        results["global_step"] = int(trainer.step.numpy())
        if is_chief(strategy):
            write_eval_results(settings.output_dir, results)
        result["eval_results"] = results
    return result
