"""Import and export Hugging Face `transformers` BERT checkpoints.

Reads `config.json` plus `model.safetensors` (or `pytorch_model.bin` when
torch is importable); writes `config.json` plus `model.safetensors` that
`transformers.AutoModel*.from_pretrained` loads.
"""

import json
import os
import re
import shutil

import numpy as np

from keras_bert_impl.config import BertConfig
from keras_bert_impl.convert.weight_map import HEAD_NAMES
from keras_bert_impl.convert.weight_map import load_canonical
from keras_bert_impl.convert.weight_map import model_weights

# Names that differ beyond the mechanical "/" ↔ "." translation.
_SPECIAL = {
    "cls/predictions/output_bias": "cls.predictions.bias",
    "cls/seq_relationship/output_weights": "cls.seq_relationship.weight",
    "cls/seq_relationship/output_bias": "cls.seq_relationship.bias",
}
_SPECIAL_INVERSE = {v: k for k, v in _SPECIAL.items()}

# Tensors that carry no trainable weight of their own.
_IGNORED = (
    "embeddings.position_ids",
    "cls.predictions.decoder.weight",  # tied to the word embeddings
    "cls.predictions.decoder.bias",  # the same tensor as cls.predictions.bias
)


def _is_transposed(canonical):
    # torch Linear stores [out, in]; Keras kernels are [in, out].
    return (
        canonical.endswith("/kernel")
        or canonical == "cls/seq_relationship/output_weights"
    )


def hf_name(canonical):
    """Canonical weight name → the `BertModel` state-dict key (no `bert.`)."""
    if canonical in _SPECIAL:
        return _SPECIAL[canonical]
    name = re.sub(r"layer_(\d+)", r"layer.\1", canonical)
    parts = name.split("/")
    if parts[-1].endswith("_embeddings"):
        return ".".join(parts) + ".weight"
    last = {"kernel": "weight", "gamma": "weight", "beta": "bias"}.get(
        parts[-1], parts[-1]
    )
    return ".".join(parts[:-1] + [last])


def canonical_name(hf_key):
    """A state-dict key → canonical name (None for keys with no meaning here)."""
    key = hf_key[len("bert.") :] if hf_key.startswith("bert.") else hf_key
    key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
        "LayerNorm.beta", "LayerNorm.bias"
    )
    if key in _SPECIAL_INVERSE:
        return _SPECIAL_INVERSE[key]
    parts = re.sub(r"layer\.(\d+)", r"layer_\1", key).split(".")
    if len(parts) < 2:
        return None
    stem, last = parts[:-1], parts[-1]
    if stem[-1].endswith("_embeddings") and last == "weight":
        return "/".join(stem)
    if stem[-1] == "LayerNorm":
        last = {"weight": "gamma", "bias": "beta"}.get(last, last)
    elif last == "weight":
        last = "kernel"
    return "/".join(stem + [last])


def _read_state_dict(directory):
    safetensors_path = os.path.join(directory, "model.safetensors")
    torch_path = os.path.join(directory, "pytorch_model.bin")
    if os.path.isfile(safetensors_path):
        from safetensors.numpy import load_file

        return load_file(safetensors_path), safetensors_path
    if os.path.isfile(torch_path):
        try:
            import torch
        except ImportError:
            raise ImportError(
                f"{torch_path} is a PyTorch pickle and torch is not installed; "
                "install torch or convert the checkpoint to model.safetensors."
            ) from None
        state = torch.load(torch_path, map_location="cpu", weights_only=True)
        return {k: v.float().numpy() for k, v in state.items()}, torch_path
    raise FileNotFoundError(
        f"{directory} has neither model.safetensors nor pytorch_model.bin."
    )


def from_huggingface(directory, model_cls, **kwargs):
    """Builds `model_cls` from a Hugging Face BERT directory.

    Args:
        directory: holds `config.json` and `model.safetensors` (or
            `pytorch_model.bin`).
        model_cls: `BertBackbone` or a task model class (any class built from
            a `BertConfig` that declares `checkpoint_weights`); its head loads when
            the checkpoint has it (`BertForPreTraining` → `BertPretrainer`,
            `BertForSequenceClassification` → `BertClassifier`, …) and is
            freshly initialised, with a warning, when it does not.
        **kwargs: passed to `model_cls` (e.g. `num_classes`, `dtype`).

    Raises:
        ValueError: listing unknown, missing or mis-shaped tensors.
    """
    directory = os.fspath(directory)
    config = BertConfig.from_json_file(os.path.join(directory, "config.json"))
    state, source = _read_state_dict(directory)
    tensors, ignored = {}, set()
    for key, value in state.items():
        short = key[len("bert.") :] if key.startswith("bert.") else key
        canonical = canonical_name(key)
        if short in _IGNORED or key in _IGNORED:
            ignored.add(canonical)
            continue
        value = np.asarray(value, dtype=np.float32)
        if canonical is not None and _is_transposed(canonical):
            value = value.T
        tensors[canonical if canonical is not None else key] = value
    model = model_cls(config, **kwargs)
    load_canonical(model, tensors, source, ignored=ignored)
    return model


