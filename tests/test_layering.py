"""Imports point one way: text ← data ← models ← training / export / serving ←
tasks ← cli.

A lower package never imports a higher one, not even inside a function or
through `importlib.import_module`, so constants both need live in the lower one
(`keras_bert_impl.constants`).
"""

import ast
import os
import sys

import pytest

PACKAGE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_bert_impl"
)
HIGHER = (
    "models", "preprocessing", "training", "export", "serving", "convert", "tasks"
)
LOWER = {
    "text": HIGHER + ("data",),
    "data": HIGHER,
    "layers": HIGHER + ("data", "text"),
    # The checkpoint formats know no model class: models declare their weights'
    # canonical names, and from_preset (models) calls the readers.
    "convert": ("models", "preprocessing", "training", "export", "serving", "tasks"),
    "models": ("training", "export", "serving", "tasks"),
    # A task asks the trainer and the exporter; neither knows any task.
    "training": ("export", "serving", "tasks"),
    "export": ("training", "tasks"),
}


def _is_import_module_call(node):
    """`importlib.import_module("keras_bert_impl....")` or `import_module(...)`
    with a literal name: an import all the same, made at run time."""
    if not isinstance(node, ast.Call) or not node.args:
        return False
    function = node.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
    argument = node.args[0]
    return (
        name == "import_module"
        and isinstance(argument, ast.Constant)
        and isinstance(argument.value, str)
    )


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
                elif _is_import_module_call(node):
                    modules = [node.args[0].value]
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


def test_nothing_in_the_package_imports_its_commands():
    """The kbi-* commands (`cli`) sit on top: a library call never runs one."""
    folders = [
        name
        for name in os.listdir(PACKAGE)
        if os.path.isdir(os.path.join(PACKAGE, name)) and name not in ("cli", "__pycache__")
    ]
    assert "serving" in folders
    upward = [
        f"{path}:{line} imports keras_bert_impl.cli"
        for folder in folders
        for path, line, target in imported_subpackages(folder)
        if target == "cli"
    ]
    assert not upward


def test_run_time_imports_are_seen(tmp_path, monkeypatch):
    """An upward import through importlib counts like an import statement."""
    folder = tmp_path / "text"
    folder.mkdir()
    (folder / "sneaky.py").write_text(
        "import importlib\n\n"
        "def f():\n"
        "    return importlib.import_module('keras_bert_impl.models.task')\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", str(tmp_path))
    assert list(imported_subpackages("text")) == [
        (os.path.join("text", "sneaky.py"), 4, "models")
    ]


def subpackage_graph():
    """{subpackage: the other subpackages it imports} over the whole package."""
    graph = {}
    for name in sorted(os.listdir(PACKAGE)):
        if os.path.isdir(os.path.join(PACKAGE, name)) and name != "__pycache__":
            graph[name] = {
                target
                for _, _, target in imported_subpackages(name)
                if target != name and os.path.isdir(os.path.join(PACKAGE, target))
            }
    return graph


def test_the_subpackage_import_graph_has_no_cycle():
    graph = subpackage_graph()
    assert graph["tasks"] >= {"training", "export", "models"}  # the graph is read
    done, path = set(), []

    def visit(name):
        assert name not in path, " -> ".join(path[path.index(name) :] + [name])
        if name in done:
            return
        path.append(name)
        for target in sorted(graph.get(name, ())):
            visit(target)
        path.pop()
        done.add(name)

    for name in graph:
        visit(name)


def test_no_lazily_exported_name_is_also_a_module():
    """A package's lazy name and a module of the same name collide: importing the
    module sets the package attribute, and the name then gives the module."""
    import importlib

    collisions = []
    for name in sorted(os.listdir(PACKAGE)):
        folder = os.path.join(PACKAGE, name)
        if not os.path.isfile(os.path.join(folder, "__init__.py")):
            continue
        package = importlib.import_module(f"keras_bert_impl.{name}")
        modules = {f[:-3] for f in os.listdir(folder) if f.endswith(".py")}
        modules |= {d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))}
        collisions += [f"{name}.{n}" for n in getattr(package, "_EXPORTS", {}) if n in modules]
    assert not collisions
