"""Runs a command-line tool as its console script would, in a subprocess."""

import subprocess
import sys


def run_tool(name, *args, timeout=600):
    """`python -m keras_bert_impl.cli <name> args...`: a CompletedProcess with text
    stdout and stderr (never raises on a non-zero exit code)."""
    return subprocess.run(
        [sys.executable, "-m", "keras_bert_impl.cli", name, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
