"""Announcing new events over Redis pub/sub, so that event streams wake at once.

Only a wake-up call: the message names the job (or study) whose events grew, and the stream then
reads the event table, which stays the truth (a lost message costs one poll interval, never an
event). Published after the transaction commits, so a woken stream always finds the rows.
Without Redis (the embedded default) nothing is published and streams poll the table.
"""

from __future__ import annotations

import logging

import redis
from sqlalchemy.orm import Session

from store import events
from store.db import Database
from store.settings import Settings

log = logging.getLogger(__name__)
CHANNEL_PREFIX = "gradlab:events:"


def channel(kind: str, key: str) -> str:
    """The channel of a job's (kind "job") or a study's (kind "study") events."""
    return f"{CHANNEL_PREFIX}{kind}:{key}"


def redis_url(settings: Settings) -> str | None:
    """The Redis that carries the announcements: the broker's, when it is Redis."""
    url = settings.broker_url
    return url if url.startswith(("redis:", "rediss:")) else None


def install_publisher(database: Database, settings: Settings) -> None:
    url = redis_url(settings)
    if url is None:
        return
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def announce(session: Session) -> None:
        for job_id, study_id in events.taken_pending(session):
            try:
                if job_id is not None:
                    client.publish(channel("job", job_id), "1")
                if study_id is not None:
                    client.publish(channel("study", study_id), "1")
            except redis.RedisError as error:  # the streams poll meanwhile
                log.warning("could not announce events: %s", error)
                return

    database.on_commit(announce)
