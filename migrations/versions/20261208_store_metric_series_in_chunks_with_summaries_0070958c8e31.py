"""Store metric series in chunks: one row per job, name and block of 4096 steps, the points as
arrays with a summary and a sketch beside them (store/series). Moves every existing metric row; the
downgrade moves them back.

The payload format is store.series.codec's, imported rather than copied: a payload carries its
codec byte, and the code must go on reading every format it ever wrote.

Revision ID: 0070958c8e31
Revises: 73356f23d5ac
Create Date: 2026-12-08 01:00:00.000000
"""

from collections.abc import Iterator, Sequence
from itertools import groupby

import numpy as np
import sqlalchemy as sa
from alembic import op

from store.series.codec import CHUNK_STEPS, Block, decode, row_fields

revision: str = "0070958c8e31"
down_revision: str | Sequence[str] | None = "73356f23d5ac"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 5000  # rows per fetch and chunks per insert


def upgrade() -> None:
    chunks = op.create_table(
        "metric_chunks",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("chunk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("first_step", sa.Integer(), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("low_step", sa.Integer(), nullable=True),
        sa.Column("low_value", sa.Double(), nullable=True),
        sa.Column("high_step", sa.Integer(), nullable=True),
        sa.Column("high_value", sa.Double(), nullable=True),
        sa.Column("nonfinite_step", sa.Integer(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_metric_chunks_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "name", "chunk", name=op.f("pk_metric_chunks")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Payloads arrive compressed where that pays: PostgreSQL's own TOAST compression
        # (pglz) would only spend time trying again.
        op.execute("ALTER TABLE metric_chunks ALTER COLUMN payload SET STORAGE EXTERNAL")
    rows: list[dict[str, object]] = []
    for (job_id, name, chunk), points in groupby(_old_rows(), key=_chunk_key):
        rows.append(_chunk_row(job_id, name, chunk, list(points)))
        if len(rows) >= _BATCH:
            op.bulk_insert(chunks, rows)
            rows = []
    if rows:
        op.bulk_insert(chunks, rows)
    op.drop_table("metrics")


def _old_rows() -> Iterator[tuple[str, str, int, float | None, int]]:
    query = sa.text("SELECT job_id, name, step, value, attempt FROM metrics "
                    "ORDER BY job_id, name, step")
    result = op.get_bind().execute(query.execution_options(yield_per=_BATCH))
    for row in result:
        yield row[0], row[1], row[2], row[3], row[4]


def _chunk_key(row: tuple[str, str, int, float | None, int]) -> tuple[str, str, int]:
    return row[0], row[1], row[2] // CHUNK_STEPS


def _chunk_row(job_id: str, name: str, chunk: int,
               points: list[tuple[str, str, int, float | None, int]]) -> dict[str, object]:
    block = Block(
        np.array([p[2] for p in points], np.int64),
        np.array([np.nan if p[3] is None else p[3] for p in points], np.float64),
        np.array([p[4] for p in points], np.int64),
    )
    return {"job_id": job_id, "name": name, **row_fields(chunk, block),
            "attempt": int(block.attempts.max())}


def downgrade() -> None:
    metrics = op.create_table(
        "metrics",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("step", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_metrics_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "job_id", "name", "step", name=op.f("pk_metrics"), postgresql_include=["value"]
        ),
    )
    query = sa.text("SELECT job_id, name, chunk, payload FROM metric_chunks")
    result = op.get_bind().execute(query.execution_options(yield_per=100))
    rows: list[dict[str, object]] = []
    for job_id, name, chunk, payload in result:
        block = decode(chunk, bytes(payload))
        rows.extend(
            {"job_id": job_id, "name": name, "step": step,
             "value": None if value != value else value, "attempt": attempt}
            for step, value, attempt in zip(block.steps.tolist(), block.values.tolist(),
                                            block.attempts.tolist(), strict=True)
        )
        if len(rows) >= _BATCH:
            op.bulk_insert(metrics, rows)
            rows = []
    if rows:
        op.bulk_insert(metrics, rows)
    op.drop_table("metric_chunks")
