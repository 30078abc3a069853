"""What the containers would run, run here as plain processes: each gradlab service's `command`
and `environment` are read from docker-compose.yml, the container hosts swapped for this machine's
PostgreSQL (a fresh database) and Redis (a database number of its own, flushed), and the rest
left as compose sets it (JSON logs, worker metrics, concurrency 1). Then a job goes from an HTTP
submit, with a key made by `gradlab-server create-key`, to succeeded, and the API's and the
worker's /metrics, health checks and JSON logs are read as an operator would. As in compose, the
API and the worker share no folder (each has a GRADLAB_HOME of its own): the object store, a
real S3 server standing in for the seaweedfs service, holds what they exchange.

What only an engine and a GPU can show (image builds, GPU reservation, CUDA) is not tested here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import make_url

from tests.conftest import (
    REDIS_URL,
    create_pg_database,
    drop_pg_database,
    s3_settings_fields,
    unavailable,
)
from tests.deploy.compose_support import ROOT, environment, free_port, service
from tests.s3_server import S3Server

pytestmark = pytest.mark.integration

COMPOSE_VARIABLES = {"POSTGRES_PASSWORD": "unused-here", "REDIS_PASSWORD": "unused-here",
                     "S3_SECRET_KEY": "unused-here"}
REDIS_DB = 11  # tests/conftest's redis_url uses 15 and below, tests/integration 13
TERMINAL = {"succeeded", "failed", "cancelled", "diverged"}
SPIRAL: dict[str, Any] = {
    "name": "compose-spiral",
    "data": {"dataset": "spiral", "options": {"points": 100}},
    "model": {"hidden": [16, 16]},
    "training": {"steps": 60, "batch_size": 32, "eval_every": 20},
    "telemetry": {"snapshot_every": 20, "bins": 16},
}
HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def executable(command: list[str]) -> list[str]:
    """The compose command with its program taken from this virtual environment."""
    program = Path(sys.executable).parent / command[0]
    assert program.exists(), f"{command[0]} is not installed in {program.parent}"
    return [str(program), *command[1:]]


@dataclass
class Local:
    """How this machine stands in for the compose network."""

    database_url: str
    broker_url: str
    homes: Path  # each service's GRADLAB_HOME is a folder of its own under it
    s3: dict[str, str]  # the artifact_* settings of the local S3 server and bucket
    api_port: int = field(default_factory=free_port)
    worker_metrics_port: int = field(default_factory=free_port)

    def env_for(self, name: str) -> dict[str, str]:
        """The service's compose environment, with the container hosts replaced by local ones;
        everything else as compose sets it."""
        env = environment(service(name, COMPOSE_VARIABLES))
        assert make_url(env["GRADLAB_DATABASE_URL"]).host == "postgres"
        assert env["GRADLAB_BROKER_URL"].startswith("redis://:unused-here@redis:6379/")
        assert env["GRADLAB_HOME"] == "/data"
        assert env["GRADLAB_ARTIFACT_URL"] == "s3://gradlab/gradlab"
        assert env["GRADLAB_ARTIFACT_ENDPOINT"] == "http://seaweedfs:8333"
        env |= {"GRADLAB_DATABASE_URL": self.database_url, "GRADLAB_BROKER_URL": self.broker_url,
                "GRADLAB_HOME": str(self.homes / name)}
        env |= {f"GRADLAB_{key.upper()}": value for key, value in self.s3.items()}
        if "GRADLAB_PORT" in env:
            assert (env["GRADLAB_HOST"], env["GRADLAB_PORT"]) == ("0.0.0.0", "8000")
            env |= {"GRADLAB_HOST": "127.0.0.1", "GRADLAB_PORT": str(self.api_port)}
        if "GRADLAB_WORKER_METRICS_PORT" in env:
            env |= {"GRADLAB_WORKER_METRICS_HOST": "127.0.0.1",
                    "GRADLAB_WORKER_METRICS_PORT": str(self.worker_metrics_port)}
        # The machine's environment without any GRADLAB_* of the developer's shell.
        base = {key: value for key, value in os.environ.items() if not key.startswith("GRADLAB_")}
        return base | env


@dataclass
class Stack:
    local: Local
    key: str
    api: subprocess.Popen[bytes]
    api_log: Path
    workdir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local.api_port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"},
                            timeout=10)


def run_to_completion(command: list[str], env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(executable(command), env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stderr}"
    return result.stdout


def start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(executable(command), env=env, cwd=cwd, stdout=handle,
                                stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(ready: Any, process: subprocess.Popen[bytes], log: Path, what: str,
               timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}:\n{tail(log)}")
        time.sleep(0.2)
    raise AssertionError(f"{what} did not become ready:\n{tail(log)}")


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def healthcheck(target: str, env: dict[str, str], cwd: Path) -> int:
    return subprocess.run([sys.executable, str(HEALTHCHECK), target], env=env, cwd=cwd,
                          capture_output=True, timeout=60).returncode


def _redis_broker() -> Iterator[str]:
    import redis

    url = f"{REDIS_URL.rstrip('/')}/{REDIS_DB}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as error:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {error}")
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def stack(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory,
          s3_server: S3Server) -> Iterator[Stack]:
    """migrate (to completion), a key from create-key, and the API, as compose runs them."""
    workdir = tmp_path_factory.mktemp("compose")  # the cwd: no developer's .env is read
    broker = _redis_broker()
    bucket = s3_server.create_bucket()  # what compose's create-bucket step does
    local = Local(create_pg_database(pg_admin_url), next(broker), workdir / "hosts",
                  s3_settings_fields(s3_server, bucket))
    try:
        migrate = service("migrate", COMPOSE_VARIABLES)
        run_to_completion(migrate["command"], local.env_for("migrate"), workdir)
        api = service("api", COMPOSE_VARIABLES)
        key_out = run_to_completion(["gradlab-server", "create-key", "--team", "compose"],
                                    local.env_for("api"), workdir)
        log = workdir / "api.log"
        process = start(api["command"], local.env_for("api"), workdir, log)
        try:
            wait_until(lambda: healthcheck("api", local.env_for("api"), workdir) == 0,
                       process, log, "the API")
            yield Stack(local, key_out.strip().splitlines()[-1], process, log, workdir)
        finally:
            stop(process)
    finally:
        drop_pg_database(pg_admin_url, local.database_url)
        next(broker, None)
        s3_server.drop_bucket(bucket)


@pytest.fixture
def worker_log(stack: Stack) -> Iterator[Path]:
    """The compose worker, running; its combined output's path."""
    log = stack.workdir / f"worker-{uuid.uuid4().hex[:6]}.log"
    worker = service("worker", COMPOSE_VARIABLES)
    process = start(worker["command"], stack.local.env_for("worker"), stack.workdir, log)
    try:
        wait_until(lambda: any(line.get("message", "").endswith(" ready.")
                               for line in json_lines(log)), process, log, "the worker")
        yield log
    finally:
        stop(process)


