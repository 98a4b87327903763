"""digest_issues.snapshot_at: when the issue's recipients were written into the ledger.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from syndicate.store.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("digest_issues") as batch:
        batch.add_column(sa.Column("snapshot_at", UTCDateTime, nullable=True))
    op.create_index("ix_deliveries_status", "deliveries", ["status"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_status", "deliveries")
    # In place (SQLite >= 3.35 can): a batch copy would drop the table, which fails while
    # foreign keys are enforced and other rows refer to it.
    op.drop_column("digest_issues", "snapshot_at")
