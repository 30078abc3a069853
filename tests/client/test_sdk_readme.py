"""client/README.md's "Use it from your pipeline" snippets run as written, in a fresh
interpreter, given only GRADLAB_URL and GRADLAB_API_KEY: here against the real app served by
uvicorn on a local port, with a thread in the worker's place that records and ends the job."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from store import leases, orm
from store.db import Database

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "client" / "README.md"
SECTION = "## Use it from your pipeline"


def pipeline_snippets(readme: Path = README) -> list[str]:
    text = readme.read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


@pytest.fixture
def live_url(app: FastAPI) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def stand_in_worker(database: Database, record: Callable[[str], int]) -> threading.Thread:
    """Records and ends the first job that is submitted, as a worker would."""

    def run() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with database.read() as session:
                job_id = session.scalars(
                    select(orm.Job.id).where(orm.Job.status == "queued")
                ).first()
            if job_id is not None:
                attempt = record(job_id)
                with database.transaction() as session:
                    leases.finish_job(session, job_id=job_id, attempt=attempt,
                                      status="succeeded", progress_step=20,
                                      summary={"final_val_accuracy": 0.93})
                return
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def run_snippet(code: str, url: str, key: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRADLAB_URL": url, "GRADLAB_API_KEY": key}
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_the_readme_has_the_snippets() -> None:
    snippets = pipeline_snippets()
    assert len(snippets) == 2 and "jobs.wait" in snippets[0] and "ValidationError" in snippets[1]
    # The top-level README shows the same pipeline code; tests/integration runs it on a worker.
    assert pipeline_snippets(ROOT / "README.md") == snippets[:1]


def test_the_pipeline_snippet_runs_as_written(
    live_url: str, api_key: str, database: Database, record: Callable[[str], int], tmp_path: Path
) -> None:
    worker = stand_in_worker(database, record)
    result = run_snippet(pipeline_snippets()[0], live_url, api_key, tmp_path)
    worker.join(timeout=20)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "final val accuracy: 0.93",
        "train_loss: 1.0 -> 0.1",
        "fc1 gradient std by step: {0: 1.0, 5: 1.0}",
    ]


def test_the_error_snippet_runs_as_written(live_url: str, api_key: str, tmp_path: Path) -> None:
    result = run_snippet(pipeline_snippets()[1], live_url, api_key, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("model.activation 'swish' is not one of")
