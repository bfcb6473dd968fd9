"""Runs a command-line tool as its console script would, in a subprocess."""

import subprocess
import sys


def run_tool(name, *args, timeout=600):
    """`python -m keras_bert_impl_tools.<name> args...`: a CompletedProcess with text
    stdout and stderr (never raises on a non-zero exit code)."""
    return subprocess.run(
        [sys.executable, "-m", f"keras_bert_impl_tools.{name}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
