"""The statuses a subscriber, a delivery (a ledger row) and a periodic job's run can have.

One place for the words, so a typo is an AttributeError rather than a query that silently
matches nothing. Members are `StrEnum`s: each is its own string value, so the database holds
the same text as before these existed (no migration), rows read back as plain strings compare
equal to members, and an f-string prints the value. No imports from the rest of the package:
every layer may use this.
"""

from __future__ import annotations

from enum import StrEnum


class SubscriberStatus(StrEnum):
    PENDING = "pending"  # signed up, not yet confirmed (double opt-in)
    ACTIVE = "active"  # receives digests
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"  # an address the mail server refused for good


class DeliveryStatus(StrEnum):
    """One (issue, subscriber) row of the delivery ledger."""

    PENDING = "pending"  # not tried yet, or released unsent
    SENDING = "sending"  # claimed by a sender
    SENT = "sent"
    DEFERRED = "deferred"  # failed for now; tried again after next_attempt_at
    FAILED = "failed"  # failed for good
    SKIPPED = "skipped"  # nothing to send them (no longer active, no posts in their categories)


class RunStatus(StrEnum):
    """One run of a periodic job (job_runs)."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# Rows a sender still has to deal with: the ledger's "recipients left" for progress counts.
UNSENT = (DeliveryStatus.PENDING, DeliveryStatus.DEFERRED, DeliveryStatus.SENDING)
