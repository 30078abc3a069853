"""Count the times a job lost its worker (jobs.losses), apart from its attempts: a graceful
hand-back (a worker stopping for a deploy) is a new attempt, which fences the old one, but not a
loss, so rolling deploys no longer use up a job's retries.

Revision ID: 5e2c7a91d4b3
Revises: e5a17c0b9d42
Create Date: 2026-12-08 00:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e2c7a91d4b3"
down_revision: str | Sequence[str] | None = "e5a17c0b9d42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:  # SQLite: a copy of the table
        batch.add_column(
            sa.Column("losses", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("losses")
