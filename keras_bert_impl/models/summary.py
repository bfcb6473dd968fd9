"""`model.summary()` that says what the model is, not only its layer table.

Keras lists a subclassed model's layers with unknown output shapes and, before
the first call, no weights. BERT's shapes all follow from its config, so the
summary builds the model first and opens with the config, the head and the
preprocessor.
"""


def _heads(config):
    if not config.pruned_heads:
        return f"{config.num_heads} heads"
    kept = [config.layer_num_heads(i) for i in range(config.num_layers)]
    return f"heads per layer {kept} of {config.num_heads} (pruned)"


def _config_line(config):
    return (
        f"{config.num_layers} layers, hidden {config.hidden_size}, "
        f"{_heads(config)}, intermediate {config.intermediate_size}, "
        f"vocabulary {config.vocab_size:,}, up to {config.max_position_embeddings} "
        f"positions, {config.hidden_act}"
    )


def describe(model):
    """Lines naming the model's config, head and preprocessor."""
    lines = [f"{type(model).__name__}: {_config_line(model.config)}"]
    num_classes = getattr(model, "num_classes", None)
    if num_classes is not None:
        names = getattr(model, "label_names", None)
        head = "regression (1 output)" if num_classes == 1 else f"{num_classes} classes"
        lines.append(f"head: {head}" + (f": {', '.join(names)}" if names else ""))
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is not None:
        tokenizer = preprocessor.tokenizer
        lines.append(
            f"preprocessor: {type(preprocessor).__name__}, sequence_length "
            f"{preprocessor.sequence_length}, vocabulary {tokenizer.vocab_size:,}, "
            f"{'lower-cased' if tokenizer.lowercase else 'cased'}"
        )
    elif hasattr(model, "preprocessor"):
        lines.append("preprocessor: none (inputs are token-id dicts)")
    return lines


class InformativeSummary:
    """Mixin for the BERT models: `summary()` builds first and opens with `describe`."""

    def summary(self, *args, print_fn=None, **kwargs):
        if not self.built:
            self.build()
        for line in describe(self):
            (print_fn or print)(line)
        super().summary(*args, print_fn=print_fn, **kwargs)
