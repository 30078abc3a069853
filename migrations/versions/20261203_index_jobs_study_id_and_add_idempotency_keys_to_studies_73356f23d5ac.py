"""Index jobs.study_id (a study's counts, comparison and cancel read its jobs by it) and add an
idempotency key with a request hash to studies, unique per team, as jobs have.

Revision ID: 73356f23d5ac
Revises: b3d81f5a0c27
Create Date: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "73356f23d5ac"
down_revision: str | Sequence[str] | None = "b3d81f5a0c27"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_jobs_study_id"), "jobs", ["study_id"])
    with op.batch_alter_table("studies") as batch:  # SQLite: a copy of the table
        batch.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_studies_team_id_idempotency_key"), ["team_id", "idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.drop_constraint(op.f("uq_studies_team_id_idempotency_key"), type_="unique")
        batch.drop_column("request_hash")
        batch.drop_column("idempotency_key")
    op.drop_index(op.f("ix_jobs_study_id"), table_name="jobs")
