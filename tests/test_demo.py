"""The default job's embeddings equal sentence-transformers' on the same checkpoint."""

import os

import numpy as np
import pytest

from tests.model_helpers import real_checkpoint_dir
from tests.model_helpers import real_sentences
from keras_bert_impl_tools.demo import embed

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_demo_embeddings_match_sentence_transformers():
    sentence_transformers = pytest.importorskip(
        "sentence_transformers", reason="sentence-transformers is not installed"
    )
    sentences = real_sentences()[:12]
    ours = embed(sentences, real_checkpoint_dir(), seq_length=64)
    reference = sentence_transformers.SentenceTransformer(
        real_checkpoint_dir(), device="cpu"
    ).encode(sentences, normalize_embeddings=True)
    assert np.abs(ours - reference).max() < 1e-5
