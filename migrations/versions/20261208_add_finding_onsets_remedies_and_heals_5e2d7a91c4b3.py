"""Add each finding's onset step and cause (findings.onset_step, findings.caused_by), the
remedies table (a remedy job and what it proved about its parent's findings) and the heals
table (rounds of diagnose -> remedy -> train).

Revision ID: 5e2d7a91c4b3
Revises: 0070958c8e31
Create Date: 2026-12-08 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5e2d7a91c4b3"
down_revision: str | Sequence[str] | None = "0070958c8e31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from store.orm (see the first migration).
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("findings") as batch:  # SQLite: a copy of the table
        batch.add_column(sa.Column("onset_step", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("caused_by", sa.String(length=64), nullable=True))
    op.create_table(
        "remedies",
        sa.Column("child_id", sa.String(length=36), nullable=False),
        sa.Column("parent_id", sa.String(length=36), nullable=False),
        sa.Column("codes", JSON, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("metric", sa.String(length=64), nullable=True),
        sa.Column("parent_value", sa.Double(), nullable=True),
        sa.Column("child_value", sa.Double(), nullable=True),
        sa.Column("decided_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint("outcome IN ('pending', 'cured', 'not_cured')",
                           name=op.f("ck_remedies_outcome")),
        sa.ForeignKeyConstraint(["child_id"], ["jobs.id"], name=op.f("fk_remedies_child_id_jobs"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["parent_id"], ["jobs.id"],
                                name=op.f("fk_remedies_parent_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("child_id", name=op.f("pk_remedies")),
    )
    op.create_index(op.f("ix_remedies_parent_id"), "remedies", ["parent_id"])
    op.create_table(
        "heals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("max_rounds", sa.Integer(), nullable=False),
        sa.Column("current_job_id", sa.String(length=36), nullable=False),
        sa.Column("healthy_job_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("rounds", JSON, nullable=False),
        sa.Column("training_steps", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint("status IN ('running', 'healed', 'exhausted', 'failed', 'cancelled')",
                           name=op.f("ck_heals_status")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_heals_job_id_jobs"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_heals_team_id_teams"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heals")),
        sa.UniqueConstraint("job_id", name=op.f("uq_heals_job_id")),
    )
    op.create_index(op.f("ix_heals_status_current_job_id"), "heals",
                    ["status", "current_job_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_heals_status_current_job_id"), table_name="heals")
    op.drop_table("heals")
    op.drop_index(op.f("ix_remedies_parent_id"), table_name="remedies")
    op.drop_table("remedies")
    with op.batch_alter_table("findings") as batch:
        batch.drop_column("caused_by")
        batch.drop_column("onset_step")
