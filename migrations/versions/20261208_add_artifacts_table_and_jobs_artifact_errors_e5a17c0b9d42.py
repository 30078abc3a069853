"""Add the artifacts table (the files a finished job keeps in the artifact store) and
jobs.artifact_errors (exports that could not be made).

Revision ID: e5a17c0b9d42
Revises: 5e2d7a91c4b3
Create Date: 2026-12-08 00:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "e5a17c0b9d42"
down_revision: str | Sequence[str] | None = "5e2d7a91c4b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("which", sa.String(length=16), nullable=True),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_artifacts_job_id_jobs"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"],
                                name=op.f("fk_artifacts_team_id_teams"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "name", name=op.f("pk_artifacts")),
    )
    op.create_index(op.f("ix_artifacts_team_id"), "artifacts", ["team_id"])
    with op.batch_alter_table("jobs") as batch:  # SQLite: a copy of the table
        batch.add_column(sa.Column("artifact_errors", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("artifact_errors")
    op.drop_index(op.f("ix_artifacts_team_id"), table_name="artifacts")
    op.drop_table("artifacts")
