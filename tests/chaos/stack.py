"""A stack the chaos tests can break: the real app in process, real worker processes
(`python -m gradlab_server.cli worker`, each in a process group of its own, so that a test can
kill one by pid and the teardown can kill whatever is left of it), and the database read
directly, which is the truth the tests check.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text, update

from store import orm, series, teams
from store.db import Database
from store.errors import Unavailable
from store.settings import Settings
from tests.chaos.services import wait_until

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"succeeded", "failed", "cancelled", "diverged"}
READY = b" ready."
# One training thread per worker: two workers share two cores, and PyTorch's threads spin.
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# -- processes, read from /proc (the workers' pool processes are not our children) --------------


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    return raw[raw.rindex(")") + 2:].split()


def is_alive(pid: int) -> bool:
    """Running or sleeping; a zombie (killed, not yet reaped by its new parent) is dead."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields is not None else None


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and parent_of(int(entry.name)) == pid and is_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


# -- worker processes ---------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def pool_pids(self) -> list[int]:
        return children_of(self.pid)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill_all(self) -> None:
        """kill -9 the pool processes, then the main process."""
        for child in self.pool_pids():
            kill(child)
        self.process.kill()
        self.process.wait(30)

    def close(self) -> None:
        """Kill whatever is left of this worker: the members of its process group (its pool
        processes, a harness's orphan) outlive a killed main process. Each is checked to be
        ours by its environment, since a group id is free for reuse once its members are gone."""
        if self.process.poll() is None:  # not reaped yet, so the pid is still this worker's
            self.process.kill()
        for pid in self.group():
            kill(pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(30)

    def group(self) -> list[int]:
        """Live processes of this worker's process group that run with its GRADLAB_HOME."""
        home = f"GRADLAB_HOME={self.env['GRADLAB_HOME']}".encode()
        members = []
        for entry in Path("/proc").iterdir():
            fields = _stat(int(entry.name)) if entry.name.isdigit() else None
            if fields is None or int(fields[2]) != self.pid or fields[0] in ("Z", "X"):
                continue
            with contextlib.suppress(OSError):
                if home in Path(f"/proc/{entry.name}/environ").read_bytes().split(b"\0"):
                    members.append(int(entry.name))
        return members


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
            start_new_session=True,  # its own process group: killed as one at teardown
        )


# -- the stack ----------------------------------------------------------------------------------


