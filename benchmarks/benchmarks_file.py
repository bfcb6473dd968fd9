"""Replaces one `## ...` section of BENCHMARKS.md and leaves the rest alone.

Several tools write figures into the same file, each into its own section, so
a tool must never rewrite the whole file: it reads it, swaps its own section
(or appends it when absent) and writes it back at once.

Every section starts with the same `Machine:` line (`machine_line`, taken when the
run starts): figures from a CPU with AVX-512 VNNI and from an AVX2-only one, or
from a quiet and a loaded machine, are not comparable, and the line says which.
"""

import os

_TITLE = "# Benchmarks\n"
_MACHINE = "Machine: "


def machine_line():
    """One line naming the machine a benchmark runs on: the CPU's model and the
    instruction sets its kernels may use (`compression.cpu_features`, with any
    `ONEDNN_MAX_CPU_ISA` cap), its cores and the load average now. Call it when
    the run starts and pass it to `replace_section`."""
    from keras_bert_impl.compression import cpu_features

    try:
        load = "load average {:.2f} / {:.2f} / {:.2f} (1 / 5 / 15 min)".format(
            *os.getloadavg()
        )
    except OSError:  # no load average on this platform
        load = "load average unknown"
    return (
        f"{_MACHINE}{cpu_features.summary()}; {os.cpu_count()} CPU cores; {load} "
        "at the start of the run."
    )


def _section_bounds(lines, heading):
    """(start, end) line indices of `heading`'s section, or None if absent."""
    start = None
    for i, line in enumerate(lines):
        if line.rstrip("\n") == heading:
            start = i
            break
    if start is None:
        return None
    end = len(lines)
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("## "):
            end = i
            break
    return start, end


def replace_section(path, heading, body, machine):
    """Writes `heading`, `machine` and `body` into the markdown file at `path`.

    Args:
        path: the markdown file; created (with a `# Benchmarks` title) if missing.
        heading: the section's full heading line, e.g. `"## Backbone forward (CPU)"`.
        body: the section's text below the heading.
        machine: the run's `machine_line()`, the section's first line.

    Raises:
        ValueError: if `heading` is not a single `## ` line, or `machine` is not
            one line from `machine_line`.
    """
    if not heading.startswith("## ") or "\n" in heading:
        raise ValueError(
            f"heading must be one line starting with '## ', got {heading!r}."
        )
    if not machine.startswith(_MACHINE) or "\n" in machine:
        raise ValueError(
            f"machine must be one line from machine_line() ({_MACHINE!r}...), got "
            f"{machine!r}."
        )
    section = [heading + "\n", "\n", machine + "\n", "\n"] + [
        line + "\n" for line in body.strip("\n").split("\n")
    ]
    lines = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    if not lines:
        lines = [_TITLE]
    bounds = _section_bounds(lines, heading)
    if bounds is None:
        if lines[-1].strip():
            lines[-1] = lines[-1].rstrip("\n") + "\n"
            lines.append("\n")
        lines.extend(section)
    else:
        start, end = bounds
        tail = lines[end:]
        lines[start:end] = section + (["\n"] if tail else [])
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)


def define_flag(flag_values):
    """Defines `--benchmarks_file` in a benchmark's flag registry: the one place
    every benchmark writes to."""
    from absl import flags

    flags.DEFINE_string(
        "benchmarks_file",
        "",
        "Markdown file (e.g. BENCHMARKS.md) in which the run rewrites its own "
        "section; unset, the section is only printed.",
        flag_values=flag_values,
    )


def publish(path, heading, body, machine):
    """Prints the section, and writes it into the markdown file at `path` only
    when one is given (`--benchmarks_file`)."""
    print(f"\n{heading}\n\n{machine}\n\n{body.strip()}\n")
    if path:
        replace_section(path, heading, body, machine)
        print(f"Wrote the '{heading}' section of {path}.")
