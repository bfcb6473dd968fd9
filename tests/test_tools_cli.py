"""What every kbi-* command promises: importable side by side, a --help that
lists its own flags, and no TensorFlow start-up notices in front of the user."""

import configparser
import json
import os
import subprocess
import sys

import pytest

from keras_bert_impl.cli import command, launch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISE = (
    "oneDNN custom operations",
    "oneDNN supports DT_",
    "cuda drivers",
    "cuInit",
    "cpu_feature_guard",
    "absl::InitializeLog",
)


def console_scripts():
    """{script name: the module of its command}, from setup.cfg's console_scripts
    (each enters through `launch`, which names the command's module)."""
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    entries = config["options.entry_points"]["console_scripts"].strip().splitlines()
    scripts = {}
    for entry in entries:
        name, target = (part.strip() for part in entry.split("="))
        scripts[name] = target
    return scripts


def command_modules():
    return {
        name: f"keras_bert_impl.cli.{module}"
        for name, module in launch.COMMANDS.items()
    }


def test_every_console_script_enters_through_its_launcher():
    scripts = console_scripts()
    assert set(scripts) == set(launch.COMMANDS)
    for name, target in scripts.items():
        module, function = target.split(":")
        assert module == "keras_bert_impl.cli.launch", name
        assert launch.COMMANDS[name] == function, name


# Runs in a fresh process: other tests define tools' flags in theirs.
_TOOLS_FLAGS_SCRIPT = """
import importlib, json, os, sys
from absl import flags
stderr_before = os.fstat(2)
modules = sys.argv[1:]
for module in modules:
    importlib.import_module(module)
defined_on_import = [
    m for m in flags.FLAGS.flags_by_module_dict() if m.startswith("keras_bert_impl.cli")
]
# Importing a command leaves stderr alone (only running one filters it).
stderr_is_untouched = os.path.samestat(os.fstat(2), stderr_before)
global_flags = set(flags.FLAGS)
own = {}
for module in modules:
    registry = flags.FlagValues()  # every command defines into a registry of its own
    importlib.import_module(module).define_flags(registry)
    own[module] = sorted(registry)
print(json.dumps({
    "defined_on_import": defined_on_import,
    "stderr_is_untouched": stderr_is_untouched,
    "defined_globally": sorted(set(flags.FLAGS) - global_flags),
    "own": own,
}))
"""


