"""A distillation student: a shallower copy of a task model, initialised from
some of its teacher's encoder blocks (DistilBERT, PKD's "skip" layers)."""

import keras

from keras_bert_impl.models import BertClassifier
from keras_bert_impl.models import BertTokenClassifier

# The task models a teacher or a student can be.
TASKS = (BertClassifier, BertTokenClassifier)


def check_task(model, role):
    if not isinstance(model, TASKS):
        raise ValueError(
            f"The {role} must be a BertClassifier or a BertTokenClassifier; got "
            f"{type(model).__name__}."
        )


def _layer_map(num_layers, layers):
    layers = [int(i) for i in layers]
    if not layers or any(not 0 <= i < num_layers for i in layers):
        raise ValueError(
            f"Student layers {layers} must be a non-empty list of teacher layer "
            f"indices in [0, {num_layers - 1}]."
        )
    if len(set(layers)) != len(layers):
        raise ValueError(f"Student layers {layers} repeat a teacher layer.")
    return layers


def _student_config(teacher, layers, preprocessor):
    config = teacher.get_config()
    if preprocessor is not None:
        config["preprocessor"] = keras.saving.serialize_keras_object(preprocessor)
    backbone = dict(config["backbone"])
    backbone_config = dict(backbone["config"])
    bert_config = dict(backbone_config["config"])
    bert_config["num_layers"] = len(layers)
    pruned = bert_config.get("pruned_heads")
    if pruned:
        # Pruned heads are listed per layer index: follow the kept layers.
        new_index = {old: new for new, old in enumerate(layers)}
        bert_config["pruned_heads"] = {
            str(new_index[int(old)]): heads
            for old, heads in pruned.items()
            if int(old) in new_index
        }
    backbone_config["config"] = bert_config
    backbone_config["name"] = "backbone"
    backbone["config"] = backbone_config
    config["backbone"] = backbone
    config["name"] = f"{teacher.name}_{len(layers)}_layer_student"
    return config


def student_from_teacher(teacher, layers, preprocessor=None):
    """A shallower copy of a task model, initialised from some of its layers.

    The student keeps the teacher's embeddings, pooler, task head,
    preprocessor and label names, and encoder block `layers[i]` of the
    teacher as its block `i` (e.g. `[0, 2, 4]` of 6, as in DistilBERT and
    PKD's "skip" initialisation).

    Args:
        teacher: a float32 `BertClassifier` or `BertTokenClassifier`.
        layers: teacher block indices, in the order the student runs them.
        preprocessor: the student's preprocessor (default: the teacher's),
            e.g. the same vocabulary with length buckets for training.

    Returns:
        A new, uncompiled model of the teacher's class.
    """
    check_task(teacher, "teacher")
    teacher.build()
    layers = _layer_map(teacher.config.num_layers, layers)
    student = type(teacher).from_config(_student_config(teacher, layers, preprocessor))
    student.build()
    pairs = [
        (student.backbone.embeddings, teacher.backbone.embeddings),
        (student.backbone.pooled_dense, teacher.backbone.pooled_dense),
        (student.head, teacher.head),
    ] + [
        (student.backbone.transformer_layers[i], teacher.backbone.transformer_layers[j])
        for i, j in enumerate(layers)
    ]
    for target, origin in pairs:
        target.set_weights(origin.get_weights())
    return student
