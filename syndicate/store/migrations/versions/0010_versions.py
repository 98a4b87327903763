"""versions: change counters (store/versions.py), so the web app renders its home page once
per change rather than once per request.

Empty at first: a missing counter reads as 0 and its first bump inserts it.

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


def downgrade() -> None:
    op.drop_table("versions")
