"""posts.image_alt, image_width, image_height: what the feed says of a post's image (its alt
text and natural size), so the digest shows it with that alt text, at no more than its own
width, and with its size reserved.

Posts stored before have none until their entry changes; the digest then shows the image as
before it knew (an empty alt, no size, never scaled up).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = ("image_alt", "image_width", "image_height")


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("image_alt", sa.Text, nullable=True))
        batch.add_column(sa.Column("image_width", sa.Integer, nullable=True))
        batch.add_column(sa.Column("image_height", sa.Integer, nullable=True))


def downgrade() -> None:
    # In place (SQLite >= 3.35 can): a batch copy would drop the table, which fails while
    # foreign keys are enforced and other rows refer to it.
    for column in COLUMNS:
        op.drop_column("posts", column)
