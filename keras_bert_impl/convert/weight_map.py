"""One naming of every BERT weight, shared by all checkpoint formats.

Each weight of a model gets a *canonical name*: google-research/bert's
variable name without its `bert/` scope (`encoder/layer_3/attention/self/query/kernel`,
`cls/predictions/output_bias`), in Keras layout (kernels `[in, out]`). A format
module only translates those names and layouts; checking that a checkpoint
fits a model lives here, once.
"""

import functools
import logging

import numpy as np

from keras_bert_impl.config import BertConfig
from keras_bert_impl.models import BertClassifier
from keras_bert_impl.models import BertPretrainer
from keras_bert_impl.models import BertQuestionAnswerer
from keras_bert_impl.models import BertTokenClassifier

logger = logging.getLogger(__name__)

# Canonical-name prefix of each model's own head (absent from a backbone checkpoint).
HEAD_PREFIXES = {
    BertPretrainer: ("cls/",),
    BertClassifier: ("classifier/",),
    BertTokenClassifier: ("classifier/",),
    BertQuestionAnswerer: ("qa_outputs/",),
}


def _dense(prefix, layer):
    return {f"{prefix}/kernel": layer.kernel, f"{prefix}/bias": layer.bias}


def _layer_norm(prefix, layer):
    return {f"{prefix}/gamma": layer.gamma, f"{prefix}/beta": layer.beta}


def backbone_weights(backbone):
    """Canonical name → variable for a `BertBackbone`."""
    emb = backbone.embeddings
    names = {
        "embeddings/word_embeddings": emb.token_embedding.embeddings,
        "embeddings/position_embeddings": emb.position_embedding.embeddings,
        "embeddings/token_type_embeddings": emb.segment_embedding.embeddings,
        **_layer_norm("embeddings/LayerNorm", emb.embeddings_layer_norm),
    }
    for i, block in enumerate(backbone.transformer_layers):
        p = f"encoder/layer_{i}"
        attention = block.self_attention
        names.update(_dense(f"{p}/attention/self/query", attention.query))
        names.update(_dense(f"{p}/attention/self/key", attention.key))
        names.update(_dense(f"{p}/attention/self/value", attention.value))
        names.update(_dense(f"{p}/attention/output/dense", attention.output_dense))
        names.update(
            _layer_norm(f"{p}/attention/output/LayerNorm", block.attention_layer_norm)
        )
        names.update(_dense(f"{p}/intermediate/dense", block.intermediate_dense))
        names.update(_dense(f"{p}/output/dense", block.output_dense))
        names.update(_layer_norm(f"{p}/output/LayerNorm", block.output_layer_norm))
    names.update(_dense("pooler/dense", backbone.pooled_dense))
    return names


def head_weights(model):
    """Canonical name → variable for the head(s) a task model adds."""
    if isinstance(model, BertPretrainer):
        return {
            **_dense("cls/predictions/transform/dense", model.mlm_head.transform_dense),
            **_layer_norm(
                "cls/predictions/transform/LayerNorm",
                model.mlm_head.transform_layer_norm,
            ),
            "cls/predictions/output_bias": model.mlm_head.output_bias,
            "cls/seq_relationship/output_weights": model.nsp_head.kernel,
            "cls/seq_relationship/output_bias": model.nsp_head.bias,
        }
    if isinstance(model, (BertClassifier, BertTokenClassifier)):
        return _dense("classifier", model.head)
    if isinstance(model, BertQuestionAnswerer):
        return _dense("qa_outputs", model.span_head)
    return {}


def model_weights(model):
    """Canonical name → variable for a backbone or any task model."""
    model.build()
    backbone = getattr(model, "backbone", model)
    return {**backbone_weights(backbone), **head_weights(model)}


@functools.lru_cache(maxsize=None)
def known_names(num_layers):
    """Every canonical name any model with `num_layers` blocks has.

    Built from the smallest such models, so it can never drift from
    `model_weights`.
    """
    config = BertConfig(
        vocab_size=2,
        hidden_size=2,
        num_layers=num_layers,
        num_heads=1,
        intermediate_size=2,
        max_position_embeddings=2,
        type_vocab_size=1,
    )
    names = set()
    for model in (
        BertPretrainer(config),
        BertClassifier(config),
        BertQuestionAnswerer(config),
    ):
        names.update(model_weights(model))
    return frozenset(names)


def load_canonical(model, tensors, source, ignored=()):
    """Assigns `tensors` (canonical name → array) to `model`'s variables.

    Never loads partially without saying so: it raises listing every
    unknown, mis-shaped or missing backbone tensor. A task model's own head
    may be absent from a checkpoint (a backbone-only checkpoint loaded into a
    classifier): that head keeps its fresh initialisation and a warning names
    it. Tensors of heads the model does not have are skipped with a log line.

    Args:
        model: a built `BertBackbone` or task model.
        tensors: dict canonical name → numpy array (Keras layout).
        source: the checkpoint's path, for messages.
        ignored: names known to carry no weight (buffers such as position ids).
    """
    weights = model_weights(model)
    known = known_names(model.config.num_layers)
    head_prefixes = HEAD_PREFIXES.get(type(model), ())
    unknown, wrong_shape, other_heads = [], [], []
    for name, value in tensors.items():
        if name in ignored:
            continue
        if name not in weights:
            (other_heads if name in known else unknown).append(name)
            continue
        expected = tuple(weights[name].shape)
        if tuple(value.shape) != expected:
            wrong_shape.append(
                f"{name}: checkpoint {tuple(value.shape)}, model {expected}"
            )
    missing = sorted(set(weights) - set(tensors))
    missing_head = [m for m in missing if m.startswith(head_prefixes)]
    missing_backbone = [m for m in missing if not m.startswith(head_prefixes)]
    problems = []
    if unknown:
        problems.append(f"unknown tensors {sorted(unknown)}")
    if wrong_shape:
        problems.append(f"mis-shaped tensors {wrong_shape}")
    if missing_backbone:
        problems.append(f"missing tensors {missing_backbone}")
    head_names = [n for n in weights if n.startswith(head_prefixes)]
    if missing_head and len(missing_head) != len(head_names):
        problems.append(f"head only partly present; missing {missing_head}")
    if problems:
        raise ValueError(
            f"Checkpoint {source} does not fit {type(model).__name__} "
            f"({model.config}): " + "; ".join(problems) + "."
        )
    if missing_head:
        logger.warning(
            "%s has no weights for the %s head (%s): they keep their fresh "
            "initialisation.",
            source,
            type(model).__name__,
            ", ".join(missing_head),
        )
    if other_heads:
        logger.info(
            "%s: skipped tensors of heads %s does not have: %s",
            source,
            type(model).__name__,
            sorted(other_heads),
        )
    for name, variable in weights.items():
        if name in tensors:
            variable.assign(np.asarray(tensors[name], dtype=variable.dtype))
