"""A job's checkpoint files, kept so that a retry resumes from exactly the recorded step.

The database records the step of the last complete checkpoint (leases.record_checkpoint); on
resume, rows past that step are deleted and trained again. So the file a retry loads must hold
exactly that step, and one file rewritten in place cannot promise it:

- the loop writes a checkpoint, then its rows are flushed, then its step is recorded; a worker
  that dies in between leaves a file ahead of the database, and the rows in between would be
  deleted and never trained again;
- an attempt presumed dead (an orphaned or frozen process) may still write the file while its
  successor trains: checkpoint files are not fenced, database writes are.

So each attempt trains with a working file of its own (`<job>.attempt-<n>.pt`), and once a
checkpoint's rows are stored it is published under its step (`<job>.step-<s>.pt`, a hard link,
no copy) before the step is recorded. A retry links the file of the recorded step to its own
working file. Two attempts that publish the same step publish the same state (training is
deterministic), so the last one to rename wins harmlessly.

The links rely on training.checkpoint.save_checkpoint writing a new file and renaming it over
the old one (never writing in place): the published name keeps the old file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


class CheckpointFiles:
    def __init__(self, folder: Path, job_id: str) -> None:
        self.folder = folder
        self.job_id = job_id

    def working(self, attempt: int) -> Path:
        """The file attempt `attempt` trains with (the loop writes it atomically)."""
        return self.folder / f"{self.job_id}.attempt-{attempt}.pt"

    def at_step(self, step: int) -> Path:
        return self.folder / f"{self.job_id}.step-{step}.pt"

    def publish(self, attempt: int, step: int) -> None:
        """Make the working file (just written for `step`) the checkpoint of `step`."""
        _place(self.working(attempt), self.at_step(step))

    def restore(self, attempt: int, step: int) -> bool:
        """Give attempt `attempt` the checkpoint of `step` as its working file; False when that
        checkpoint is not on disk (the job then starts over)."""
        source = self.at_step(step)
        try:
            _place(source, self.working(attempt))
        except FileNotFoundError:
            log.warning("checkpoint %s is missing; job %s starts over", source, self.job_id)
            return False
        return True

    def prune(self, keep_step: int) -> None:
        """Remove published checkpoints other than `keep_step` (the one recorded now)."""
        for path in self._files():
            step = _step_of(path)
            if step is not None and step != keep_step:
                path.unlink(missing_ok=True)

    def remove_working(self, attempt: int) -> None:
        self.working(attempt).unlink(missing_ok=True)

    def remove_all(self) -> None:
        """The job has ended: no attempt will resume it."""
        for path in self._files():
            path.unlink(missing_ok=True)

    def _files(self) -> list[Path]:
        # The job's files and the temporary files of interrupted writes (".<name>.<random>.tmp").
        return [
            path for pattern in (f"{self.job_id}.*", f".{self.job_id}.*")
            for path in self.folder.glob(pattern)
        ]


_STEP = re.compile(r"\.step-(\d+)\.pt$")


def _step_of(path: Path) -> int | None:
    match = _STEP.search(path.name)
    return int(match.group(1)) if match else None


def _place(source: Path, target: Path) -> None:
    """Make `target` a copy of `source` atomically: a hard link where the file system has them,
    a copy otherwise, under a temporary name first, then renamed over `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=".tmp")
    os.close(handle)
    os.unlink(temporary)
    try:
        try:
            os.link(source, temporary)
        except FileNotFoundError:
            raise
        except OSError:  # no hard links here (some network file systems)
            shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
