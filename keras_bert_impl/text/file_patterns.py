"""Expanding comma-separated file globs, the way every `--input_file` flag takes them."""

import os

import tensorflow as tf


def expand_file_patterns(patterns):
    """Expands globs into files: each pattern's matches sorted, in pattern
    order, without repeats. `tf.io.gfile` also reaches gs:// and other
    TensorFlow file systems.

    Args:
        patterns: a glob (str or path), a comma-separated string of globs, or a
            list of them.

    Raises:
        ValueError: no pattern given.
        TypeError: `patterns` is neither a string, a path nor a list of them.
        FileNotFoundError: naming every pattern that matches no file.
    """
    if isinstance(patterns, (str, os.PathLike)):
        patterns = os.fspath(patterns).split(",")
    try:
        patterns = [os.fspath(p).strip() for p in patterns if p]
    except TypeError:
        raise TypeError(
            "Input files must be a glob, a comma-separated string of globs, or a "
            f"list of them; got {patterns!r}."
        ) from None
    patterns = [p for p in patterns if p]
    if not patterns:
        raise ValueError("No input file pattern given.")
    files, unmatched = {}, []
    for pattern in patterns:
        matches = sorted(tf.io.gfile.glob(pattern))
        if not matches:
            unmatched.append(pattern)
        files.update(dict.fromkeys(matches))
    if unmatched:
        raise FileNotFoundError(
            "; ".join(f"Input pattern {p!r} matches no file" for p in unmatched)
            + ". Give existing files or globs such as 'data/part-*.txt'."
        )
    return list(files)
