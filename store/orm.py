"""The tables, as typed SQLAlchemy 2 classes. They never leave the store: repositories turn rows
into the client's API models or small dataclasses.

Portable across SQLite and PostgreSQL: ids are uuid4 strings made in Python, JSON is JSONB on
PostgreSQL, and datetimes are timezone-aware UTC on the way out of both (SQLite keeps no zone).
Every constraint is named by the convention below, so migrations can address them, also in
SQLite's batch mode.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from gradlab_contract.models import JobStatus
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Json = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and returned timezone-aware, on SQLite as on PostgreSQL.

    SQLite stores a fixed-width UTC text, so its order is time order (the job cursor relies on it).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: Json, list[int]: Json}


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings; the secret is not kept
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the whole key
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("team_id", "idempotency_key"),
        # The contract's statuses; the text is the migration's: ('queued', 'running', ...).
        CheckConstraint(f"status IN {tuple(s.value for s in JobStatus)!r}", name="status"),
        # The team's job list, newest first, is a keyset scan of this index.
        Index(None, "team_id", "created_at", "id"),
        # The reaper's and the reconciler's scans.
        Index(None, "status", "lease_expires_at"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"))
    name: Mapped[str | None] = mapped_column(String(100))
    spec: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    attempt: Mapped[int] = mapped_column(default=0)  # 0 until the first claim
    # Attempts that lost their worker (crash, kill, expired lease); hand-backs are not losses.
    losses: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    lease_expires_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    progress_step: Mapped[int] = mapped_column(default=0)
    total_steps: Mapped[int] = mapped_column(default=0)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    device: Mapped[str | None] = mapped_column(String(64))
    checkpoint_step: Mapped[int | None]
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    study_id: Mapped[str | None] = mapped_column(String(36), index=True)  # a study's jobs
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # Exports that could not be made or checked, {artifact name: why} (the job still succeeded).
    artifact_errors: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the id was last handed to the broker; the reconciler re-sends ids queued too long.
    enqueued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Why the job ended before its last step: early stopping (it succeeded) or a stop_on finding.
    stop_reason: Mapped[str | None] = mapped_column(Text)
    stopped_early: Mapped[bool] = mapped_column(default=False, server_default=false())
    best_step: Mapped[int | None]  # the best evaluation of training.early_stopping's metric


class MetricChunk(Base):
    """One block of CHUNK_STEPS steps of one series (store/series): the points in `payload`, a
    summary beside it so that a downsampled read of a long series opens no payload."""

    __tablename__ = "metric_chunks"
    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    chunk: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)  # step // CHUNK
    first_step: Mapped[int]
    last_step: Mapped[int]
    count: Mapped[int]
    low_step: Mapped[int | None]  # the lowest finite point
    low_value: Mapped[float | None] = mapped_column(Double)
    high_step: Mapped[int | None]  # the highest finite point
    high_value: Mapped[float | None] = mapped_column(Double)
    nonfinite_step: Mapped[int | None]  # the first non-finite point
    attempt: Mapped[int]  # the latest attempt that wrote to the block
    sketch: Mapped[bytes] = mapped_column(LargeBinary)  # each 64-step run's lowest and highest
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class Snapshot(Base):
    __tablename__ = "snapshots"
    __table_args__ = (Index(None, "job_id", "step"),)  # "every layer at step S"
    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    layer: Mapped[str] = mapped_column(String(100), primary_key=True)
    step: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    depth: Mapped[int]
    stats: Mapped[dict[str, Any]]
    histogram: Mapped[dict[str, Any]]
    log_histogram: Mapped[dict[str, Any] | None]
    attempt: Mapped[int]


class Layer(Base):
    __tablename__ = "layers"
    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    depth: Mapped[int]
    type: Mapped[str] = mapped_column(String(32))
    shape: Mapped[list[int]]
    parameters: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int]


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (Index(None, "team_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # vector | sequence | image | categorical
    path: Mapped[str] = mapped_column(Text)
    x_shape: Mapped[list[int]]  # one row's shape
    num_classes: Mapped[int]
    rows: Mapped[int]
    test_rows: Mapped[int | None]
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Artifact(Base):
    """A file a job keeps in the artifact store (store/artifacts.py) under `key`."""

    __tablename__ = "artifacts"
    __table_args__ = (Index(None, "team_id"),)  # a team's storage use
    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    which: Mapped[str | None] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Finding(Base):
    __tablename__ = "findings"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    layer: Mapped[str | None] = mapped_column(String(100))
    step: Mapped[int | None]
    evidence: Mapped[dict[str, Any]]
    suggestion: Mapped[str | None] = mapped_column(Text)
    remedy: Mapped[dict[str, Any] | None]
    final: Mapped[bool] = mapped_column(default=False)  # False: found live, during training
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    onset_step: Mapped[int | None]  # the first recorded step where the rule held
    caused_by: Mapped[str | None] = mapped_column(String(64))  # the code that explains it


class Diagnosis(Base):
    """Whether a job has been diagnosed, and finally: a healthy job's diagnosis has no findings,
    so this row is what tells "nothing wrong" from "not diagnosed yet"."""

    __tablename__ = "diagnoses"
    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    attempt: Mapped[int]
    final: Mapped[bool]  # False: written live, while the job trained
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Study(Base):
    """A grid or random search of job variants. Its jobs carry its id in jobs.study_id; `runs`
    maps each job to its variant and seed, so comparisons group jobs without parsing specs."""

    __tablename__ = "studies"
    __table_args__ = (
        UniqueConstraint("team_id", "idempotency_key"),
        Index(None, "team_id", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(100))
    template: Mapped[str | None] = mapped_column(String(64))
    request: Mapped[dict[str, Any]]  # the study as submitted (base, grid or search, seeds)
    varied: Mapped[list[str]] = mapped_column(Json)  # the dotted paths that differ by variant
    variants: Mapped[list[dict[str, Any]]] = mapped_column(Json)  # each variant's values
    runs: Mapped[list[dict[str, Any]]] = mapped_column(Json)  # {job_id, variant, seed}
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Remedy(Base):
    """A job submitted with a parent's remedies (POST /remedy, or a heal round), and what it
    proved: `outcome` stays pending until the child has ended, then cured or not_cured."""

    __tablename__ = "remedies"
    __table_args__ = (
        CheckConstraint("outcome IN ('pending', 'cured', 'not_cured')", name="outcome"),
    )
    child_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    parent_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    codes: Mapped[list[str]] = mapped_column(Json)  # the findings whose remedies were applied
    outcome: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(Text)
    metric: Mapped[str | None] = mapped_column(String(64))
    parent_value: Mapped[float | None] = mapped_column(Double)
    child_value: Mapped[float | None] = mapped_column(Double)
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


HEAL_STATUSES = ("running", "healed", "exhausted", "failed", "cancelled")


class Heal(Base):
    """Rounds of diagnose -> remedy -> train for one job, until a job is healthy. `rounds` is
    the chain as the API shows it; `current_job_id` the job whose end advances it."""

    __tablename__ = "heals"
    __table_args__ = (
        CheckConstraint(f"status IN {HEAL_STATUSES!r}", name="status"),
        Index(None, "status", "current_job_id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    max_rounds: Mapped[int]
    current_job_id: Mapped[str] = mapped_column(String(36))
    healthy_job_id: Mapped[str | None] = mapped_column(String(36))
    reason: Mapped[str | None] = mapped_column(Text)
    rounds: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    training_steps: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


# BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-incrementing rowid.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    """What happened to a job or a study, in order: the log that the event streams replay
    (`Last-Event-ID` is an id here) and that webhooks deliver from. Written in the transaction
    of the change it records, so it is as true as the job row."""

    __tablename__ = "events"
    __table_args__ = (Index(None, "job_id", "id"), Index(None, "study_id", "id"))
    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    study_id: Mapped[str | None] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobLog(Base):
    """The worker's lines about a job (claim, data, device, attempts, warnings, errors),
    capped per job (store/joblogs.py)."""

    __tablename__ = "job_logs"
    __table_args__ = (Index(None, "job_id", "id"),)
    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int | None]
    level: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Webhook(Base):
    __tablename__ = "webhooks"
    __table_args__ = (Index(None, "team_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(Json)
    secret: Mapped[str] = mapped_column(String(100))  # whsec_<base64>: signing needs it in clear
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event to send to one hook: made with the event (an outbox), sent by a worker."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "webhook_id", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(EventId, ForeignKey("events.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # succeeded | failed
    attempts: Mapped[int] = mapped_column(default=0)
    response_status: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
