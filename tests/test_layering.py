"""Imports point one way: text ← data ← models ← training / export / serving.

A lower package never imports a higher one, not even inside a function, so
constants both need live in the lower one (`keras_bert_impl.constants`).
"""

import ast
import os

import pytest

PACKAGE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_bert_impl"
)
HIGHER = ("models", "preprocessing", "training", "export", "serving", "convert")
LOWER = {
    "text": HIGHER + ("data",),
    "data": HIGHER,
    "layers": HIGHER + ("data", "text"),
}


def imported_subpackages(folder):
    """(file, line, subpackage) for every keras_bert_impl import under `folder`."""
    for directory, _, files in os.walk(os.path.join(PACKAGE, folder)):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(directory, name)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                modules = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    modules = [node.module]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                for module in modules:
                    parts = module.split(".")
                    if parts[0] == "keras_bert_impl" and len(parts) > 1:
                        yield os.path.relpath(path, PACKAGE), node.lineno, parts[1]


@pytest.mark.parametrize("folder", sorted(LOWER))
def test_lower_packages_never_import_higher_ones(folder):
    upward = [
        f"{path}:{line} imports keras_bert_impl.{target}"
        for path, line, target in imported_subpackages(folder)
        if target in LOWER[folder]
    ]
    assert not upward
