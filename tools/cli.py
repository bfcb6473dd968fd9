"""What every `kbi-*` command shares.

- Flags are defined when the command runs, not at import, so any two tools
  import into one process (tests do).
- `--help` lists the tool's own flags with their help: absl shows the flags of
  the module named by `sys.argv[0]`, which for an installed console script is
  the wrapper in `bin/`, not the module that defined them.
- TensorFlow's start-up lines on a CPU machine (oneDNN, CUDA driver and CPU
  feature notices) are not the first thing a user reads; anything else
  TensorFlow prints while starting is passed through (the package's
  `__init__` starts it this way before any tool imports it).
"""

import os
import re
import sys

from absl import app
from absl import flags

FLAGS = flags.FLAGS

# TensorFlow start-up lines that say nothing about the user's job.
_STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers"
    r"|cpu_feature_guard\.cc"
    r"|^To enable the following instructions"
    r"|failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
)

_defined_by = set()


def define_flags_once(define_flags):
    """Calls `define_flags()` unless it already ran in this process."""
    if define_flags not in _defined_by:
        define_flags()
        _defined_by.add(define_flags)


def _show_module_flags_in_help(module_name):
    main_module = sys.argv[0]
    known = set(FLAGS.get_key_flags_for_module(main_module))
    for flag in FLAGS.get_key_flags_for_module(module_name):
        if flag not in known:
            FLAGS.register_key_flag_for_module(main_module, flag)


def start_tensorflow_quietly():
    """Imports TensorFlow and lists its devices with start-up noise filtered out.

    Listing devices does not create the runtime context, so a tool can still
    configure logical devices or collectives afterwards.
    """
    if "tensorflow" in sys.modules:
        return
    import importlib.util
    import tempfile

    if importlib.util.find_spec("tensorflow") is None:
        return  # a JAX-only machine: nothing to start

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        kept = [
            line
            for line in captured.read().decode("utf-8", "replace").splitlines()
            if line.strip() and not _STARTUP_NOISE.search(line)
        ]
    if kept:
        print("\n".join(kept), file=sys.stderr)


def run(main, define_flags, module_name):
    """Defines the tool's flags, then runs `main(argv)` under absl.

    Args:
        main: the tool's absl main function.
        define_flags: defines the tool's flags (called once per process).
        module_name: the module that defines them (`__name__` of the tool).
    """
    define_flags_once(define_flags)
    _show_module_flags_in_help(module_name)
    app.run(main)
