"""A teacher's logits over the training data, computed once (and cached in a
file, so a second student or a rerun does not run the teacher again)."""

import hashlib
import os

import numpy as np

from keras_bert_impl.models import BertClassifier
from keras_bert_impl.models import text_datasets


def _fingerprint(teacher, x):
    digest = hashlib.sha256()
    digest.update(teacher.name.encode())
    digest.update(str(teacher.count_params()).encode())
    for variable in (teacher.head.kernel, teacher.head.bias):
        digest.update(np.asarray(variable).tobytes())
    for item in np.asarray(x["token_ids"] if isinstance(x, dict) else x).ravel():
        digest.update(item if isinstance(item, bytes) else str(item).encode())
    return digest.hexdigest()


def _length_bucketed(preprocessor):
    """The classifier preprocessor padding each batch only to its length
    bucket: the same tokens, so the same logits, for less padding (a text
    classifier's logits do not depend on padding)."""
    if preprocessor is None or preprocessor.bucket_lengths is not None:
        return preprocessor
    return preprocessor.with_bucket_lengths("auto")


def _text_list(texts):
    if isinstance(texts, (str, bytes)):
        return [texts]
    return list(texts.numpy() if hasattr(texts, "numpy") else texts)


def _logits_by_length(teacher, x, batch_size, verbose):
    """A classifier's logits on in-memory texts (or text pairs), run shortest
    first so that each batch pads only to its length bucket; returned in the
    input's order."""
    parts = x if isinstance(x, tuple) else (x,)
    parts = [_text_list(part) for part in parts]
    order = np.argsort(np.sum([[len(t) for t in p] for p in parts], 0), kind="stable")
    ordered = tuple([p[i] for i in order] for p in parts)
    dataset = text_datasets.text_dataset(
        _length_bucketed(teacher.preprocessor),
        ordered if len(ordered) > 1 else ordered[0],
        batch_size=batch_size,
        owner="teacher",
    )
    sorted_logits = np.asarray(teacher.predict(dataset, verbose=verbose), np.float32)
    logits = np.empty_like(sorted_logits)
    logits[order] = sorted_logits
    return logits


def teacher_logits(teacher, x, *, batch_size=32, cache_file=None, verbose=0):
    """The teacher's logits on `x`, in order, computed once.

    Args:
        teacher: the fine-tuned task model.
        x: texts (classifier; run shortest first, each batch padded only
            to its length bucket) or token dicts.
        batch_size: examples per teacher batch.
        cache_file: optional `.npz` path. When it holds logits of the same
            teacher on the same inputs they are read back; otherwise they are
            computed and written (atomically).
        verbose: Keras' predict verbosity.

    Returns:
        float32 logits, one row per example.
    """
    fingerprint = _fingerprint(teacher, x) if cache_file else None
    if cache_file and os.path.exists(cache_file):
        with np.load(cache_file) as cached:
            if str(cached["fingerprint"]) == fingerprint:
                return cached["logits"]
    if (
        isinstance(teacher, BertClassifier)
        and text_datasets.is_text(x)
        and not text_datasets.is_dataset(x)
    ):
        logits = _logits_by_length(teacher, x, batch_size, verbose)
    else:
        logits = np.asarray(
            teacher.predict(x, batch_size=batch_size, verbose=verbose), np.float32
        )
    if cache_file:
        directory = os.path.dirname(os.path.abspath(cache_file))
        os.makedirs(directory, exist_ok=True)
        partial = os.path.join(directory, f".{os.path.basename(cache_file)}.partial")
        with open(partial, "wb") as f:
            np.savez(f, logits=logits, fingerprint=np.asarray(fingerprint))
        os.replace(partial, cache_file)
    return logits
