"""digest_issues: proof and approval (issue 21).

- version: 1 when built, one more each time an issue awaiting review is rebuilt because what
  it is made of changed (posts, intro, templates); fingerprint: a hash of that content.
- awaiting_review: built with [digest] review on and not yet approved; such an issue is not
  sent, not listed among past issues and has no public web copy.
- proof_version, proof_claimed_at, proof_sent_at: which version's proofs went out, claimed
  first so that two workers never both send them.
- review_deadline: when the review window ends (from the first proof).
- approved_at, approved_by: who approved it ("review window ended" when unreviewed = send).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

import functools

import sqlalchemy as sa
from alembic import op

from syndicate.store.types import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

COLUMNS = (
    "version",
    "fingerprint",
    "awaiting_review",
    "proof_version",
    "proof_claimed_at",
    "proof_sent_at",
    "review_deadline",
    "approved_at",
    "approved_by",
)


def upgrade() -> None:
    # Not in a batch: a batch copies the table on SQLite, which the ledger's foreign keys
    # pointing at it forbid once it has rows; ADD COLUMN with a constant default is enough.
    add = functools.partial(op.add_column, "digest_issues")
    add(sa.Column("version", sa.Integer, nullable=False, server_default="1"))
    add(sa.Column("fingerprint", sa.String(64), nullable=True))
    add(sa.Column("awaiting_review", sa.Boolean, nullable=False, server_default=sa.false()))
    add(sa.Column("proof_version", sa.Integer, nullable=True))
    add(sa.Column("proof_claimed_at", UTCDateTime, nullable=True))
    add(sa.Column("proof_sent_at", UTCDateTime, nullable=True))
    add(sa.Column("review_deadline", UTCDateTime, nullable=True))
    add(sa.Column("approved_at", UTCDateTime, nullable=True))
    add(sa.Column("approved_by", sa.String(320), nullable=True))


def downgrade() -> None:
    # Not in a batch: SQLite drops a column in place, where a batch would copy the table
    # and trip over the foreign keys that point at it.
    for column in reversed(COLUMNS):
        op.drop_column("digest_issues", column)
