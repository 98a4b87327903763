"""subscribers.language: the language a subscriber reads (None: the site's first);
posts.zawgyi: the post came in the Zawgyi encoding and was converted to Unicode at ingest
(issue 20: languages).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("language", sa.String(35), nullable=True))
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("zawgyi", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("posts", "zawgyi")
    op.drop_column("subscribers", "language")
