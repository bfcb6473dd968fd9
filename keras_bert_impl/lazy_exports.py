"""Package names imported on first use (PEP 562).

`import keras_bert_impl.training` (or any module under a package) then costs
nothing until one of the package's names is used: the kbi-* commands define
their flags and answer `--help` without loading TensorFlow, and tools that
touch only text or data never load the models.
"""

import importlib
import sys


def lazy_exports(package, exports):
    """(`__getattr__`, `__dir__`) for `package`, whose public names
    `exports` maps to the modules that define them."""

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