PRUNED_HEADS = ("shrink", "pad")


def _padded_heads(canonical, value, config):
    """A pruned layer's attention tensor at full size, the pruned heads' slices
    zero: such a head attends uniformly to a zero value and adds nothing, so
    the outputs stay the same."""
    match = re.match(
        r"encoder/layer_(\d+)/attention/(self/\w+|output/dense)/(\w+)$", canonical
    )
    if not match or match.group(3) not in ("kernel", "bias"):
        return value
    layer, part, kind = int(match.group(1)), match.group(2), match.group(3)
    if layer not in config.pruned_heads or (part == "output/dense" and kind == "bias"):
        return value
    size = config.head_size
    columns = np.concatenate(
        [np.arange(h * size, (h + 1) * size) for h in config.remaining_heads(layer)]
    )
    axis = 0 if part == "output/dense" or kind == "bias" else 1
    shape = list(value.shape)
    shape[axis] = config.num_heads * size
    full = np.zeros(shape, value.dtype)
    if axis == 0:
        full[columns] = value
    else:
        full[:, columns] = value
    return full


def to_huggingface(model, directory, vocab_file=None, pruned_heads="shrink"):
    """Writes `model` as a Hugging Face checkpoint `transformers` loads.

    Args:
        model: a `BertBackbone` or task model.
        directory: created if needed; `config.json` and `model.safetensors`
            are written into it.
        vocab_file: optional `vocab.txt` copied alongside, so
            `BertTokenizerFast.from_pretrained(directory)` works too.
        pruned_heads: for a model with pruned heads: "shrink" writes the
            smaller attention matrices and `pruned_heads` in `config.json`
            (what transformers 4.x loads: it prunes the heads when it builds
            the model); "pad" writes full-size matrices whose pruned heads are
            zero and no `pruned_heads`, with the same outputs: transformers
            5.x, which dropped head pruning, loads that (and so does
            `from_huggingface`, as an unpruned model).
    """
    from safetensors.numpy import save_file

    architecture = getattr(model, "huggingface_architecture", None)
    if architecture is None:
        raise ValueError(
            "to_huggingface takes a BertBackbone, BertPretrainer, BertClassifier, "
            f"BertTokenClassifier or BertQuestionAnswerer, got {type(model).__name__}."
        )
    if pruned_heads not in PRUNED_HEADS:
        raise ValueError(
            f"pruned_heads must be one of {PRUNED_HEADS}, got {pruned_heads!r}."
        )
    config = model.config
    pad = pruned_heads == "pad" and bool(config.pruned_heads)
    os.makedirs(directory, exist_ok=True)
    is_backbone = architecture == "BertModel"
    weights = model_weights(model)
    state = {}
    for canonical, variable in weights.items():
        value = np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)
        value = value.astype(np.float32)
        if pad:
            value = _padded_heads(canonical, value, config)
        if _is_transposed(canonical):
            value = value.T
        name = hf_name(canonical)
        if not is_backbone and canonical not in HEAD_NAMES:
            name = "bert." + name
        state[name] = np.ascontiguousarray(value)
    if "cls/predictions/output_bias" in weights:
        # transformers ties the decoder to the word embeddings; it still
        # expects the decoder's own key, holding that same table.
        state["cls.predictions.decoder.weight"] = state[
            "bert.embeddings.word_embeddings.weight"
        ]
        state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    save_file(
        state, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"}
    )

    if pad:
        config = config.replace(pruned_heads={})
    values = config.to_huggingface_dict()
    values["architectures"] = [architecture]
    num_labels = getattr(model, "num_classes", None)
    if num_labels is not None:
        values["num_labels"] = num_labels
        values["id2label"] = {str(i): f"LABEL_{i}" for i in range(num_labels)}
        values["label2id"] = {f"LABEL_{i}": i for i in range(num_labels)}
        if architecture == "BertForSequenceClassification":
            values["problem_type"] = (
                "regression" if num_labels == 1 else "single_label_classification"
            )
    with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
        json.dump(values, f, indent=2, sort_keys=True)
        f.write("\n")
    if vocab_file is not None:
        shutil.copyfile(vocab_file, os.path.join(directory, "vocab.txt"))
    return directory
