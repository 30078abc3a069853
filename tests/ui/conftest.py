"""Fixtures of the dashboard tests: the real app and worker (`gradlab-server run` on SQLite, on a
free port) with finished real jobs, and a real headless Chromium driven by playwright-core.

    ui_stack   (module) the running server: base URL, key, home, and the ids of real jobs that
               finished: "healthy" (ReLU, Kaiming) and "deep_sigmoid" (9 sigmoid layers)
    app, client  the API tests' in-process app (tests/service/conftest.py), SQLite only
    drive      drive(actions, timeout_ms=...) -> the report of tests/ui/drive.mjs
    artifacts  test-artifacts/ui/, where screenshots go

Chromium is Debian's (/usr/bin/chromium, `apt-get install chromium`) and playwright-core comes
from `npm ci`; without them the tests skip, or fail under GRADLAB_REQUIRE_SERVICES=1 (CI).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import unavailable
from tests.diagnosis.scenarios import KAIMING, mlp
from tests.integration.test_embedded_run import free_port, wait_for_key, wait_until_healthy

# The in-process app of the API tests, for the tests that need no browser (test_serving.py).
from tests.service.conftest import (  # noqa: F401
    app,
    app_settings,
    broker_dir,
    celery_app,
    client,
    db_backend,
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GRADLAB_TEST_CHROMIUM", "/usr/bin/chromium")
DRIVER = Path(__file__).with_name("drive.mjs")
ARTIFACTS = ROOT / "test-artifacts" / "ui"

# The lecture's two pictures (§2, §7): a deep sigmoid whose lower layers stop learning, and the
# same depth with ReLU and He init, which learns. Small enough for a shared CPU.
SPECS = {
    "healthy": {**mlp([64] * 4, init=KAIMING, steps=400), "name": "healthy-relu"},
    "deep_sigmoid": {**mlp([64] * 9, "sigmoid", steps=400), "name": "deep-sigmoid"},
}


@dataclass
class UiStack:
    base: str
    key: str
    home: Path
    jobs: dict[str, str] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def get(self, path: str) -> dict[str, Any]:
        # Generous timeouts: the machine is shared, and a slow answer is not what is tested.
        response = httpx.get(f"{self.base}{path}", headers=self.auth, timeout=60)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(f"{self.base}{path}", json=body, headers=self.auth, timeout=60)


def _needs_browser() -> None:
    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        unavailable("playwright-core is not installed: npm ci")
    if not (ROOT / "node_modules" / "echarts").is_dir():
        unavailable("echarts is not installed: npm ci")


def _wait_done(stack: UiStack, job_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = stack.get(f"/v1/jobs/{job_id}")
        if job["status"] not in ("queued", "running"):
            return dict(job)
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture(scope="module")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiStack]:
    _needs_browser()
    home, port = tmp_path_factory.mktemp("ui") / "home", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADLAB_")}
    env.update(GRADLAB_HOME=str(home), GRADLAB_PORT=str(port), PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "gradlab_server.cli", "run"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=home.parent)
    try:
        stack = UiStack(f"http://127.0.0.1:{port}", wait_for_key(process, []), home)
        wait_until_healthy(stack.base, timeout=120)
        for label, spec in SPECS.items():
            response = stack.post("/v1/jobs", spec)
            assert response.status_code == 201, response.text
            stack.jobs[label] = response.json()["id"]
        for job_id in stack.jobs.values():
            assert _wait_done(stack, job_id)["status"] == "succeeded"
        yield stack
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def drive(ui_stack: UiStack, artifacts: Path) -> Callable[..., dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed")

    def drive_(actions: list[dict[str, Any]], timeout_ms: int = 120_000) -> dict[str, Any]:
        plan = {"base": ui_stack.base, "key": ui_stack.key, "out": str(artifacts),
                "chromium": CHROMIUM, "timeout_ms": timeout_ms, "actions": actions}
        done = subprocess.run([str(node), str(DRIVER), json.dumps(plan)], cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout_ms / 1000 * 4)
        assert done.returncode == 0, done.stderr[-4000:]
        report: dict[str, Any] = json.loads(done.stdout)
        assert "error" not in report, report["error"]
        return report

    return drive_
