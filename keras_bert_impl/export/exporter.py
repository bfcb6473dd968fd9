"""Writes a task model as a raw-text SavedModel in TF Serving's layout.

`export_dir/VERSION/` holds the SavedModel, `assets.extra/tf_serving_warmup_requests`
(requests built from example texts), `assets.extra/model_card.json` (task, config,
labels, vocabulary hash, source checkpoint, signatures, minimum TF Serving version) and
`batching_params.pbtxt` (server-side batching parameters, also written once as
`export_dir/batching_parameters.txt`; see `batching_files`).
"""

import hashlib
import json
import os

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from keras_bert_impl import internals
from keras_bert_impl.export import batching_files, serving_modules, warmup
from keras_bert_impl.export.layout import VersionWriter
from keras_bert_impl.export.servability import check_servability
from keras_bert_impl.export.question_answerer_module import QuestionAnswererModule
from keras_bert_impl.export.text_inputs import TextInputs
from keras_bert_impl.export.token_classifier_module import TokenClassifierModule
from keras_bert_impl.text.tokenizer import MIN_SERVING_VERSION

MODEL_CARD_FILE = os.path.join("assets.extra", "model_card.json")
# The vocabulary, for clients of the token-id signature and for checks (the graph keeps
# its own copy in constants).
VOCAB_FILE = os.path.join("assets.extra", "vocab.txt")

# Sentences of the kind users send (SST-2-like), for warmup when none are given.
DEFAULT_WARMUP_TEXTS = (
    "a gripping, beautifully [MASK] film that stays with you.",
    "The plot is thin and the dialogue is worse.",
    "Paris is the capital of France.",
    "It is neither as funny nor as clever as it thinks it is, but the cast is game "
    "and the pacing never drags.",
)


