"""versions: change counters (store/versions.py), so the web app renders its home page once
per change rather than once per request; published_files.stamp: which file was written
(files.file_stamp), so an unchanged publish need not read every file back.

`versions` is empty at first: a missing counter reads as 0 and its first bump inserts it.
Files recorded before have no stamp: they are read and compared once, and stamped then.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "versions",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_versions"),
    )
    with op.batch_alter_table("published_files") as batch:
        batch.add_column(sa.Column("stamp", sa.String(100), nullable=True))


def downgrade() -> None:
    # In place (SQLite >= 3.35 can), as 0009 does.
    op.drop_column("published_files", "stamp")
    op.drop_table("versions")
