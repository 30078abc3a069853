"""The job ids whose messages wait in the broker, read without taking them.

The reconciler (worker/reaper.py) re-sends a job that is queued in the database only when no
message of it waits in the broker: re-sending every long-queued job would add one duplicate per
job and pass, growing with the backlog. Messages are read as kombu writes them: one JSON file
per message on the filesystem transport, one JSON string per message in a list per priority
step on Redis (which a taken message has left: jobs are acknowledged when they start).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from celery import Celery

from taskqueue import RUN_JOB_TASK

# Seconds to wait for Redis before the pass gives up (and re-sends nothing this time).
BROKER_TIMEOUT_SECONDS = 5.0


def waiting_job_ids(app: Celery, queues: Iterable[str]) -> set[str] | None:
    """Ids of the run_job messages waiting in `queues`; None for a broker this cannot read
    (then every long-queued job is re-sent, as a duplicate is harmless)."""
    url = str(app.conf.broker_url or "")
    if url.startswith("filesystem:"):
        folder = Path(app.conf.broker_transport_options["data_folder_in"])
        return _ids(_filesystem_messages(folder, set(queues)))
    if url.startswith(("redis://", "rediss://", "unix://")):
        return _ids(_redis_messages(url, list(queues)))
    return None


def _filesystem_messages(folder: Path, queues: set[str]) -> Iterable[bytes]:
    # kombu's filesystem transport names each message <time>_<uuid>.<queue>.msg.
    for path in folder.glob("*.msg"):
        if any(path.name.endswith(f".{queue}.msg") for queue in queues):
            try:
                yield path.read_bytes()
            except FileNotFoundError:  # taken by a worker meanwhile
                continue


def _redis_messages(url: str, queues: list[str]) -> list[bytes]:
    import redis
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    keys = [queue if not step else f"{queue}{Channel.sep}{step}"
            for queue in queues for step in PRIORITY_STEPS]
    client = redis.Redis.from_url(url, socket_timeout=BROKER_TIMEOUT_SECONDS,
                                  socket_connect_timeout=BROKER_TIMEOUT_SECONDS)
    try:
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.lrange(key, 0, -1)
            return [message for messages in pipe.execute() for message in messages]
    finally:
        client.close()


def _ids(messages: Iterable[bytes]) -> set[str]:
    ids: set[str] = set()
    for raw in messages:
        try:
            ids.update(_job_ids(json.loads(raw)))
        except (ValueError, KeyError, TypeError):
            continue  # not a message of ours: it cannot stand for a job
    return ids


def _job_ids(message: dict[str, Any]) -> list[str]:
    if message["headers"].get("task") != RUN_JOB_TASK:
        return []
    body = message["body"]
    if message["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body).decode()
    args, _kwargs, _embed = json.loads(body)
    return [str(arg) for arg in args]
