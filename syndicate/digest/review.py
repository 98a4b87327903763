"""Proof and approval: what happens to an issue built while `[digest] review` is on.

    step = next_step(settings.digest, issue, now)   # SEND, PROOF, WAIT or HOLD
    mark = fingerprint(content.to_json())           # a new one makes a new version
    link = review_link(settings, secret, clock, issue, "editor@example.org")

An issue built with review on is stored `awaiting_review`: it is not sent, not listed
among past issues and has no public web copy. Its first step is a proof: one copy per
reviewer, "[Proof]" in the subject, with a signed link to its preview page (where it can
be approved). It then waits until it is approved (`syndicate digest approve`, or the
page's button) or the window `[digest] review` after the first proof ends; then it is
sent or held, as `[digest] unreviewed` says. A held issue waits for an approval.

Until it is approved, the issue follows what it is made of: when its posts, the editor's
intro or the templates change, it is rebuilt as its next version (digest.build) and that
version gets a proof of its own. The window is not moved by a rebuild: subscribers expect
the issue around the schedule, and the status says when it ends. An approval names the
version the approver saw, so an edit that lands after the page was opened is not approved
by its button.

All of it is in the issue's row, so a worker restarted across the window goes on where it
stopped: proofs are claimed before they are sent (two workers never both send them), and
the approval or the deadline is read from the row, not remembered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from email.utils import parseaddr
from enum import StrEnum
from typing import Any

from itsdangerous import BadSignature, SignatureExpired

from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.config.settings import DigestSettings
from syndicate.models import DigestIssue
from syndicate.tokens import clocked_serializer

# Who approved an issue that went out because its window ended ([digest] unreviewed = "send").
WINDOW_ENDED = "review window ended"
# How long a reviewer's link works: past any sensible window, and no longer.
LINK_LIFETIME = timedelta(days=30)
REVIEW_SALT = "syndicate.digest.review"
# A claim of proofs left by a worker that died is taken over after this long.
PROOF_LEASE = timedelta(minutes=10)


class Step(StrEnum):
    SEND = "send"  # no review, approved, sending begun, or the window ended with "send"
    PROOF = "proof"  # this version's proofs have not gone out
    WAIT = "wait"  # proofs out, window open
    HOLD = "hold"  # window ended, [digest] unreviewed = "hold": waits for an approval


def next_step(digest: DigestSettings, issue: DigestIssue, now: datetime) -> Step:
    """What to do with `issue` at `now`."""
    if not issue.awaiting_review or issue.snapshot_at is not None or digest.review is None:
        return Step.SEND
    if issue.proof_version != issue.version or issue.proof_sent_at is None:
        return Step.PROOF
    if issue.review_deadline is not None and now >= issue.review_deadline:
        return Step.SEND if digest.unreviewed == "send" else Step.HOLD
    return Step.WAIT


def fingerprint(content: Mapping[str, Any]) -> str:
    """A hash of what an issue is made of (IssueContent.to_json()), less what changes on its
    own: a thread's reply count moves with every reply and is not an edit."""
    posts = [{k: v for k, v in post.items() if k != "reply_count"} for post in content["posts"]]
    data = {**content, "posts": posts}
    encoded = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def deadline_after(digest: DigestSettings, proof_sent: datetime) -> datetime:
    assert digest.review is not None
    return proof_sent + digest.review


@dataclass(frozen=True, slots=True)
class ReviewClaim:
    """What a reviewer's link says: which issue, which version they were sent, who they are."""

    period: str
    version: int
    reviewer: str  # an address in [digest] reviewers when it was signed


class ReviewLinkError(ValueError):
    def __init__(self, message: str, *, expired: bool = False) -> None:
        self.expired = expired
        super().__init__(message)


def review_token(secret_key: str, clock: Clock, issue: DigestIssue, reviewer: str) -> str:
    serializer = clocked_serializer(secret_key, REVIEW_SALT, clock)
    return str(serializer.dumps({"p": issue.period, "v": issue.version, "r": reviewer}))


def review_link(
    settings: Settings, secret_key: str, clock: Clock, issue: DigestIssue, reviewer: str
) -> str:
    token = review_token(secret_key, clock, issue, reviewer)
    return f"{settings.site.url.rstrip('/')}/digest/review/{token}"


def read_review_token(secret_key: str, clock: Clock, token: str) -> ReviewClaim:
    """The claim of a reviewer's link; ReviewLinkError when forged, mangled or expired."""
    serializer = clocked_serializer(secret_key, REVIEW_SALT, clock)
    try:
        data = serializer.loads(token, max_age=int(LINK_LIFETIME.total_seconds()))
    except SignatureExpired:
        raise ReviewLinkError("this review link has expired", expired=True) from None
    except BadSignature:
        raise ReviewLinkError("this review link is not valid") from None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("p"), str)
        and isinstance(data.get("v"), int)
        and isinstance(data.get("r"), str)
    ):
        raise ReviewLinkError("this review link is not valid")
    return ReviewClaim(data["p"], data["v"], data["r"])


def is_reviewer(digest: DigestSettings, address: str) -> bool:
    """Whether `address` is among [digest] reviewers now: taking someone off the list takes
    their links away."""
    wanted = address.casefold()
    return any(parseaddr(r)[1].casefold() == wanted for r in digest.reviewers)


def describe(digest: DigestSettings, issue: DigestIssue, now: datetime, tz: tzinfo) -> str:
    """One line for `syndicate status` and `digest send`: where the issue is in its review."""
    step = next_step(digest, issue, now)
    version = f"version {issue.version}"
    if step is Step.PROOF:
        return f"awaiting approval ({version}): its proof is not sent yet"
    deadline = issue.review_deadline
    until = f"{deadline.astimezone(tz):%Y-%m-%d %H:%M %Z}" if deadline else "?"
    sent = issue.proof_sent_at
    proof = f"proof sent {sent.astimezone(tz):%Y-%m-%d %H:%M %Z}" if sent else "proof sent"
    if step is Step.WAIT:
        then = "sent" if digest.unreviewed == "send" else "held"
        return (
            f"awaiting approval ({version}; {proof}); deadline {until}, then {then} "
            f"([digest] unreviewed = {digest.unreviewed!r})"
        )
    if step is Step.HOLD:
        return f"held: not approved by the deadline {until} ({version}; {proof})"
    return f"approved ({version})"
