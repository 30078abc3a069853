"""Engines and sessions: the one place that knows how each database is driven.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and a write transaction takes
the write lock at BEGIN (BEGIN IMMEDIATE): two writers that both read and then write would
otherwise deadlock-fail with "database is locked" instead of waiting. Python's sqlite3 driver
(3.11) emits BEGIN itself and late, so SQLAlchemy's documented recipe takes that over
(https://docs.sqlalchemy.org/en/21/dialects/sqlite.html#sqlite-transactions). Reads use a
deferred BEGIN so that they never wait for a writer.

PostgreSQL connections are pinged before use, and an engine inherited through fork() is
disposed in the child without closing the parent's sockets.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from store.errors import Unavailable
from store.settings import Settings

BUSY_TIMEOUT_SECONDS = 30
PG_CONNECT_TIMEOUT_SECONDS = 5
_READ_ONLY = "gradlab_read_only"  # execution option: this connection's BEGIN need not lock

_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
_fork_hook_registered = False


def make_engine(settings: Settings, *, enforce_foreign_keys: bool = True) -> Engine:
    """Build the engine for `settings.database_url`.

    enforce_foreign_keys=False is for migrations: SQLite batch migrations copy and drop tables,
    and with foreign keys on, dropping a parent table would cascade into its children.
    """
    if settings.is_sqlite:
        engine = _sqlite_engine(settings.database_url, enforce_foreign_keys)
    else:
        engine = create_engine(
            settings.database_url,
            pool_pre_ping=True,
            # An unreachable server should become a 503 in seconds, not hang a request.
            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_SECONDS,
                          "application_name": "gradlab"},
        )
    _dispose_after_fork(engine)
    return engine


def _sqlite_engine(url: str, enforce_foreign_keys: bool) -> Engine:
    database = make_url(url).database
    if database:  # SQLite creates the file on first use, but not the folder it goes in
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, see _begin
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across application crashes in WAL mode; only a power loss may drop
        # the last commits, and it never corrupts the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if enforce_foreign_keys else 'OFF'}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _dispose_after_fork(engine: Engine) -> None:
    """Make a forked child (a Celery prefork worker) open its own connections.

    dispose(close=False) drops the inherited pool without closing sockets the parent still uses.
    """
    global _fork_hook_registered
    _engines.add(engine)
    if not _fork_hook_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_dispose_all_in_child)
        _fork_hook_registered = True


def _dispose_all_in_child() -> None:
    for engine in list(_engines):
        engine.dispose(close=False)


@contextmanager
def _unavailable_on_outage() -> Iterator[None]:
    """Turn "the database is down, unreachable or locked" into the domain's Unavailable (503)."""
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as error:
        raise Unavailable(f"database unavailable: {_first_line(error)}") from error
    except exc.DBAPIError as error:
        if error.connection_invalidated:
            raise Unavailable(f"database connection lost: {_first_line(error)}") from error
        raise


def _first_line(error: Exception) -> str:
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0][:200]


class Database:
    """An engine and its sessions. `transaction()` is the only place that commits."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        read_engine = engine.execution_options(**{_READ_ONLY: True})
        self._read_sessions = sessionmaker(read_engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(make_engine(settings))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        with _unavailable_on_outage(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session; on SQLite it takes no write lock. Never committed."""
        with _unavailable_on_outage(), self._read_sessions() as session:
            yield session

    def on_commit(self, listener: Callable[[Session], None]) -> None:
        """Call `listener(session)` after each write transaction commits (store/event_bus.py
        announces the events it appended)."""
        event.listen(self._sessions, "after_commit", listener)

    def ping(self) -> None:
        """Raise Unavailable unless the database answers."""
        with self.read() as session:
            session.execute(text("SELECT 1"))

    def after_fork(self) -> None:
        """Drop connections inherited from a parent process, keeping the parent's open.

        make_engine already does this in every child of os.fork(); this is for a process
        started some other way that still copied the engine (e.g. a Celery
        worker_process_init hook that wants to be explicit). Calling it twice is harmless.
        """
        self.engine.dispose(close=False)

    def close(self) -> None:
        self.engine.dispose()