@dataclass
class ChaosStack:
    name: str
    settings: Settings
    env: dict[str, str]  # the workers' environment (GRADLAB_* and thread counts)
    database: Database
    client: TestClient
    workers: list[WorkerProcess] = field(default_factory=list)
    _started: int = 0

    # -- workers --

    def start_workers(self, count: int, **overrides: str) -> list[WorkerProcess]:
        """Start `count` workers at once and wait until each is ready."""
        env = {**self.env, **overrides}
        started = []
        for _ in range(count):
            self._started += 1
            name = f"{self.name}-w{self._started}"
            log = self.settings.home / f"{name}.log"
            command = [sys.executable, "-m", "gradlab_server.cli", "worker"]
            started.append(WorkerProcess(name, spawn(command, env, log), log, env))
        self.workers += started
        for worker in started:
            self._wait_ready(worker)
        return started

    def _wait_ready(self, worker: WorkerProcess) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if READY in worker.log.read_bytes():
                return
            if not worker.alive():
                raise AssertionError(f"worker {worker.name} exited:\n{worker.log_text()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"worker {worker.name} not ready:\n{worker.log_text()[-3000:]}")

    def live_workers(self) -> list[WorkerProcess]:
        return [worker for worker in self.workers if worker.alive()]

    def ensure_workers(self, count: int) -> None:
        """Exactly `count` live workers with the stack's own settings."""
        for worker in self.workers:
            if not worker.alive() or worker.env != self.env:
                worker.close()
        self.workers = [w for w in self.workers if w.alive()]
        missing = count - len(self.workers)
        if missing > 0:
            self.start_workers(missing)
        for extra in self.workers[count:]:
            self.stop_worker(extra)

    def stop_worker(self, worker: WorkerProcess, timeout: float = 30) -> None:
        worker.process.terminate()
        try:
            worker.process.wait(timeout)
        except subprocess.TimeoutExpired:
            worker.close()
        worker.close()
        self.workers.remove(worker)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.workers = []

    def worker_of(self, job_id: str) -> tuple[WorkerProcess, int]:
        """The worker whose pool process runs the job now, and that pool process's pid."""
        pid = pool_pid_of(self.row(job_id)["worker"])
        parent = parent_of(pid)
        for worker in self.workers:
            if worker.pid == parent:
                return worker, pid
        raise AssertionError(f"no worker of this stack runs pid {pid} (parent {parent})")

    def all_logs(self) -> str:
        """The logs of every worker this stack ever started (and of the orphan harness)."""
        paths = sorted(self.settings.home.glob(f"{self.name}-*.log"))
        return "\n".join(path.read_text(errors="replace") for path in paths)

    # -- jobs --

    def submit(self, spec: dict[str, Any]) -> str:
        response = self.client.post("/v1/jobs", json=spec)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def row(self, job_id: str) -> dict[str, Any]:
        with self.database.read() as session:
            job = session.get(orm.Job, job_id)
            assert job is not None, job_id
            return {column.name: getattr(job, column.name) for column in orm.Job.__table__.c}

    def wait_for(
        self, job_id: str, done: Callable[[dict[str, Any]], bool], timeout: float, what: str = ""
    ) -> dict[str, Any]:
        """Poll the job's row until `done(row)`; an outage of the database is waited out."""
        deadline = time.monotonic() + timeout
        row: dict[str, Any] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(Unavailable):
                row = self.row(job_id)
                if done(row):
                    return row
            time.sleep(0.05)
        raise AssertionError(
            f"job {job_id}: timed out after {timeout:.0f} s waiting for {what or done}; "
            f"last {_brief(row)}\n{self.all_logs()[-6000:]}"
        )

    def wait_done(self, job_id: str, timeout: float = 180) -> dict[str, Any]:
        return self.wait_for(job_id, lambda r: r["status"] in TERMINAL, timeout, "the end")

    def wait_checkpoint(self, job_id: str, step: int, timeout: float = 120) -> dict[str, Any]:
        return self.wait_for(
            job_id,
            lambda r: r["status"] == "running" and (r["checkpoint_step"] or 0) >= step,
            timeout, f"a checkpoint at step {step} or later",
        )

    def wait_attempt(self, job_id: str, attempt: int, timeout: float = 60) -> dict[str, Any]:
        return self.wait_for(
            job_id, lambda r: r["status"] == "running" and r["attempt"] >= attempt, timeout,
            f"attempt {attempt} running",
        )

    def abandon_unfinished_jobs(self) -> None:
        """Cancel whatever an earlier test left queued or running (a fenced write stops it)."""
        with self.database.transaction() as session:
            session.execute(
                update(orm.Job)
                .where(orm.Job.status.in_(["queued", "running"]))
                .values(status="cancelled", finished_at=orm.utcnow(), lease_expires_at=None)
            )

    def metric_rows(self, job_id: str) -> list[tuple[str, int, float | None, int]]:
        with self.database.read() as session:
            return series.all_points(session, job_id=job_id)

    def snapshot_rows(self, job_id: str) -> dict[tuple[str, str, int], dict[str, Any]]:
        with self.database.read() as session:
            result = session.execute(
                text("SELECT kind, layer, step, stats FROM snapshots WHERE job_id = :id"),
                {"id": job_id},
            )
            return {(kind, layer, step): _json(stats) for kind, layer, step, stats in result}

    def wait_log(self, needle: str, timeout: float = 20) -> None:
        """Wait for a line of some worker's log (a pool process logs a moment after it writes)."""
        wait_until(lambda: needle in self.all_logs(), timeout, f"{needle!r} in a worker log")

    def claims_in_logs(self, job_id: str) -> list[int]:
        """The attempts the workers' logs say they claimed for this job."""
        pattern = re.compile(rf"job {re.escape(job_id)} attempt (\d+) claimed")
        return [int(match) for match in pattern.findall(self.all_logs())]


def _json(value: Any) -> dict[str, Any]:
    import json

    return dict(json.loads(value) if isinstance(value, str) else value)


def _brief(row: dict[str, Any]) -> str:
    keys = ("status", "attempt", "progress_step", "checkpoint_step", "worker", "error")
    return ", ".join(f"{key}={row.get(key)!r}" for key in keys)


def pool_pid_of(worker_field: str | None) -> int:
    assert worker_field, "the job names no worker"
    return int(worker_field.rsplit(":", 1)[1])


def make_api_key(database: Database, team: str) -> str:
    with database.transaction() as session:
        created = teams.create_team(session, name=team)
        return teams.create_api_key(session, team_id=created.id)


def worker_env(settings_env: dict[str, str]) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("GRADLAB_")}
    return {**inherited, **THREAD_ENV, "PYTHONUNBUFFERED": "1", **settings_env}
