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
    WAITING = "waiting"  # a digest awaiting review: taken up again each minute, not failed


# Rows a sender still has to deal with: the ledger's "recipients left" for progress counts.
UNSENT = (DeliveryStatus.PENDING, DeliveryStatus.DEFERRED, DeliveryStatus.SENDING)


class BounceKind(StrEnum):
    """What one event of a subscriber's returning mail was (bounce_events)."""

    HARD = "hard"  # a permanent failure reported (5.x.x, Action: failed)
    SOFT = "soft"  # a temporary one (4.x.x, Action: delayed): counts within a window
    COMPLAINT = "complaint"  # a spam complaint (ARF): unsubscribed and suppressed at once
    UNSUBSCRIBE = "unsubscribe"  # mail to their unsubscribe mailbox address (RFC 8058 mailto)


class InboundOutcome(StrEnum):
    """What became of one mail read from the bounce intake (inbound_mail)."""

    APPLIED = "applied"  # a subscriber's event was stored (their status may have changed)
    IGNORED = "ignored"  # an auto-reply, a success notice, a person writing to the bounce box
    UNMATCHED = "unmatched"  # no signed token or Message-ID names a subscriber of ours
    FORGED = "forged"  # a token whose signature does not match: changes nothing
    UNREADABLE = "unreadable"  # could not be read; kept in [bounces] keep for a person
