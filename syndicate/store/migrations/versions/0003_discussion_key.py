"""posts.discussion_key: how a post's discussion link was resolved, to relink on change.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("discussion_key", sa.String(120)))


def downgrade() -> None:
    # In place (SQLite >= 3.35 can): a batch copy would drop the table, which fails while
    # foreign keys are enforced and other rows refer to it.
    op.drop_column("posts", "discussion_key")
