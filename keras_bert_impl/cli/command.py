"""What every `kbi-*` command shares.

- Bad input ends the command with one line that names it and a non-zero exit.
- Flags live in a registry of the command's own, defined when it runs, not
  at import: any two commands import into one process (tests do), a command
  runs twice in one process with nothing carried over, and `--help` lists
  exactly its flags.
- TensorFlow's notices on a CPU machine (oneDNN, CUDA driver and CPU feature
  lines) are kept from the user's terminal; everything else on stderr is
  passed through (`launch` starts TensorFlow this way before it imports the
  command).
"""

import atexit
import dataclasses
import importlib.util
import os
import re
import sys
import threading
import typing

from absl import app
from absl import flags

# TensorFlow lines on a CPU machine that say nothing about the user's job.
_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers"
    r"|cpu_feature_guard\.cc"
    r"|^To enable the following instructions"
    r"|failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|oneDNN supports DT_\w+ only on platforms with"
)


def _forward_filtered(read_fd, write_fd):
    """Copies the pipe to the real stderr, dropping noise lines (`\r` ends a line too)."""
    pending = b""
    while True:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        *lines, pending = re.split(rb"(?<=[\r\n])", pending + chunk)
        for line in lines:
            if not _NOISE.search(line.decode("utf-8", "replace")):
                os.write(write_fd, line)
    if pending:
        os.write(write_fd, pending)
    os.close(read_fd)


_before_exit_now = []


def exit_now(code):
    """Ends the process at once, not waiting for threads still at work (a server's
    requests cut off at the end of its grace), once logs and stderr are written out."""
    import logging

    logging.shutdown()
    sys.stdout.flush()
    for flush in _before_exit_now:
        flush()
    os._exit(code)


def start_tensorflow_quietly():
    """Imports TensorFlow with its CPU-machine notices filtered from stderr.

    TensorFlow's C++ logging writes to file descriptor 2 directly (before and
    after start-up: oneDNN prints from inside ops too), so stderr becomes a
    pipe whose lines a thread forwards to the terminal, minus the notices,
    for the life of the process. Listing devices here does not create the
    runtime context, so a tool can still configure logical devices or
    collectives afterwards.
    """
    if "tensorflow" in sys.modules:
        return
    if importlib.util.find_spec("tensorflow") is None:
        return  # a JAX-only machine: nothing to start
    sys.stderr.flush()
    real_stderr = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    forwarder = threading.Thread(
        target=_forward_filtered, args=(read_fd, real_stderr), daemon=True
    )
    forwarder.start()

    def restore_stderr():
        # Pointing fd 2 back closes the pipe's last writer in this process, so
        # the thread sees the end and forwards what is left.
        sys.stderr.flush()
        os.dup2(real_stderr, 2)
        forwarder.join(timeout=2)

    atexit.register(restore_stderr)
    _before_exit_now.append(restore_stderr)
    import tensorflow as tf

    tf.config.list_physical_devices()


def _with_one_line_errors(main):
    """Bad input ends the tool with one line naming it, not a traceback or the
    whole flag list: exit code 2 for a misused command line, 1 for bad input
    (the package raises ValueError / OSError naming the file, line or value)."""

    def guarded_main(argv):
        program = os.path.basename(argv[0] if argv else sys.argv[0])
        input_errors = (ValueError, OSError)
        if "tensorflow" in sys.modules:
            input_errors += (sys.modules["tensorflow"].errors.OpError,)
        try:
            return main(argv)
        except app.UsageError as error:
            print(
                f"{program}: error: {error} (--help lists the flags)", file=sys.stderr
            )
            sys.exit(2)
        except input_errors as error:
            print(f"{program}: error: {error}", file=sys.stderr)
            sys.exit(1)

    return guarded_main


_DEFINE_BY_TYPE = {
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
    tuple: flags.DEFINE_list,
}


def _field_type(annotation):
    """`int | None` -> int; `tuple` -> tuple."""
    kinds = [kind for kind in typing.get_args(annotation) if kind is not type(None)]
    return kinds[0] if kinds else annotation


def define_settings_flags(registry, settings_class, helps, choices=None):
    """Defines one flag per field of `settings_class` named in `helps`, of the
    field's type and with its default: a default lives in one place, the
    settings dataclass the command fills (`settings_from_flags`).

    Args:
        registry: the command's `flags.FlagValues`.
        settings_class: a dataclass whose fields are flag names.
        helps: {field name: help text}, in the order `--help` lists them.
        choices: {field name: its allowed values} for flags that take one of a few.
    """
    hints = typing.get_type_hints(settings_class)
    fields = {field.name: field for field in dataclasses.fields(settings_class)}
    for name, help_text in helps.items():
        field = fields[name]
        default = None if field.default is dataclasses.MISSING else field.default
        if name in (choices or {}):
            flags.DEFINE_enum(
                name, default, choices[name], help_text, flag_values=registry
            )
            continue
        kind = _field_type(hints[name])
        if kind is tuple and default is not None:
            default = list(default)
        _DEFINE_BY_TYPE[kind](name, default, help_text, flag_values=registry)


def settings_from_flags(registry, settings_class):
    """A settings dataclass filled from the flags of the same names.

    An empty `--mixed_precision` means none; list flags fill tuple fields.
    """
    hints = typing.get_type_hints(settings_class)
    values = {
        field.name: registry[field.name].value
        for field in dataclasses.fields(settings_class)
        if field.name in registry
    }
    for name, value in values.items():
        if _field_type(hints[name]) is tuple and value is not None:
            values[name] = tuple(value)
    if "mixed_precision" in values:
        values["mixed_precision"] = values["mixed_precision"] or None
    return settings_class(**values)


def require_flags(registry, *names):
    """Raises ValueError naming the first of `names` left unset."""
    for name in names:
        if not registry[name].value:
            raise ValueError(f"--{name} is required.")


_HELP_FLAGS = ("--help", "-h", "-?", "--helpshort", "--helpfull")


def asks_for_help(args):
    """Whether a command line (without the program name) asks for help."""
    return any(arg in _HELP_FLAGS for arg in args)


def run_with_registry(main, define_flags, argv=None):
    """Runs a tool whose flags live in a registry of its own.

    Each call defines the flags afresh, so a test can run the tool several
    times in one process with nothing carried over from an earlier call.

    Args:
        main: called with the parsed `flags.FlagValues`.
        define_flags: defines the tool's flags into the registry it is given.
        argv: the command line, program name first (default: `sys.argv`).

    Returns:
        What `main` returns when `argv` is given (a test's call); from the
        command line (`argv` None) only an int exit code, since the console
        script exits with what this returns (a dict would mean exit 1).
    """
    from_command_line = argv is None
    registry = flags.FlagValues()
    define_flags(registry)
    argv = list(sys.argv if argv is None else argv)
    program = os.path.basename(argv[0])
    if asks_for_help(argv[1:]):
        print(f"\n       USAGE: {program} [flags]\n\n{registry.get_help()}")
        return None

    def parse_then_run(_):
        try:
            extra = registry(argv)[1:]
        except flags.Error as error:
            raise app.UsageError(str(error)) from None
        if extra:
            raise app.UsageError(f"Unexpected arguments: {' '.join(extra)}")
        return main(registry)

    result = _with_one_line_errors(parse_then_run)(argv)
    if from_command_line and not isinstance(result, int):
        return None
    return result
