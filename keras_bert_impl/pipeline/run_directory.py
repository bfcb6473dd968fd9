"""One directory per run of the main job, with a record of finished stages.

A stage counts as done only when its record `stages/NAME.json` exists; the
record is written atomically after everything the stage produced is in
place. A run killed half-way therefore leaves no record for the stage it was
in: the next run does that stage again (training stages resume from their
checkpoints, exports write a new version atomically) and skips the ones
recorded before.
"""

import json
import os
import shutil
import time


class RunDirectory:
    """The run's folder: `path(...)` names files in it, `record`/`finished` keep stages.

    Args:
        root: the folder (created if missing).
        restart: delete whatever an earlier run left there first.
    """

    def __init__(self, root, restart=False):
        self.root = os.path.abspath(os.fspath(root))
        if restart and os.path.exists(self.root):
            shutil.rmtree(self.root)
        os.makedirs(os.path.join(self.root, "stages"), exist_ok=True)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def _record_path(self, stage):
        return self.path("stages", f"{stage}.json")

    def finished(self, stage):
        """The record of `stage` (a dict) if an earlier run finished it, else None."""
        try:
            with open(self._record_path(stage), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            return None  # not written by record(): treat the stage as not done

    def record(self, stage, summary):
        """Marks `stage` done with its `summary` (a JSON-able dict)."""
        record = dict(
            summary, stage=stage, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S")
        )
        temporary = self._record_path(stage) + ".tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(temporary, self._record_path(stage))
        return record

    def forget(self, stage):
        """Drops the record of `stage` (and of nothing else)."""
        if os.path.exists(self._record_path(stage)):
            os.remove(self._record_path(stage))
