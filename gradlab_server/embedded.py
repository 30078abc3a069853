"""The embedded all-in-one (`gradlab-server run`) and the API and key commands it shares.

`run` needs no server: SQLite and kombu's filesystem broker under GRADLAB_HOME. It migrates,
makes a team and an API key on the first start, starts one worker process and serves the API
in the foreground; stopping it (Ctrl-C) stops the worker too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from store import teams
from store.db import Database
from store.migrate import upgrade
from store.settings import Settings

KEY_FILE = "api-key"


def create_key(settings: Settings, *, team_name: str) -> str:
    """A new key for the team (created if new); the key is shown only this once."""
    database = Database.from_settings(settings)
    with database.transaction() as session:
        team = teams.get_team_by_name(session, name=team_name) or teams.create_team(
            session, name=team_name
        )
        return teams.create_api_key(session, team_id=team.id)


def serve_api(settings: Settings) -> None:
    import uvicorn

    from service.app import create_app
    from store.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    # json: uvicorn's loggers (access lines too) propagate to the root's JSON handler, rather
    # than to the text handlers uvicorn's default log_config gives them.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
    )


def first_start_key(settings: Settings) -> str | None:
    """On the first start, make the default team and its key, and write the key to a file."""
    database = Database.from_settings(settings)
    with database.transaction() as session:
        key = teams.ensure_default_team_and_key(session)
    database.close()
    if key is not None:
        key_file = settings.home / KEY_FILE
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
    return key


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GRADLAB_HOME": str(settings.home),
        "GRADLAB_DATABASE_URL": settings.database_url,
    }
    return subprocess.Popen([sys.executable, "-m", "gradlab_server.cli", "worker"], env=env)


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_all_in_one(settings: Settings) -> int:
    settings.ensure_directories()
    upgrade(settings)
    key = first_start_key(settings)
    key_file = settings.home / KEY_FILE
    if key is not None:
        print(f"Your API key (also written to {key_file}):\n\n    {key}\n", flush=True)
    else:
        print(f"Your API key is in {key_file}", flush=True)
    print(f"API: http://{settings.host}:{settings.port}  (docs at /docs)", flush=True)
    worker = start_worker(settings)
    try:
        serve_api(settings)
    finally:
        stop(worker)
    return 0


def read_key(home: Path) -> str:
    return (home / KEY_FILE).read_text().strip()
