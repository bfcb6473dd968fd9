"""TF Serving's model layout: `export_dir/VERSION/` with integer versions, written atomically.

A version is written under a temporary name that TF Serving ignores (not an integer) and
renamed into place when complete, so a polling server never loads half a model, and an
existing version is never overwritten.
"""

import os
import shutil
import tempfile


def existing_versions(export_dir):
    """Sorted integer versions under `export_dir` (other entries are ignored)."""
    if not os.path.isdir(export_dir):
        return []
    return sorted(
        int(name)
        for name in os.listdir(export_dir)
        if name.isdigit() and os.path.isdir(os.path.join(export_dir, name))
    )


def next_version(export_dir):
    """1 for a new model, else the highest version + 1."""
    versions = existing_versions(export_dir)
    return versions[-1] + 1 if versions else 1


class VersionWriter:
    """Context manager: yields a temporary directory, renamed to `export_dir/VERSION` on success.

    Args:
        export_dir: the model's base path (created if missing).
        version: integer version, or None for `next_version(export_dir)`.

    Raises:
        FileExistsError: if `version` already exists (nothing is written).
    """

    def __init__(self, export_dir, version=None):
        self.export_dir = os.path.abspath(os.fspath(export_dir))
        if version is not None and (isinstance(version, bool) or int(version) < 1):
            raise ValueError(f"version must be a positive integer, got {version!r}.")
        self.version = None if version is None else int(version)
        self.temp_dir = None
        self.path = None

    def __enter__(self):
        os.makedirs(self.export_dir, exist_ok=True)
        if self.version is None:
            self.version = next_version(self.export_dir)
        self.path = os.path.join(self.export_dir, str(self.version))
        if os.path.exists(self.path):
            raise FileExistsError(
                f"{self.path} already exists: a version is never overwritten; pick another "
                f"--version or leave it unset for the next free one "
                f"({next_version(self.export_dir)})."
            )
        self.temp_dir = tempfile.mkdtemp(prefix=f".tmp-{self.version}-", dir=self.export_dir)
        return self.temp_dir

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            return False
        os.chmod(self.temp_dir, 0o755)
        try:
            # rename() of a directory fails if the target exists: no overwrite even if
            # another export took the same version meanwhile.
            os.rename(self.temp_dir, self.path)
        except OSError:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            raise FileExistsError(
                f"{self.path} appeared while exporting; nothing was overwritten."
            ) from None
        return False
