"""Replaces one `## ...` section of BENCHMARKS.md and leaves the rest alone.

Several tools write figures into the same file, each into its own section, so
a tool must never rewrite the whole file: it reads it, swaps its own section
(or appends it when absent) and writes it back at once.
"""

import os

_TITLE = "# Benchmarks\n"


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


def replace_section(path, heading, body):
    """Writes `heading` followed by `body` into the markdown file at `path`.

    Args:
        path: the markdown file; created (with a `# Benchmarks` title) if missing.
        heading: the section's full heading line, e.g. `"## Backbone forward (CPU)"`.
        body: the section's text below the heading.

    Raises:
        ValueError: if `heading` is not a single `## ` line.
    """
    if not heading.startswith("## ") or "\n" in heading:
        raise ValueError(
            f"heading must be one line starting with '## ', got {heading!r}."
        )
    section = [heading + "\n", "\n"] + [
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
