"""A job's checkpoint files, kept so that a retry resumes from exactly the recorded step.

The database records the step of the last complete checkpoint (leases.record_checkpoint); on
resume, rows past that step are deleted and trained again. So the file a retry loads must hold
exactly that step, and one file rewritten in place cannot promise it:

- the loop writes a checkpoint, then its rows are flushed, then its step is recorded; a worker
  that dies in between leaves a file ahead of the database, and the rows in between would be
  deleted and never trained again;
- an attempt presumed dead (an orphaned or frozen process) may still write the file while its
  successor trains: checkpoint files are not fenced, database writes are.

So each attempt trains with a local working file of its own (`<job>.attempt-<n>.pt` under this
worker's checkpoints_dir), and once a checkpoint's rows are stored it is published: uploaded to
the artifact store as `jobs/<job>/checkpoints/step-<s>.pt` before the step is recorded. A retry,
on this worker or on another host, downloads the object of the recorded step to its own working
file. Two attempts that publish the same step publish the same state (training is
deterministic), so the last upload wins harmlessly. The upload happens on the training thread
(the reporter records a checkpoint before the loop goes on), so the working file cannot change
under it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from store.artifacts import ArtifactStore
from store.job_artifacts import job_prefix

log = logging.getLogger(__name__)


class CheckpointFiles:
    def __init__(self, folder: Path, job_id: str, store: ArtifactStore) -> None:
        self.folder = folder
        self.job_id = job_id
        self.store = store

    def working(self, attempt: int) -> Path:
        """The local file attempt `attempt` trains with (the loop writes it atomically)."""
        return self.folder / f"{self.job_id}.attempt-{attempt}.pt"

    def at_step(self, step: int) -> str:
        """The artifact store key of the checkpoint of `step`."""
        return f"{self._prefix}/step-{step}.pt"

    def publish(self, attempt: int, step: int) -> None:
        """Make the working file (just written for `step`) the checkpoint of `step`."""
        self.store.put_file(self.at_step(step), self.working(attempt))

    def restore(self, attempt: int, step: int) -> bool:
        """Give attempt `attempt` the checkpoint of `step` as its working file; False when the
        store has no such checkpoint (the job then starts over)."""
        try:
            self.store.get_file(self.at_step(step), self.working(attempt))
        except FileNotFoundError:
            log.warning("checkpoint of step %d is missing; job %s starts over", step, self.job_id)
            return False
        return True

    def prune(self, keep_step: int) -> None:
        """Remove published checkpoints other than `keep_step` (the one recorded now)."""
        stale = [info.key for info in self.store.listing(self._prefix)
                 if _step_of(info.key) not in (None, keep_step)]
        self.store.delete(stale)

    def remove_working(self, attempt: int) -> None:
        self.working(attempt).unlink(missing_ok=True)

    def remove_all(self) -> None:
        """The job has ended: no attempt will resume it."""
        for path in self._local_files():
            path.unlink(missing_ok=True)
        self.store.delete_prefix(self._prefix)

    @property
    def _prefix(self) -> str:
        return f"{job_prefix(self.job_id)}/checkpoints"

    def _local_files(self) -> list[Path]:
        # The job's working files and the temporary files of interrupted writes.
        return [
            path for pattern in (f"{self.job_id}.*", f".{self.job_id}.*")
            for path in self.folder.glob(pattern)
        ]


_STEP = re.compile(r"/step-(\d+)\.pt$")


def _step_of(key: str) -> int | None:
    match = _STEP.search(key)
    return int(match.group(1)) if match else None
