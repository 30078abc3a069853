"""`gradlab-server`: run, api, worker, migrate, create-key, train.

Each subcommand imports only what it needs, so `api` never loads torch and `train` never loads
the database.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from store.settings import Settings


def _settings() -> Settings:
    from store.settings import Settings

    return Settings()


def cmd_migrate(args: argparse.Namespace) -> int:
    from store.migrate import upgrade

    settings = _settings()
    upgrade(settings)
    print(f"database at head: {settings.redacted_database_url}")
    return 0


def cmd_create_key(args: argparse.Namespace) -> int:
    from gradlab_server.embedded import create_key

    print(create_key(_settings(), team_name=args.team))
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    from gradlab_server.embedded import serve_api

    serve_api(_settings())
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from worker.main import run_worker

    return run_worker(_settings())


def cmd_run(args: argparse.Namespace) -> int:
    from gradlab_server.embedded import run_all_in_one

    return run_all_in_one(_settings())


def cmd_train(args: argparse.Namespace) -> int:
    from training.cli import train_command

    return train_command(Path(args.spec), Path(args.out))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradlab-server", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": cmd_run,
        "api": cmd_api,
        "worker": cmd_worker,
        "migrate": cmd_migrate,
    }
    helps = {
        "run": "the embedded all-in-one: migrate, create a key on first start, API and a worker",
        "api": "the HTTP API (uvicorn) on GRADLAB_HOST:GRADLAB_PORT",
        "worker": "a Celery worker that trains jobs",
        "migrate": "upgrade the database schema to head",
    }
    for name, handler in handlers.items():
        commands.add_parser(name, help=helps[name]).set_defaults(handler=handler)
    create_key = commands.add_parser(
        "create-key", help="create an API key for a team (printed once)"
    )
    create_key.add_argument("--team", required=True)
    create_key.set_defaults(handler=cmd_create_key)
    train = commands.add_parser("train", help="train a spec locally, without the service")
    train.add_argument("spec", help="a job spec as JSON (or YAML)")
    train.add_argument(
        "--out", required=True, help="folder for metrics.jsonl, snapshots.jsonl, summary.json"
    )
    train.set_defaults(handler=cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
