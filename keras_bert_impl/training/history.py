"""Training history: one row per logged step, written as JSON, CSV and PNG.

Every file is written to a temporary name and renamed, so a killed run
leaves the previous complete file, never a half-written one.
"""

import csv
import io
import json

import tensorflow as tf


# Per-step lists, kept in the JSON only.
_JSON_ONLY = ("step_losses",)


def write_atomically(path, data):
    """Writes `data` (str or bytes) to `path` through a temporary file."""
    temporary = path + ".tmp"
    mode = "wb" if isinstance(data, bytes) else "w"
    with tf.io.gfile.GFile(temporary, mode) as f:
        f.write(data)
    tf.io.gfile.rename(temporary, path, overwrite=True)


class History:
    """Rows of `{"step": ..., "loss": ..., ...}` kept in `metrics.json`.

    Args:
        path_prefix: `<prefix>.json`, `<prefix>.csv` and `<prefix>.png` are
            written.
        resume_step: rows of an earlier run after this step are dropped (the
            run was killed after them and they will be trained again).
    """

    def __init__(self, path_prefix, resume_step=0):
        self.path_prefix = path_prefix
        self.rows = []
        if resume_step and tf.io.gfile.exists(path_prefix + ".json"):
            with tf.io.gfile.GFile(path_prefix + ".json") as f:
                earlier = json.load(f)
            self.rows = [row for row in earlier if row["step"] <= resume_step]

    def append(self, row):
        self.rows.append(dict(row))

    def write(self, plot=True):
        write_atomically(
            self.path_prefix + ".json", json.dumps(self.rows, indent=1) + "\n"
        )
        columns = []
        for row in self.rows:
            columns += [k for k in row if k not in columns and k not in _JSON_ONLY]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomically(self.path_prefix + ".csv", text.getvalue())
        if plot and self.rows:
            write_atomically(self.path_prefix + ".png", plot_curves(self.rows))


def plot_curves(rows, skip=("step", "examples_per_second") + _JSON_ONLY):
    """PNG bytes: one panel per logged quantity against the step; an
    evaluation metric `eval_<name>` shares the panel of `<name>`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    names = []
    for row in rows:
        names += [k for k in row if k not in skip and k not in names]
    paired = [n for n in names if n.startswith("eval_") and n[5:] in names]
    names = [n for n in names if n not in paired]
    figure, axes = pyplot.subplots(
        len(names), 1, figsize=(7, 2.2 * len(names)), sharex=True, squeeze=False
    )
    for axis, name in zip(axes[:, 0], names):
        series = [(name, "train" if f"eval_{name}" in paired else None)]
        if f"eval_{name}" in paired:
            series.append((f"eval_{name}", "evaluation"))
        for key, label in series:
            points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
            axis.plot(
                [p[0] for p in points], [p[1] for p in points], marker=".", label=label
            )
        if len(series) > 1:
            axis.legend(fontsize=7)
        axis.set_ylabel(name, fontsize=8)
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    pyplot.close(figure)
    return buffer.getvalue()