def json_lines(log: Path) -> list[dict[str, Any]]:
    """Every complete line of a JSON-format log, parsed: a line that is not JSON fails the
    test. A last line without its newline yet is being written, and is left for later."""
    text = log.read_text(errors="replace")
    lines = [line for line in text[: text.rfind("\n") + 1].splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON log line: {line!r}") from None
    return parsed


def scrape(url: str) -> Samples:
    text = httpx.get(url, timeout=10).text
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape_until(url: str, done: Callable[[Samples], bool], timeout: float = 30) -> Samples:
    deadline = time.monotonic() + timeout
    samples = scrape(url)
    while not done(samples) and time.monotonic() < deadline:
        time.sleep(0.2)
        samples = scrape(url)
    return samples


def wait_for_job(client: httpx.Client, job_id: str, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish:\n{tail(log)}")


def test_a_job_goes_from_submit_to_succeeded_through_the_compose_commands(
    stack: Stack, worker_log: Path
) -> None:
    api_metrics = f"{stack.url}/metrics"
    before = scrape(api_metrics)
    with stack.client() as client:
        submitted = client.post("/v1/jobs", json=SPIRAL)
        assert submitted.status_code == 201, submitted.text
        job = wait_for_job(client, submitted.json()["id"], worker_log)
    assert job["status"] == "succeeded", job
    assert (job["attempt"], job["device"]) == (1, "cpu")  # device "auto" on a machine w/o GPU
    with stack.client() as client:  # the worker kept the model in S3; the API serves it
        kept = {a["name"] for a in client.get(f"/v1/jobs/{job['id']}/artifacts").json()}
        assert {"weights-best.safetensors", "model-best.onnx", "model-card.json"} <= kept
        card = client.get(f"/v1/jobs/{job['id']}/artifacts/model-card.json")
        assert card.status_code == 200 and card.json()["job_id"] == job["id"]

    after = scrape(api_metrics)
    succeeded = ("gradlab_jobs", frozenset({("status", "succeeded")}))
    assert after[succeeded] == before.get(succeeded, 0) + 1
    posts = ("gradlab_http_requests_total",
             frozenset({("method", "POST"), ("route", "/v1/jobs"), ("status", "201")}))
    assert after[posts] == before.get(posts, 0) + 1
    assert after[("gradlab_queue_depth", frozenset())] == 0  # Redis: the worker took it
    assert after[("gradlab_oldest_queued_job_age_seconds", frozenset())] == 0

    # The job's row says succeeded a moment before its task returns: wait for the task's end.
    ended = ("gradlab_worker_jobs_total", frozenset({("outcome", "succeeded")}))
    worker = scrape_until(f"http://127.0.0.1:{stack.local.worker_metrics_port}/metrics",
                          lambda samples: samples.get(ended, 0) >= 1)
    assert worker[("gradlab_worker_steps_total", frozenset())] >= SPIRAL["training"]["steps"]
    assert worker[("gradlab_worker_running_jobs", frozenset())] == 0
    assert worker[("gradlab_worker_parent_cuda_initialized", frozenset())] == 0

    # The container health checks pass against these processes.
    assert healthcheck("worker", stack.local.env_for("worker"), stack.workdir) == 0
    assert healthcheck("api", stack.local.env_for("api"), stack.workdir) == 0

    # JSON logs, every line; the job's lines name it and its attempt.
    about_job = [line for line in json_lines(worker_log) if line.get("job_id") == job["id"]]
    assert about_job and all(line["attempt"] in (None, 1) for line in about_job)
    assert any(line["attempt"] == 1 for line in about_job)
    assert any("POST /v1/jobs" in line["message"] for line in json_lines(stack.api_log))


def test_the_worker_parent_never_calls_into_cuda(stack: Stack, tmp_path: Path) -> None:
    """CUDA must never be initialised in the process the pool forks from. No GPU here, so this
    records every call into torch.cuda's entry points (the child's torch.cuda.is_available(), in
    resolve_device, shows the recording works) and checks that none came from the parent."""
    probe_log = tmp_path / "cuda-calls.log"
    log = tmp_path / "probe-worker.log"
    env = stack.local.env_for("worker") | {"GRADLAB_TEST_CUDA_PROBE_LOG": str(probe_log),
                                           "GRADLAB_WORKER_METRICS_PORT": str(free_port())}
    process = subprocess.Popen([sys.executable, str(Path(__file__).parent / "cuda_probe.py")],
                               env=env, cwd=stack.workdir, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: b" ready." in log.read_bytes(), process, log, "the probed worker")
        with stack.client() as client:
            job_id = client.post("/v1/jobs", json=SPIRAL | {"name": "probe"}).json()["id"]
            assert wait_for_job(client, job_id, log)["status"] == "succeeded"
    finally:
        stop(process)
    parent, calls = read_probe(probe_log)
    assert any(name == "is_available" for pid, name in calls if pid != parent), calls
    assert [name for pid, name in calls if pid == parent] == []


def read_probe(path: Path) -> tuple[int, list[tuple[int, str]]]:
    lines = path.read_text().splitlines()
    assert lines and lines[0].startswith("parent "), lines[:3]
    calls = [(int(pid), name) for pid, name in (line.split() for line in lines[1:])]
    return int(lines[0].split()[1]), calls