@pytest.fixture(scope="module")
def tools_flags():
    """Importing every tool in one process, then each tool's own flags."""
    modules = sorted(set(command_modules().values()))
    done = subprocess.run(
        [sys.executable, "-c", _TOOLS_FLAGS_SCRIPT, *modules],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_tool_imports_into_one_process_without_defining_flags(tools_flags):
    assert tools_flags["defined_on_import"] == []
    assert tools_flags["stderr_is_untouched"]
    assert tools_flags["defined_globally"] == []  # each defines into its own registry


def _script(name):
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(path):
        pytest.skip(f"{name} is not installed (pip install -e . installs it)")
    return path


def test_help_lists_each_tools_own_flags_without_start_up_noise(tools_flags):
    scripts = command_modules()
    running = {
        name: subprocess.Popen(
            [_script(name), "--help"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in scripts
    }
    for name, process in running.items():
        output = process.communicate(timeout=300)[0]
        # absl answers --help with exit code 1; what matters is what it prints.
        assert "USAGE" in output, (name, output)
        own = tools_flags["own"][scripts[name]]
        assert own, name
        for flag in own:
            assert f"--{flag}" in output or f"--[no]{flag}" in output, (name, flag)
        assert not [
            line for line in output.splitlines() if any(n in line for n in NOISE)
        ]


def test_help_is_answered_without_loading_tensorflow():
    """Every command's --help comes from its flags alone (settings dataclasses
    and lazy package imports): under a second, not TensorFlow's ten."""
    code = (
        "import sys\n"
        "from keras_bert_impl.cli import launch\n"
        "loaded = []\n"
        "for script in launch.COMMANDS:\n"
        "    sys.argv = [script, '--help']\n"
        "    launch.launch(script)\n"
        "    loaded += [script] if 'tensorflow' in sys.modules else []\n"
        "    loaded += [script] if 'keras' in sys.modules else []\n"
        "print('LOADED', sorted(set(loaded)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("USAGE") == len(launch_commands())
    assert done.stdout.strip().splitlines()[-1] == "LOADED []"


def launch_commands():
    from keras_bert_impl.cli import launch

    return launch.COMMANDS


def test_a_tool_run_starts_without_tensorflow_notices(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat\nthe dog sat on the log\n")
    done = subprocess.run(
        [
            _script("kbi-build-vocab"),
            f"--input_files={corpus}",
            f"--output_file={tmp_path / 'vocab.txt'}",
            "--vocab_size=100",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert not [
        line for line in done.stderr.splitlines() if any(n in line for n in NOISE)
    ]
    assert done.stdout.splitlines()[0].startswith("read 2 lines")


def test_bad_input_ends_a_tool_with_one_line_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "*.txt"
    done = subprocess.run(
        [_script("kbi-build-vocab"), f"--input_files={missing}", "--output_file=v.txt"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"kbi-build-vocab: error: Input pattern '{missing}' matches no file. "
        "Give existing files or globs such as 'data/part-*.txt'."
    ]
    assert not (tmp_path / "v.txt").exists()

    misused = subprocess.run(
        [_script("kbi-build-vocab"), "--input_files=a", "--output_file=b", "extra"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert misused.returncode == 2
    assert misused.stderr.strip().splitlines() == [
        "kbi-build-vocab: error: Unexpected arguments: extra (--help lists the flags)"
    ]


def test_a_registry_tool_exits_zero_when_its_result_is_not_an_exit_code(monkeypatch):
    """Training tools return their results to tests; from the command line
    the console script exits with the return value, so only ints pass."""
    from absl import flags

    def define(registry):
        flags.DEFINE_integer("steps", 1, "Steps.", flag_values=registry)

    def main(registry):
        return {"steps": registry.steps}

    assert command.run_with_registry(main, define, ["kbi-x", "--steps=3"]) == {
        "steps": 3
    }
    monkeypatch.setattr(sys, "argv", ["kbi-x", "--steps=3"])
    assert command.run_with_registry(main, define) is None  # sys.exit(None): code 0
    assert command.run_with_registry(lambda registry: 4, define) == 4


def test_python_m_runs_a_command_by_name_and_says_which_exist():
    def module_run(*args):
        return subprocess.run(
            [sys.executable, "-m", "keras_bert_impl.cli", *args],
            capture_output=True,
            text=True,
            timeout=300,
        )

    helped = module_run("build_vocab", "--help")
    assert "kbi-build-vocab" in helped.stdout and "--vocab_size" in helped.stdout
    unknown = module_run("train")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        "python -m keras_bert_impl.cli: error: no command 'train'; commands: "
        + ", ".join(name.removeprefix("kbi-") for name in launch.COMMANDS)
    ]
    assert module_run().returncode == 2


def test_commands_and_benchmarks_use_one_flag_system():
    """Every command and benchmark defines its flags into a registry of its own
    (`command.run_with_registry`), none into absl's process-wide FLAGS."""
    folders = [
        os.path.join(ROOT, "keras_bert_impl", "cli"),
        os.path.join(ROOT, "benchmarks"),
    ]
    global_users = [
        os.path.join(os.path.basename(folder), name)
        for folder in folders
        for name in sorted(os.listdir(folder))
        if name.endswith(".py")
        and "flags.FLAGS" in open(os.path.join(folder, name), encoding="utf-8").read()
    ]
    assert global_users == []


@pytest.mark.parametrize(
    "command_module, settings_path",
    [
        ("finetune", "keras_bert_impl.tasks.settings.FinetuneSettings"),
        ("pretrain", "keras_bert_impl.training.settings.PretrainSettings"),
        ("prune", "keras_bert_impl.compression.pruning_settings.PruneSettings"),
    ],
)
def test_a_commands_defaults_are_its_settings_defaults(command_module, settings_path):
    """The flags are made from the settings dataclass, so a default cannot drift."""
    import dataclasses
    import importlib

    from absl import flags

    module_name, class_name = settings_path.rsplit(".", 1)
    settings_class = getattr(importlib.import_module(module_name), class_name)
    registry = flags.FlagValues()
    importlib.import_module(f"keras_bert_impl.cli.{command_module}").define_flags(
        registry
    )
    for field in dataclasses.fields(settings_class):
        if field.name == "verbose":  # progress output: not a command-line setting
            assert field.name not in registry
            continue
        default = None if field.default is dataclasses.MISSING else field.default
        if isinstance(default, tuple):
            default = list(default)
        assert registry[field.name].default == default, field.name
    # A command line with no flags gives the dataclass's own defaults (list
    # flags back as tuples), the required fields left unset.
    registry(["kbi-x"])
    required = {
        field.name: None
        for field in dataclasses.fields(settings_class)
        if field.default is dataclasses.MISSING
    }
    assert command.settings_from_flags(registry, settings_class) == settings_class(
        **required
    )
