"""Where every `kbi-*` command starts: TensorFlow first, quietly, then the command.

TensorFlow prints its CPU start-up notices while it is imported, and every
command imports it (directly or through the package), so the filter has to be
in place before the command's module is: hence one small entry point per
console script here, which imports nothing heavy itself.
"""

import importlib
import sys

from keras_bert_impl.cli import command

# Console script name -> module in keras_bert_impl.cli.
COMMANDS = {
    "kbi-demo": "demo",
    "kbi-build-vocab": "build_vocab",
    "kbi-create-pretraining-data": "create_pretraining_data",
    "kbi-pretrain": "pretrain",
    "kbi-finetune": "finetune",
    "kbi-distill": "distill",
    "kbi-prune": "prune",
    "kbi-export": "export",
    "kbi-check-servable": "check_servable",
    "kbi-serve": "serve",
    "kbi-predict": "predict",
}


def launch(script):
    """Runs the command installed as `script` (e.g. "kbi-export"); returns
    what its `run()` returns (the console script's exit status)."""
    # Help is printed from the flags alone, which load no TensorFlow.
    if not command.asks_for_help(sys.argv[1:]):
        command.start_tensorflow_quietly()
    module = importlib.import_module(f"keras_bert_impl.cli.{COMMANDS[script]}")
    return module.run()


def main():
    """`python -m keras_bert_impl.cli <command> [flags]`: the same commands
    without their console scripts (`build-vocab`, `kbi-build-vocab` and
    `build_vocab` name the same one)."""
    names = ", ".join(name[len("kbi-") :] for name in COMMANDS)
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print(
            f"usage: python -m keras_bert_impl.cli <command> [flags]; commands: {names}",
            file=sys.stderr,
        )
        return 2
    name = sys.argv[1].removeprefix("kbi-").replace("_", "-")
    script = f"kbi-{name}"
    if script not in COMMANDS:
        print(
            f"python -m keras_bert_impl.cli: error: no command {sys.argv[1]!r}; "
            f"commands: {names}",
            file=sys.stderr,
        )
        return 2
    # The command names itself by argv[0] in its help and its errors.
    sys.argv = [script, *sys.argv[2:]]
    return launch(script)


def demo():
    return launch("kbi-demo")


def build_vocab():
    return launch("kbi-build-vocab")


def create_pretraining_data():
    return launch("kbi-create-pretraining-data")


def pretrain():
    return launch("kbi-pretrain")


def finetune():
    return launch("kbi-finetune")


def distill():
    return launch("kbi-distill")


def prune():
    return launch("kbi-prune")


def export():
    return launch("kbi-export")


def check_servable():
    return launch("kbi-check-servable")


def serve():
    return launch("kbi-serve")


def predict():
    return launch("kbi-predict")
