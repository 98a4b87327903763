"""subscribers.other_languages: what a subscriber gets of the posts in languages other than
theirs ("include", "link", "omit"); None: the site's [digest] other_languages (issue 20).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("other_languages", sa.String(8), nullable=True))


def downgrade() -> None:
    # Not in a batch: SQLite drops a column in place, where a batch would copy the table
    # and trip over the foreign keys that point at it.
    op.drop_column("subscribers", "other_languages")
