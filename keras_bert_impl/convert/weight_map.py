"""One naming of every BERT weight, shared by all checkpoint formats.

Each weight of a model gets a *canonical name*: google-research/bert's
variable name without its `bert/` scope (`encoder/layer_3/attention/self/query/kernel`,
`cls/predictions/output_bias`), in Keras layout (kernels `[in, out]`). Models
declare their own (`checkpoint_weights`, see `keras_bert_impl.models.checkpoint_names`);
a format module only translates those names and layouts, and knows no model
class. Checking that a checkpoint fits a model lives here, once.
"""

import logging

import numpy as np

logger = logging.getLogger(__name__)

# The heads the checkpoint formats carry, in canonical names: google-research/bert's
# pretraining heads (`cls/`), run_classifier.py's and transformers' classifiers
# (`classifier/`), run_squad.py's span head (`qa_outputs/`). A checkpoint tensor of a
# head the model does not have is skipped (a pretrained checkpoint loaded into a
# classifier); any other name the model lacks is an error.
HEAD_NAMES = frozenset(
    {
        "cls/predictions/transform/dense/kernel",
        "cls/predictions/transform/dense/bias",
        "cls/predictions/transform/LayerNorm/gamma",
        "cls/predictions/transform/LayerNorm/beta",
        "cls/predictions/output_bias",
        "cls/seq_relationship/output_weights",
        "cls/seq_relationship/output_bias",
        "classifier/kernel",
        "classifier/bias",
        "qa_outputs/kernel",
        "qa_outputs/bias",
    }
)


def model_weights(model):
    """Canonical name → variable for a backbone or any task model (built here)."""
    model.build()
    return model.checkpoint_weights()


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
    head_names = set(model.head_checkpoint_weights())
    unknown, wrong_shape, other_heads = [], [], []
    for name, value in tensors.items():
        if name in ignored:
            continue
        if name not in weights:
            (other_heads if name in HEAD_NAMES else unknown).append(name)
            continue
        expected = tuple(weights[name].shape)
        if tuple(value.shape) != expected:
            wrong_shape.append(
                f"{name}: checkpoint {tuple(value.shape)}, model {expected}"
            )
    missing = sorted(set(weights) - set(tensors))
    missing_head = [m for m in missing if m in head_names]
    missing_backbone = [m for m in missing if m not in head_names]
    problems = []
    if unknown:
        problems.append(f"unknown tensors {sorted(unknown)}")
    if wrong_shape:
        problems.append(f"mis-shaped tensors {wrong_shape}")
    if missing_backbone:
        problems.append(f"missing tensors {missing_backbone}")
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
