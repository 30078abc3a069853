"""Fixtures of the chaos suite (`make chaos`, marker `chaos`): worker deaths and outages, with
real processes killed by pid, on private PostgreSQL and Redis servers (tests/chaos/services.py;
the machine's shared servers are never stopped or flushed).

    chaos_report    (session) the fault table; written to test-artifacts/chaos-report.json
                    and .md, and printed at the end of the run
    pg_stack        (session) PostgreSQL + Redis, the app in process; workers come and go
    stack           pg_stack made ready for one test: both servers up, nothing left queued or
                    running by an earlier test, two live workers with the stack's settings

Settings: short leases (heartbeat 0.5 s, lease 5 s, reaper every 1 s), a checkpoint every 50
steps, 3 attempts, queued jobs re-sent after 5 s, and a 2 s Redis visibility timeout, so that
every job of the suite outlives it.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from store import migrate
from store.db import Database
from store.settings import Settings
from tests.chaos.checks import RowsLost
from tests.chaos.report import MD_REPORT, ChaosReport
from tests.chaos.services import PrivatePostgres, PrivateRedis
from tests.chaos.stack import ChaosStack, make_api_key, worker_env
from tests.conftest import unavailable

FAST = {
    "heartbeat_seconds": 0.5,
    "lease_seconds": 5.0,
    "reaper_interval_seconds": 1.0,
    "checkpoint_every_steps": 50,
    "max_attempts": 3,
    "republish_after_seconds": 5.0,
}
VISIBILITY_TIMEOUT = 2.0
WORKERS = 2
_printed: list[str] = []
_reports: list[ChaosReport] = []  # the session's report, for the hook below
_stacks: list[ChaosStack] = []  # the stacks made so far (at most one has workers at a time)


@pytest.fixture(scope="session")
def chaos_report() -> Iterator[ChaosReport]:
    report = ChaosReport()
    _reports.append(report)
    yield report
    if report.rows:
        report.write()
        _printed.append(MD_REPORT.read_text())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[pytest.TestReport]:
    """A test that failed on lost rows still gets its row in the report, with the count, so
    that the "rows lost" column can show something other than 0."""
    report: pytest.TestReport = yield
    if call.when == "call" and call.excinfo is not None and _reports:
        error = call.excinfo.value
        if isinstance(error, RowsLost):
            _reports[0].add(item.name, item.name, f"FAILED: {error}"[:300], None, error.lost)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for table in _printed:
        terminalreporter.section("chaos: fault | what happened | time to recover | rows lost")
        terminalreporter.write(table)


# -- private servers --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
    except (RuntimeError, AssertionError) as error:
        server.close()
        unavailable(f"cannot start a private redis-server: {error}")
    yield server
    server.close()


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        server = PrivatePostgres()
    except RuntimeError as error:
        unavailable(f"cannot make a private PostgreSQL cluster: {error}")
    try:
        server.create()
    except (subprocess.SubprocessError, OSError) as error:
        server.close()
        unavailable(f"cannot start a private PostgreSQL cluster: {error}")
    yield server
    server.close()


# -- stacks -----------------------------------------------------------------------------------


@contextlib.contextmanager
def build_stack(
    name: str, home: Path, database_url: str, broker_url: str, **extra: object
) -> Iterator[ChaosStack]:
    """A migrated database, an API key, the app in process and no workers yet (the caller
    starts them: stack.start_workers)."""
    queue = f"chaos-{name}-{uuid.uuid4().hex[:6]}"
    values: dict[str, object] = {**FAST, **extra}
    settings = Settings(
        home=home, database_url=database_url, broker_url=broker_url, task_queue=queue,
        rate_limit_per_minute=1_000_000, _env_file=None, **values,  # type: ignore[arg-type]
    )
    settings.ensure_directories()
    migrate.upgrade(settings)
    database = Database.from_settings(settings)
    key = make_api_key(database, f"chaos-{name}")
    env = worker_env({
        "GRADLAB_HOME": str(home), "GRADLAB_DATABASE_URL": database_url,
        "GRADLAB_BROKER_URL": broker_url, "GRADLAB_TASK_QUEUE": queue,
        **{f"GRADLAB_{field.upper()}": str(value) for field, value in values.items()},
    })
    from service.app import create_app

    app = create_app(settings)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        stack = ChaosStack(name, settings, env, database, client)
        try:
            yield stack
        finally:
            stack.close()
            database.close()


@pytest.fixture(scope="session")
def pg_stack(
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ChaosStack]:
    home = tmp_path_factory.mktemp("pg-stack")
    with build_stack(
        "pg", home, private_postgres.url, private_redis.url,
        broker_visibility_timeout_seconds=VISIBILITY_TIMEOUT,
    ) as stack:
        yield stack


@pytest.fixture
def stack(
    pg_stack: ChaosStack, private_postgres: PrivatePostgres, private_redis: PrivateRedis
) -> ChaosStack:
    """pg_stack as a test finds it: servers up (an earlier test may have failed mid-outage),
    no job of an earlier test left, WORKERS live workers."""
    if private_redis.process is None:
        private_redis.start()
    if not private_postgres.answers():
        private_postgres.start()
    return _ready(pg_stack)


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    """The embedded setup: SQLite and the filesystem broker (no server to break)."""
    home = tmp_path_factory.mktemp("sqlite-stack")
    with build_stack("sqlite", home, f"sqlite:///{home / 'gradlab.db'}", "filesystem://") as stack:
        yield stack


@pytest.fixture
def sqlite_stack(embedded_stack: ChaosStack) -> ChaosStack:
    """embedded_stack with no job of an earlier test left and WORKERS live workers."""
    return _ready(embedded_stack)


def _ready(stack: ChaosStack) -> ChaosStack:
    """Give `stack` WORKERS workers and no leftover job; the other stack's workers are killed
    first, so that a test has the two cores to itself and its workers."""
    for other in _stacks:
        if other is not stack:
            other.close()
    if stack not in _stacks:
        _stacks.append(stack)
    stack.abandon_unfinished_jobs()
    stack.ensure_workers(WORKERS)
    return stack


@pytest.fixture(params=["pg", "sqlite"])
def any_stack(request: pytest.FixtureRequest) -> ChaosStack:
    """Each test that takes it runs on PostgreSQL + Redis, then on SQLite + the filesystem
    broker: their workers differ where it matters (Celery's pool sets signals differently)."""
    name = "stack" if request.param == "pg" else "sqlite_stack"
    stack: ChaosStack = request.getfixturevalue(name)
    return stack
