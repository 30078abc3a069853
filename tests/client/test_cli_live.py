"""`gradlab watch` redrawn from the job's events, and `gradlab logs ID [-f]`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from store import events, joblogs, leases, series
from store.db import Database
from store.joblogs import LogLine

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def job_id(gradlab: Run, tmp_path: Path, spiral: dict[str, Any]) -> str:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spiral))
    code, out, _ = gradlab("submit", str(path))
    assert code == 0
    return out.strip()


def _train(database: Database, job_id: str, attempt: int) -> None:
    """What a worker's sink writes: metric rows with their event, then the ending."""
    time.sleep(0.3)
    rows = [(step, "train_loss", 2.0 / step) for step in range(1, 11)]
    with database.transaction() as session:
        series.write_metrics(session, job_id=job_id, attempt=attempt, rows=rows)
        events.metrics(session, job_id=job_id, rows=rows)
    time.sleep(0.3)
    with database.transaction() as session:
        leases.finish_job(session, job_id=job_id, attempt=attempt, status="diverged",
                          progress_step=10)


def test_watch_redraws_from_events_until_the_end(
    gradlab: Run, job_id: str, claim: Callable[[str], int], database: Database,
) -> None:
    attempt = claim(job_id)
    worker = threading.Thread(target=_train, args=(database, job_id, attempt))
    worker.start()
    code, out, err = gradlab("watch", job_id, "--interval", "0.05", "--json")
    worker.join()
    assert code == 3 and json.loads(out)["status"] == "diverged"
    lines = err.splitlines()
    assert lines[0].endswith("0/20 running")  # the state as it was when watch started
    # The ending, then the final values (from the metrics event, or read at the end).
    assert lines[-1].endswith("10/20 diverged train_loss=0.2")


def test_logs_prints_the_jobs_lines_and_follows_them_to_the_end(
    gradlab: Run, job_id: str, claim: Callable[[str], int], database: Database,
) -> None:
    attempt = claim(job_id)
    with database.transaction() as session:
        joblogs.append_lines(session, cap=100, lines=[
            LogLine(job_id, attempt, "INFO", f"job {job_id} attempt 1 claimed")])
    code, out, _ = gradlab("logs", job_id)
    assert code == 0 and out.strip().endswith(f"INFO    attempt 1: job {job_id} attempt 1 claimed")

    def later() -> None:
        time.sleep(0.3)
        with database.transaction() as session:
            joblogs.append_lines(session, cap=100, lines=[
                LogLine(job_id, attempt, "ERROR", "job failed\nTraceback: ...")])
            leases.finish_job(session, job_id=job_id, attempt=attempt, status="failed",
                              error="boom")

    worker = threading.Thread(target=later)
    worker.start()
    code, out, _ = gradlab("logs", job_id, "-f", "--interval", "0.05")
    worker.join()
    assert code == 0
    printed = out.splitlines()
    assert printed[0].endswith("attempt 1 claimed") and len(printed) == 3
    assert printed[1].endswith("ERROR   attempt 1: job failed") and printed[2] == "Traceback: ..."
