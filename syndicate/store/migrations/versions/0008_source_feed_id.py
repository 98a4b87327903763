"""sources.feed_id: the source feed's own id (Atom <id>, JSON Feed feed_url), which our Atom
entries' <source> carries.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("feed_id", sa.Text, nullable=True))


def downgrade() -> None:
    # In place (SQLite >= 3.35 can): a batch copy would drop the table, which fails while
    # foreign keys are enforced and other rows refer to it.
    op.drop_column("sources", "feed_id")
