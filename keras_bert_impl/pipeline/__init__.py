"""The main job, raw text to answers over gRPC, as one call.

    from keras_bert_impl.pipeline import PipelineSettings, run_pipeline
    run_pipeline(PipelineSettings(run_dir="runs/demo"))

Stages (`STAGES`, in order): learn a WordPiece vocabulary from a corpus →
create pretraining data (google-research/bert's recipe) → pretrain a small
BERT from scratch under a tf.distribute strategy → fine-tune
all-MiniLM-L6-v2 on labelled sentences → export a SavedModel that takes raw
strings → check that TF Serving can serve it → start `kbi-serve` and send
sentences over gRPC. Finished stages are recorded in the run folder and
skipped when the job runs again (`restart=True` starts over); `serve` runs
every time it is asked for.

This package sits above training/, export/ and serving/: nothing imports it.
"""

import time

from keras_bert_impl.pipeline import stages as stage_functions
from keras_bert_impl.pipeline.run_directory import RunDirectory
from keras_bert_impl.pipeline.settings import (
    DEFAULT_SENTENCES,
    SAMPLE_CORPUS,
    SAMPLE_SENTIMENT_DIR,
    STAGES,
    PipelineSettings,
)

# Stages whose record does not make a later run skip them.
ALWAYS_RUN = ("serve",)


class _Context:
    """Builds the strategies once, before any TensorFlow op when `mirrored`
    needs logical CPU devices."""

    def __init__(self, settings):
        self.settings = settings
        self._strategy = None
        self._default = None

    def prepare(self, pending):
        if "pretrain" in pending and self.settings.strategy == "mirrored":
            import tensorflow as tf

            from keras_bert_impl.training.strategy import split_logical_cpus

            if not tf.config.list_physical_devices("GPU"):
                try:
                    split_logical_cpus(self.settings.replicas)
                except RuntimeError as error:  # TensorFlow already started
                    raise RuntimeError(
                        "The pretrain stage's mirrored strategy splits the CPU into "
                        f"{self.settings.replicas} logical devices, which must happen "
                        "before TensorFlow runs anything: run the job in a fresh process "
                        "(kbi-demo) or pass strategy='default'."
                    ) from error

    def strategy(self):
        if self._strategy is None:
            from keras_bert_impl.training.strategy import get_strategy

            self._strategy = get_strategy(self.settings.strategy)
        return self._strategy

    def default_strategy(self):
        if self._default is None:
            from keras_bert_impl.training.strategy import get_strategy

            self._default = get_strategy("default")
        return self._default


def run_pipeline(settings, report=print):
    """Runs the stages `settings` asks for; returns `{stage: summary}`.

    Args:
        settings: `PipelineSettings`.
        report: called with each progress line (default `print`).

    Raises:
        ValueError: bad settings or input, naming it (nothing is recorded for
            the stage that failed).
    """
    run = RunDirectory(settings.run_dir, restart=settings.restart)
    wanted = [s for s in STAGES if s in settings.stages]
    pending = [s for s in wanted if s in ALWAYS_RUN or run.finished(s) is None]
    context = _Context(settings)
    context.prepare(pending)
    report(f"Run folder: {run.root}")
    summaries = {}
    began = time.perf_counter()
    for number, stage in enumerate(wanted, start=1):
        heading = f"[{number}/{len(wanted)}] {stage}"
        if stage not in pending:
            summaries[stage] = run.finished(stage)
            report(
                f"{heading}: finished earlier ({summaries[stage]['finished_at']}), skipped"
            )
            continue
        report(f"{heading}: {_first_line(getattr(stage_functions, stage).__doc__)}")
        stage_began = time.perf_counter()
        summary = getattr(stage_functions, stage)(settings, run, context)
        summary["seconds"] = round(time.perf_counter() - stage_began, 1)
        summaries[stage] = run.record(stage, summary)
        report(f"{heading} done in {summary['seconds']:.0f} s: {summary['line']}")
    report(
        f"All {len(wanted)} stage(s) done in {time.perf_counter() - began:.0f} s. "
        f"Everything is in {run.root}"
    )
    return summaries


def _first_line(docstring):
    return " ".join(docstring.split("\n\n")[0].split())


__all__ = [
    "DEFAULT_SENTENCES",
    "PipelineSettings",
    "RunDirectory",
    "SAMPLE_CORPUS",
    "SAMPLE_SENTIMENT_DIR",
    "STAGES",
    "run_pipeline",
]
