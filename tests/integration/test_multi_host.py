"""The API and two workers as if on three hosts: each with its own GRADLAB_HOME and no shared
files, on PostgreSQL, Redis and a real S3 server. A data set is uploaded through the API and
trained on; the first worker is killed (-9) mid-job; the second resumes from the checkpoint in
the object store; the best model and its ONNX export, downloaded through the SDK, give the
job's recorded validation accuracy back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest
import torch
from fastapi.testclient import TestClient
from gradlab_client import Client

from service import create_app
from store import migrate, teams
from store.db import Database
from store.settings import Settings
from tests.conftest import create_pg_database, drop_pg_database, s3_settings_fields
from tests.integration.conftest import FAST_LEASES
from tests.s3_server import S3Server

pytestmark = pytest.mark.integration
STEPS, CHECKPOINT_EVERY = 6000, 100
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def blobs(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs in 4-D, far from zero mean and unit scale (so the normalization
    inside the exports matters)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, rows)
    centres = np.array([[0, 0, 0, 0], [3, 1, 0, -2], [-2, 3, 1, 1]], dtype=np.float32)
    x = centres[y] + rng.normal(0, 1.2, (rows, 4)).astype(np.float32)
    return x * 40 + 100, y


@pytest.fixture
def hosts(tmp_path: Path, pg_admin_url: str, redis_url: str, s3_server: S3Server,
          s3_bucket: str) -> Iterator[dict[str, Any]]:
    database_url = create_pg_database(pg_admin_url)
    shared = {
        "database_url": database_url, "broker_url": redis_url,
        "task_queue": f"gradlab-multi-{uuid.uuid4().hex[:8]}",
        **s3_settings_fields(s3_server, s3_bucket),
    }
    api_settings = Settings(home=tmp_path / "api-host", **shared, _env_file=None)
    migrate.upgrade(api_settings)
    database = Database.from_settings(api_settings)
    with database.transaction() as session:
        team = teams.create_team(session, name="multi-host")
        key = teams.create_api_key(session, team_id=team.id)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GRADLAB_")}, **THREADS,
        **{f"GRADLAB_{name.upper()}": value for name, value in shared.items()},
        **FAST_LEASES, "GRADLAB_CHECKPOINT_EVERY_STEPS": str(CHECKPOINT_EVERY),
    }
    workers: list[subprocess.Popen[bytes]] = []
    yield {"settings": api_settings, "key": key, "env": env, "workers": workers,
           "root": tmp_path}
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    database.close()
    drop_pg_database(pg_admin_url, database_url)


def start_worker(hosts: dict[str, Any], name: str) -> tuple[subprocess.Popen[bytes], Path]:
    home = hosts["root"] / name
    home.mkdir()
    log = home / "worker.log"
    env = {**hosts["env"], "GRADLAB_HOME": str(home)}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "gradlab_server.cli", "worker"],
                                   env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # its own group: kill -9 them all
    hosts["workers"].append(process)
    deadline = time.monotonic() + 90
    while b" ready." not in log.read_bytes():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    return process, home


def wait_until(client: Client, job_id: str, done: Any, timeout: float, why: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.jobs.get(job_id)
        if done(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id}: no {why} in {timeout:.0f}s: {client.jobs.get(job_id)}")


def accuracy(logits: Any, labels: np.ndarray) -> float:
    return float((np.asarray(logits).argmax(axis=1) == labels).mean())


def test_upload_train_kill_resume_elsewhere_and_load(hosts: dict[str, Any],
                                                     tmp_path: Path) -> None:
    x, y = blobs(900, seed=1)
    x_test, y_test = blobs(300, seed=2)
    data = tmp_path / "blobs.npz"
    np.savez(data, x=x, y=y, x_test=x_test, y_test=y_test)
    api = TestClient(create_app(hosts["settings"]))
    with api, Client(base_url=str(api.base_url), api_key=hosts["key"], http_client=api) as client:
        upload = client.datasets.upload(data, name="blobs")
        first, first_home = start_worker(hosts, "worker-host-1")
        job = client.jobs.create({
            "data": {"dataset": upload.id}, "model": {"hidden": [64, 64]},
            "optimizer": {"name": "adam", "lr": 0.003},
            "training": {"steps": STEPS, "batch_size": 64, "eval_every": 200, "seed": 3},
            "telemetry": {"snapshot_every": 500, "bins": 16},
        })
        running = wait_until(client, job.id, lambda j: j.status == "running"
                             and j.progress.step >= 3 * CHECKPOINT_EVERY, 180, "progress")
        os.killpg(first.pid, signal.SIGKILL)  # the main process and its pool process
        first.wait()
        assert running.progress.step < STEPS, "the job ended before the worker was killed"

        _, second_home = start_worker(hosts, "worker-host-2")
        done = wait_until(client, job.id, lambda j: j.done, 300, "end")
        log = (second_home / "worker.log").read_text()
        assert done.status == "succeeded", (done, log[-3000:])
        assert done.attempt == 2 and f"job {job.id} attempt 2 claimed; resuming after step" in log
        # Each host fetched the upload into its own cache; nothing was shared but the services.
        assert (first_home / "cache" / "uploads").is_dir()
        assert (second_home / "cache" / "uploads").is_dir()

        recorded = done.summary["best_val_accuracy"]
        assert recorded is not None and recorded > 0.5
        onnx_file = client.jobs.download(job.id, name="model-best.onnx", path=tmp_path)
        (logits,) = onnxruntime.InferenceSession(str(onnx_file)).run(None, {"x": x_test})
        assert accuracy(logits, y_test) == pytest.approx(recorded, abs=1e-4)
        model = client.jobs.load_model(job.id, which="best")
        with torch.no_grad():
            torch_logits = model(torch.from_numpy(x_test)).numpy()
        assert accuracy(torch_logits, y_test) == pytest.approx(recorded, abs=1e-4)
        assert np.abs(torch_logits - logits).max() <= 1e-4
