"""Constants every layer of the package shares, with no imports of its own, so
that text, data and the models (which run without TensorFlow on JAX) all read
them from one place."""

PAD = "[PAD]"
UNK = "[UNK]"
CLS = "[CLS]"
SEP = "[SEP]"
MASK = "[MASK]"
# In this order at ids 0-4 of a vocabulary this package learns.
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)

# Label of positions a token-level loss skips ([CLS], [SEP], padding, a
# word's later pieces); Hugging Face's value, so labels interoperate.
IGNORE_LABEL = -100

# The backbone's inputs, by name: what every preprocessor produces, every
# dataset feeds and every export's `predict_ids` signature takes.
MODEL_INPUTS = ("token_ids", "segment_ids", "padding_mask")
