"""A one-line progress bar for `jobs.wait()` and the CLI, drawn only on a terminal.

On anything else (a CI log, a pipe) it stays silent: carriage-return redraws turn a log into noise.
"""

from __future__ import annotations

import sys
from typing import TextIO

from gradlab_contract.models import Job

_WIDTH = 30


class ProgressBar:
    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and _is_terminal(self._stream)
        self._drawn = False

    def update(self, job: Job, extra: str = "") -> None:
        if not self.enabled:
            return
        self._stream.write("\r" + describe_progress(job, extra) + "\x1b[K")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False


def describe_progress(job: Job, extra: str = "") -> str:
    """`[#######-------]  35% 175/500 running` and whatever the caller adds."""
    step, total = job.progress.step, job.progress.total_steps
    fraction = min(1.0, step / total) if total else 0.0
    filled = round(fraction * _WIDTH)
    bar = "#" * filled + "-" * (_WIDTH - filled)
    text = f"[{bar}] {fraction:4.0%} {step}/{total or '?'} {job.status}"
    return f"{text} {extra}".rstrip()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or stream-like object without a terminal
        return False