def read_model_card(saved_model_dir):
    """The export's model card (dict), or None when it has none."""
    path = os.path.join(saved_model_dir, MODEL_CARD_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def vocabulary_sha256(tokenizer):
    """SHA-256 of the vocabulary, one token per line (as vocab.txt is written)."""
    text = "".join(token + "\n" for token in tokenizer.vocabulary)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _signature_summary(saved_model_dir):
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    signatures = saved_model.meta_graphs[0].signature_def
    return {
        name: {
            "method_name": signature.method_name,
            "inputs": sorted(signature.inputs),
            "outputs": sorted(signature.outputs),
        }
        for name, signature in sorted(signatures.items())
        if not name.startswith("__")
    }


def _set_method_names(saved_model_dir, method_names):
    """Marks classify/regress signatures for TF Serving's Classify/Regress APIs.

    tf.saved_model.save writes every signature as a predict signature; the method name
    lives only in the SignatureDef, so it is set in saved_model.pb and the fingerprint
    is recomputed.
    """
    if not method_names:
        return
    path = os.path.join(saved_model_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        for name, method in method_names.items():
            meta_graph.signature_def[name].method_name = method
    with open(path, "wb") as f:
        f.write(saved_model.SerializeToString())
    fingerprint_path = os.path.join(saved_model_dir, "fingerprint.pb")
    if os.path.exists(fingerprint_path):
        with open(fingerprint_path, "wb") as f:
            f.write(internals.saved_model_fingerprint(saved_model_dir))


def _warmup_logs(module, model_name, texts):
    texts = list(texts)
    logs = [
        warmup.predict_log(model_name, signature, inputs)
        for signature, inputs in module.warmup_requests(texts)
    ]
    if "classify" in module.serving_signatures:
        logs.append(warmup.example_log(model_name, "classify", texts))
    if "regress" in module.serving_signatures:
        logs.append(warmup.example_log(model_name, "regress", texts, regression=True))
    return logs


def export_module(
    module,
    export_dir,
    version=None,
    warmup_texts=DEFAULT_WARMUP_TEXTS,
    source_checkpoint=None,
    extra_card=None,
    max_batch_size=None,
    batch_timeout_micros=batching_files.BATCH_TIMEOUT_MICROS,
):
    """Saves a `ServingModule` as `export_dir/VERSION` (next free version by default).

    `max_batch_size` (None: suited to the sequence length) and `batch_timeout_micros` go
    into the batching parameters files.

    Returns:
        the path of the new version directory.
    """
    model_name = os.path.basename(os.path.normpath(os.fspath(export_dir)))
    batching_text = batching_files.batching_text(
        module.text_inputs.max_seq_length, max_batch_size, batch_timeout_micros
    )
    writer = VersionWriter(export_dir, version)
    with writer as temp_dir:
        options = tf.saved_model.SaveOptions()
        module.track_variables(options)
        tf.saved_model.save(
            module, temp_dir, signatures=module.serving_signatures, options=options
        )
        _set_method_names(temp_dir, module.method_names)
        warmup.write_warmup_file(temp_dir, _warmup_logs(module, model_name, warmup_texts))
        report = check_servability(temp_dir)
        tokenizer = module.text_inputs.tokenizer
        card = {
            "task": module.task,
            "model_name": model_name,
            "version": writer.version,
            "config": module.model.config.to_dict(),
            "max_seq_length": module.text_inputs.max_seq_length,
            "bucket_lengths": list(module.text_inputs.bucket_lengths or []),
            "lowercase": tokenizer.lowercase,
            "vocabulary_size": tokenizer.vocab_size,
            "vocabulary_sha256": vocabulary_sha256(tokenizer),
            "source_checkpoint": source_checkpoint,
            "signatures": _signature_summary(temp_dir),
            "MIN_SERVING_VERSION": max(
                [report.min_server_version, MIN_SERVING_VERSION],
                key=lambda v: tuple(int(p) for p in v.split(".")),
            ),
            "exported_by": {"tensorflow": tf.__version__},
        }
        card.update(module.card())
        card.update(extra_card or {})
        with open(os.path.join(temp_dir, VOCAB_FILE), "w", encoding="utf-8") as f:
            f.writelines(token + "\n" for token in tokenizer.vocabulary)
        with open(os.path.join(temp_dir, MODEL_CARD_FILE), "w", encoding="utf-8") as f:
            json.dump(card, f, indent=2, sort_keys=True)
            f.write("\n")
        batching_files.write_version_file(temp_dir, batching_text)
    batching_files.write_server_file(writer.export_dir, batching_text)
    return writer.path


def _text_inputs(model, tokenizer, max_seq_length, bucket_lengths):
    """TextInputs from the given tokenizer, else the model's own preprocessor's (the
    tokenizer the model was trained with), and its sequence length by default."""
    preprocessor = getattr(model, "preprocessor", None)
    if tokenizer is None:
        if preprocessor is None:
            raise ValueError(
                f"{type(model).__name__} has no preprocessor: pass a tokenizer (a "
                "keras_bert_impl.text.Tokenizer built from the model's vocabulary)."
            )
        tokenizer = preprocessor.tokenizer
    if max_seq_length is None:
        max_seq_length = getattr(preprocessor, "sequence_length", None) or 128
    return TextInputs(tokenizer, max_seq_length, bucket_lengths)


def export_classifier(
    model, export_dir, tokenizer=None, labels=None, max_seq_length=None,
    bucket_lengths="auto", **kwargs,
):
    """Exports a `BertClassifier` (regression when num_classes == 1).

    Args:
        model: the classifier.
        export_dir: the model's base path; the version goes below it.
        tokenizer: default: the model's preprocessor's tokenizer.
        labels: class names; default the model's `label_names`, else "0", "1", ...
        max_seq_length: default the preprocessor's sequence length, else 128.
        bucket_lengths: "auto", a list, or None for fixed padding (see `text.Packer`).
        **kwargs: `export_module` arguments (version, warmup_texts, source_checkpoint).

    Returns:
        the new version's directory.
    """
    text_inputs = _text_inputs(model, tokenizer, max_seq_length, bucket_lengths)
    module = serving_modules.ClassifierModule(model, text_inputs, labels)
    return export_module(module, export_dir, **kwargs)


def export_embeddings(
    backbone, export_dir, tokenizer=None, normalize=True, max_seq_length=None,
    bucket_lengths="auto", **kwargs,
):
    """Exports a `BertBackbone` (or a task model's backbone) as text -> pooled_output,
    embedding (mean over real tokens, L2-normalised when `normalize`).
    Other arguments: see `export_classifier`."""
    text_inputs = _text_inputs(backbone, tokenizer, max_seq_length, bucket_lengths)
    backbone = getattr(backbone, "backbone", backbone)
    module = serving_modules.EmbeddingsModule(backbone, text_inputs, normalize)
    return export_module(module, export_dir, **kwargs)


def export_fill_mask(
    pretrainer, export_dir, tokenizer=None, top_k=5, max_seq_length=None,
    bucket_lengths="auto", **kwargs,
):
    """Exports a `BertPretrainer` as text with "[MASK]"s -> top-k tokens and scores.
    Other arguments: see `export_classifier`."""
    text_inputs = _text_inputs(pretrainer, tokenizer, max_seq_length, bucket_lengths)
    module = serving_modules.FillMaskModule(pretrainer, text_inputs, top_k)
    return export_module(module, export_dir, **kwargs)


def export_token_classifier(
    model, export_dir, tokenizer=None, labels=None, max_seq_length=None,
    bucket_lengths="auto", **kwargs,
):
    """Exports a `BertTokenClassifier` as text -> a tag per word and entity spans
    (see `TokenClassifierModule`); `labels` default to the model's tag names.
    Other arguments: see `export_classifier`."""
    text_inputs = _text_inputs(model, tokenizer, max_seq_length, bucket_lengths)
    module = TokenClassifierModule(model, text_inputs, labels)
    return export_module(module, export_dir, **kwargs)


def export_question_answerer(
    model, export_dir, tokenizer=None, max_seq_length=None, bucket_lengths="auto",
    doc_stride=None, max_query_length=None, max_answer_length=30, n_best_size=20,
    **kwargs,
):
    """Exports a `BertQuestionAnswerer` as question + context -> answer, start_char,
    end_char, score (see `QuestionAnswererModule`).

    Args:
        doc_stride, max_query_length: window settings; default the model's
            preprocessor's, else run_squad.py's in proportion to `max_seq_length`.
        max_answer_length, n_best_size: the answer search's (`predict_text`'s
            defaults).
        Other arguments: see `export_classifier`.
    """
    text_inputs = _text_inputs(model, tokenizer, max_seq_length, bucket_lengths)
    preprocessor = getattr(model, "preprocessor", None)
    if doc_stride is None and max_seq_length is None:
        doc_stride = getattr(preprocessor, "doc_stride", None)
    if max_query_length is None and max_seq_length is None:
        max_query_length = getattr(preprocessor, "max_query_length", None)
    module = QuestionAnswererModule(
        model,
        text_inputs,
        doc_stride=doc_stride,
        max_query_length=max_query_length,
        max_answer_length=max_answer_length,
        n_best_size=n_best_size,
    )
    return export_module(module, export_dir, **kwargs)
