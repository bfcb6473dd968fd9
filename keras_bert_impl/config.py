"""`BertConfig`: the hyper-parameters of a BERT encoder, its named presets, and
reading/writing the two JSON dialects in the wild (Google's `bert_config.json`
and Hugging Face's `config.json`)."""

import dataclasses
import json
import os

# Activation names as this package spells them. The original BERT used the tanh
# approximation of GELU; Hugging Face's "gelu" is the exact erf form.
ACTIVATIONS = ("gelu", "gelu_approximate", "relu", "silu", "tanh")

# Google's bert_config.json calls the tanh approximation "gelu" (modeling.py).
_GOOGLE_ACTIVATIONS = {"gelu": "gelu_approximate", "relu": "relu", "tanh": "tanh"}
_HF_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "gelu_fast": "gelu_approximate",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
    "tanh": "tanh",
}


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Hyper-parameters of a BERT encoder.

    Args:
        vocab_size: number of WordPiece ids.
        hidden_size: width of every hidden state.
        num_layers: number of transformer encoder blocks.
        num_heads: attention heads per block; must divide `hidden_size`.
        intermediate_size: width of the feed-forward inner layer.
        hidden_act: one of `ACTIVATIONS`. `"gelu"` is the exact erf form
            (Hugging Face), `"gelu_approximate"` the tanh form (original BERT).
        hidden_dropout: dropout rate on embeddings and block outputs.
        attention_dropout: dropout rate on attention probabilities.
        max_position_embeddings: longest sequence the model accepts.
        type_vocab_size: number of segment ids.
        initializer_range: stddev of the truncated-normal initializer.
        layer_norm_epsilon: epsilon of every LayerNorm.
        pruned_heads: the attention heads removed from each layer, as Hugging
            Face's `pruned_heads`: `{layer: heads}` with the heads' ORIGINAL
            indices in `[0, num_heads)`. Stored as `{int: sorted tuple}`;
            string layer keys (JSON) are accepted. Every layer keeps at least
            one head. Empty (the default) for an unpruned model.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_epsilon: float = 1e-12
    pruned_heads: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for name in (
            "vocab_size",
            "hidden_size",
            "num_layers",
            "num_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"BertConfig.{name} must be a positive integer, got {value!r}."
                )
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"BertConfig.hidden_size ({self.hidden_size}) must be divisible by "
                f"BertConfig.num_heads ({self.num_heads})."
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(
                f"BertConfig.hidden_act must be one of {ACTIVATIONS}, "
                f"got {self.hidden_act!r}."
            )
        for name in ("hidden_dropout", "attention_dropout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(
                    f"BertConfig.{name} must be a float in [0, 1), got {value!r}."
                )
        for name in ("initializer_range", "layer_norm_epsilon"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(
                    f"BertConfig.{name} must be a positive float, got {value!r}."
                )
        # Frozen: the normalised value goes in through object.__setattr__.
        object.__setattr__(
            self,
            "pruned_heads",
            _normalize_pruned_heads(self.pruned_heads, self.num_layers, self.num_heads),
        )

    def __hash__(self):
        # The dataclass hash would fail on the pruned_heads dict.
        values = self.to_dict()
        values["pruned_heads"] = tuple(self.pruned_heads.items())
        return hash(tuple(sorted(values.items())))

    @property
    def head_size(self):
        return self.hidden_size // self.num_heads

    def layer_num_heads(self, layer):
        """The number of attention heads layer `layer` keeps after pruning."""
        return self.num_heads - len(self.pruned_heads.get(layer, ()))

    def remaining_heads(self, layer):
        """The ORIGINAL indices of the heads layer `layer` keeps, in order (the
        order of their slices in the pruned weight matrices)."""
        pruned = set(self.pruned_heads.get(layer, ()))
        return tuple(h for h in range(self.num_heads) if h not in pruned)

    def replace(self, **changes):
        """Returns a copy with `changes` applied (validated like the original)."""
        fields = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ValueError(
                f"Unknown BertConfig field(s) {unknown}; valid fields are "
                f"{sorted(fields)}."
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """The fields as a dict; `pruned_heads` only when some are pruned (so an
        unpruned model's saved config is what it always was), with lists as
        values."""
        values = dataclasses.asdict(self)
        if self.pruned_heads:
            values["pruned_heads"] = {
                layer: list(heads) for layer, heads in self.pruned_heads.items()
            }
        else:
            del values["pruned_heads"]
        return values

    @classmethod
    def from_dict(cls, values):
        """Builds a config from `to_dict()` output, naming unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"Unknown BertConfig field(s) {unknown}; valid fields are "
                f"{sorted(known)}."
            )
        return cls(**values)

    @classmethod
    def preset(cls, name, **overrides):
        """Returns the named preset (see `PRESETS`) with `overrides` applied."""
        if name not in PRESETS:
            raise ValueError(
                f"Unknown BertConfig preset {name!r}; presets are {sorted(PRESETS)}."
            )
        return PRESETS[name].replace(**overrides)

    # --- JSON dialects -------------------------------------------------------

    def to_google_dict(self):
        """The fields of google-research/bert's `bert_config.json`."""
        if self.pruned_heads:
            raise ValueError(
                "BertConfig.pruned_heads (a pruned model) has no bert_config.json "
                "field: Google's format assumes num_heads heads in every layer. "
                "Write a Hugging Face config.json instead."
            )
        if self.hidden_act == "gelu":
            # Google's format has no name for exact GELU.
            raise ValueError(
                "BertConfig.hidden_act='gelu' (exact erf) has no bert_config.json "
                "name: Google's 'gelu' is the tanh approximation. Use "
                "hidden_act='gelu_approximate' or write a Hugging Face config."
            )
        act = {"gelu_approximate": "gelu"}.get(self.hidden_act, self.hidden_act)
        return {
            "attention_probs_dropout_prob": self.attention_dropout,
            "hidden_act": act,
            "hidden_dropout_prob": self.hidden_dropout,
            "hidden_size": self.hidden_size,
            "initializer_range": self.initializer_range,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "num_attention_heads": self.num_heads,
            "num_hidden_layers": self.num_layers,
            "type_vocab_size": self.type_vocab_size,
            "vocab_size": self.vocab_size,
        }

    def to_huggingface_dict(self):
        """The fields of a transformers `BertConfig` `config.json`."""
        act = {"gelu_approximate": "gelu_new"}.get(self.hidden_act, self.hidden_act)
        return {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "attention_probs_dropout_prob": self.attention_dropout,
            "hidden_act": act,
            "hidden_dropout_prob": self.hidden_dropout,
            "hidden_size": self.hidden_size,
            "initializer_range": self.initializer_range,
            "intermediate_size": self.intermediate_size,
            "layer_norm_eps": self.layer_norm_epsilon,
            "max_position_embeddings": self.max_position_embeddings,
            "num_attention_heads": self.num_heads,
            "num_hidden_layers": self.num_layers,
            "type_vocab_size": self.type_vocab_size,
            "vocab_size": self.vocab_size,
            "position_embedding_type": "absolute",
            "pad_token_id": 0,
            # transformers' convention: JSON object keys are strings.
            **(
                {
                    "pruned_heads": {
                        str(layer): list(heads)
                        for layer, heads in self.pruned_heads.items()
                    }
                }
                if self.pruned_heads
                else {}
            ),
        }

    @classmethod
    def from_json_dict(cls, values, source="config"):
        """Reads either dialect. A `layer_norm_eps` or `model_type` key marks
        Hugging Face's (exact-erf "gelu"); otherwise Google's (tanh "gelu")."""
        is_hf = "model_type" in values or "layer_norm_eps" in values
        if is_hf and values.get("model_type", "bert") != "bert":
            raise ValueError(
                f"{source}: model_type {values['model_type']!r} is not 'bert'."
            )
        if is_hf and values.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(
                f"{source}: position_embedding_type "
                f"{values['position_embedding_type']!r} is not supported; only "
                "'absolute' is."
            )
        required = (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
        )
        missing = [key for key in required if key not in values]
        if missing:
            raise ValueError(f"{source}: missing required key(s) {missing}.")
        table = _HF_ACTIVATIONS if is_hf else _GOOGLE_ACTIVATIONS
        act = values.get("hidden_act", "gelu")
        if act not in table:
            raise ValueError(
                f"{source}: hidden_act {act!r} is not supported; supported values "
                f"are {sorted(table)}."
            )
        defaults = cls()
        return cls(
            vocab_size=values["vocab_size"],
            hidden_size=values["hidden_size"],
            num_layers=values["num_hidden_layers"],
            num_heads=values["num_attention_heads"],
            intermediate_size=values["intermediate_size"],
            hidden_act=table[act],
            hidden_dropout=values.get("hidden_dropout_prob", defaults.hidden_dropout),
            attention_dropout=values.get(
                "attention_probs_dropout_prob", defaults.attention_dropout
            ),
            max_position_embeddings=values.get(
                "max_position_embeddings", defaults.max_position_embeddings
            ),
            type_vocab_size=values.get("type_vocab_size", defaults.type_vocab_size),
            initializer_range=values.get(
                "initializer_range", defaults.initializer_range
            ),
            layer_norm_epsilon=values.get(
                "layer_norm_eps", defaults.layer_norm_epsilon
            ),
            pruned_heads=values.get("pruned_heads") or {},
        )

    @classmethod
    def from_json_file(cls, path):
        """Reads a Google `bert_config.json` or a Hugging Face `config.json`."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"BERT config file not found: {path}")
        with open(path, encoding="utf-8") as f:
            try:
                values = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} is not valid JSON: {e}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object.")
        return cls.from_json_dict(values, source=path)

    def write_json_file(self, path, dialect="huggingface"):
        """Writes `config.json` (`dialect="huggingface"`) or
        `bert_config.json` (`dialect="google"`)."""
        if dialect == "huggingface":
            values = self.to_huggingface_dict()
        elif dialect == "google":
            values = self.to_google_dict()
        else:
            raise ValueError(
                f"dialect must be 'huggingface' or 'google', got {dialect!r}."
            )
        with open(path, "w", encoding="utf-8") as f:
            json.dump(values, f, indent=2, sort_keys=True)
            f.write("\n")


def _as_index(value, what, limit):
    """An int index in [0, limit) from an int or a string of one (JSON keys)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
        raise ValueError(
            f"BertConfig.pruned_heads: {what} {value!r} is not an integer in "
            f"[0, {limit})."
        )
    return value


def _normalize_pruned_heads(pruned_heads, num_layers, num_heads):
    """{layer: head indices} → {int layer: sorted tuple of distinct heads}, layers
    in order and without empty entries; raises ValueError naming what is wrong."""
    if pruned_heads is None:
        return {}
    if not isinstance(pruned_heads, dict):
        raise ValueError(
            "BertConfig.pruned_heads must be a dict {layer: [head, ...]} of the "
            f"heads removed per layer, got {type(pruned_heads).__name__}."
        )
    normalized = {}
    for key, heads in pruned_heads.items():
        layer = _as_index(key, "layer", num_layers)
        if isinstance(heads, (str, bytes)) or not hasattr(heads, "__iter__"):
            raise ValueError(
                f"BertConfig.pruned_heads[{layer}] must be a list of head indices, "
                f"got {heads!r}."
            )
        found = {_as_index(h, f"layer {layer}'s head", num_heads) for h in heads}
        found |= set(normalized.get(layer, ()))  # "1" and 1 both given
        if len(found) >= num_heads:
            raise ValueError(
                f"BertConfig.pruned_heads[{layer}] removes all {num_heads} heads of "
                "the layer; at least one head must remain in every layer."
            )
        if found:
            normalized[layer] = tuple(sorted(found))
    return dict(sorted(normalized.items()))


def _preset(num_layers, hidden_size):
    # The BERT family (Turc et al., 2019): 64-wide heads, 4x feed-forward.
    return BertConfig(
        num_layers=num_layers,
        hidden_size=hidden_size,
        num_heads=hidden_size // 64,
        intermediate_size=4 * hidden_size,
    )


PRESETS = {
    "tiny": _preset(2, 128),
    "mini": _preset(4, 256),
    "small": _preset(4, 512),
    "medium": _preset(8, 512),
    "base": _preset(12, 768),
    "large": _preset(24, 1024),
}
