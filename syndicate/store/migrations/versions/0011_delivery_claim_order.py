"""deliveries: the (issue_id, status) index gains id, so a claim reads its batch in id order;
the (status) index goes.

A claim takes the first rows of an issue in one status, in id order, LIMIT the batch. SQLite's
index on (issue_id, status) holds the rowid (= id) last, so that was already an index range;
PostgreSQL's did not order ties by id, so every claim read all of the issue's pending rows and
sorted them: about a million at the start of a send to a million subscribers, 2,500 times
over (bench/scale_send.py). With id in the index the claim reads only the rows it takes.

The index on status alone served the worker's "which issues have rows due?", which reads
better per issue on the other index (store/deliveries.py); kept, it was written at every
change of a row's status, twice a message, and a fifth of a million-row snapshot's time.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deliveries_issue_id_status_id", "deliveries", ["issue_id", "status", "id"])
    op.drop_index("ix_deliveries_issue_id_status", "deliveries")
    op.drop_index("ix_deliveries_status", "deliveries")


def downgrade() -> None:
    op.create_index("ix_deliveries_status", "deliveries", ["status"])
    op.create_index("ix_deliveries_issue_id_status", "deliveries", ["issue_id", "status"])
    op.drop_index("ix_deliveries_issue_id_status_id", "deliveries")
