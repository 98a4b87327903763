"""published_files: what each publish wrote, for skipping, removing and WebSub retries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from syndicate.store.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "published_files",
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("written_at", UTCDateTime, nullable=False),
        sa.Column("ping_pending", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("path", name="pk_published_files"),
    )


def downgrade() -> None:
    op.drop_table("published_files")
