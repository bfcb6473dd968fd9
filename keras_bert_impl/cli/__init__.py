"""The `kbi-*` commands, one module each (run any as `kbi-<name>` or
`python -m keras_bert_impl.cli <name>`; `launch.COMMANDS` lists them).

Importing a command's module has no side effect: its flags are defined and
TensorFlow's start-up notices are filtered only when the command runs.
"""
