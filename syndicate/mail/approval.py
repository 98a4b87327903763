"""Approving an issue awaiting review, as `syndicate digest approve` does.

    outcome = await approve_period(settings, store, clock, "2015-12", by="ann (cli)")

The issue is brought up to date first: if what it is made of changed since its proof, it is
rebuilt as a new version, that version's proof goes out, and nothing is approved (the
approver has not read it). An approval names a version (the current one, or the one given);
it is recorded on the issue's row, then the issue is sent as `digest send` sends it. The
preview page's button records an approval the same way (store.approve_issue) and leaves
the sending to the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.digest.build import build_issue, period_of
from syndicate.mail.proof import AwaitingReview, review_gate
from syndicate.mail.send import SendCounts, SendReport, send_period
from syndicate.mail.transport import open_transport
from syndicate.models import DigestIssue
from syndicate.store import Store


@dataclass(frozen=True, slots=True)
class Approval:
    issue: DigestIssue | None  # as approved
    report: SendReport | None = None  # the send that followed, if any
    refused: str | None = None  # why nothing was approved
    waiting: AwaitingReview | None = None  # the new version's proof, when it was rebuilt


async def approve_period(
    settings: Settings,
    store: Store,
    clock: Clock,
    key: str,
    *,
    by: str,
    version: int | None = None,
    send: bool = True,
    on_progress: Callable[[SendCounts], None] | None = None,
) -> Approval:
    period = period_of(settings, key)
    issue = await store.issue(period.key)
    if issue is None:
        return Approval(
            None,
            refused=f"{period.key} has no issue yet: it is built at the schedule, or by "
            "`syndicate digest send` (which sends its proof first)",
        )
    if not issue.awaiting_review:
        if issue.approved_at is not None and issue.snapshot_at is None and send:
            return Approval(issue, await _send(settings, store, clock, key, on_progress))
        return Approval(issue, refused=f"{period.key} is not awaiting approval ({_why(issue)})")
    built = await build_issue(settings, store, clock, period.key)
    if built.issue is not None and built.rebuilt:
        transport = open_transport(settings)
        try:
            waiting = await review_gate(
                settings, store, clock, built.issue, transport, rebuilt=True
            )
        finally:
            await transport.close()
        return Approval(
            None,
            refused=f"{period.key} changed since its proof (posts, intro or templates): "
            f"rebuilt as version {built.issue.version}; read its proof, then approve again",
            waiting=waiting if isinstance(waiting, AwaitingReview) else None,
        )
    issue = built.issue or issue
    if version is not None and version != issue.version:
        return Approval(
            None,
            refused=f"--version {version}: {period.key} is at version {issue.version} now; "
            "read its latest proof, then approve that version",
        )
    approved = await store.approve_issue(issue.id, issue.version, by, clock.now())
    if approved is None:
        return Approval(None, refused=f"{period.key} changed meanwhile; run this again")
    if not send:
        return Approval(approved)
    return Approval(approved, await _send(settings, store, clock, period.key, on_progress))


async def _send(
    settings: Settings,
    store: Store,
    clock: Clock,
    key: str,
    on_progress: Callable[[SendCounts], None] | None,
) -> SendReport | None:
    report = await send_period(settings, store, clock, key, on_progress=on_progress)
    return report if isinstance(report, SendReport) else None


def _why(issue: DigestIssue) -> str:
    if issue.approved_at is not None:
        when = f"{issue.approved_at:%Y-%m-%d %H:%M %Z}"
        state = "sending began" if issue.snapshot_at else "not sent yet"
        return f"version {issue.version} approved by {issue.approved_by} at {when}; {state}"
    return "it was built with review off" + ("; sending began" if issue.snapshot_at else "")
