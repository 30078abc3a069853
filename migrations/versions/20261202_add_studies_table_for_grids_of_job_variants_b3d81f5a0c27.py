"""Add the studies table: a grid or random search of job variants, compared side by side.

Revision ID: b3d81f5a0c27
Revises: 7c4e1b9d2f60
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b3d81f5a0c27"
down_revision: str | Sequence[str] | None = "7c4e1b9d2f60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from store.orm, as in the first migration.
UTC_DATETIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("template", sa.String(length=64), nullable=True),
        sa.Column("request", JSON, nullable=False),
        sa.Column("varied", JSON, nullable=False),
        sa.Column("variants", JSON, nullable=False),
        sa.Column("runs", JSON, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_studies_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studies")),
    )
    op.create_index(
        op.f("ix_studies_team_id_created_at_id"), "studies", ["team_id", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_studies_team_id_created_at_id"), table_name="studies")
    op.drop_table("studies")
