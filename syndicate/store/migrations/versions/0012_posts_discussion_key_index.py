"""posts: an index on (source, discussion_key) for the forum linker.

Every ingest and `run --once` asks which posts are not linked with their source's current
key (store/forum.py, posts_to_link). Without an index that read every post; on SQLite each
row's overflow pages too, since the content is stored before discussion_key: about 1.3 s at
100,000 posts, a tenth of a warm poll of 5,000 sources (bench/scale.py, stage sources). The
index answers it from the index alone: 0.255 -> 0.012 s at 20,000 posts.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_posts_source_discussion_key", "posts", ["source", "discussion_key"])


def downgrade() -> None:
    op.drop_index("ix_posts_source_discussion_key", "posts")
