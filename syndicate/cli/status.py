"""`syndicate status`: sources, the last and next digest, the delivery queue, and how clean
the list is (subscribers by status, bounces and complaints) at a glance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async
from syndicate.cli.sources import list_sources
from syndicate.models import DigestIssue, JobRun
from syndicate.statuses import InboundOutcome, RunStatus, SubscriberStatus
from syndicate.terminal import say

if TYPE_CHECKING:
    from syndicate.config import Settings
    from syndicate.store import Store


@dataclass(frozen=True, slots=True)
class DigestStatus:
    last: DigestIssue | None
    last_run: JobRun | None
    last_ledger: dict[str, int]
    queue: dict[str, int]  # every delivery, by status
    next_retry_at: datetime | None
    awaiting: list[DigestIssue]  # built with review on and not approved


async def digest_status(store: Store) -> DigestStatus:
    last = await store.latest_issue()
    return DigestStatus(
        last=last,
        last_run=await store.get_run(f"digest:{last.period}") if last else None,
        last_ledger=await store.delivery_counts(last.id) if last else {},
        queue=await store.delivery_counts(),
        next_retry_at=await store.next_retry_at(last.id) if last else None,
        awaiting=await store.issues_awaiting_review(),
    )


@cli.command()
@pass_app
@click.pass_context
def status(ctx: click.Context, app: AppContext) -> None:
    """Show each source's health and next poll, the last and next digest, and the queue.

    \b
    Example:
      syndicate status
    """
    from syndicate.digest.review import describe
    from syndicate.store import Store
    from syndicate.summary import next_digest

    ctx.invoke(list_sources)
    settings = app.settings
    tz = settings.site.tz

    now = app.clock.now()

    async def go() -> tuple[DigestStatus, str, ListStatus]:
        async with await Store.open(settings.database_url) as store:
            return (
                await digest_status(store),
                await describe_due_digest(settings, store, now),
                await list_status(store, now),
            )

    found, due, health = run_async(go())
    click.echo()
    if found.last is None:
        click.echo("last digest   none yet")
    else:
        run = found.last_run
        state = f"run {run.status}" if run else "not sent by the scheduler"
        say(
            f"last digest   {found.last.period}: {found.last.subject!r} ({state}); "
            f"{_statuses(found.last_ledger) or 'no deliveries'}"
        )
    say(f"due digest    {due}")  # a stopped run quotes the mail server
    for issue in found.awaiting:
        if not due.startswith(f"{issue.period}:"):
            say(f"review        {issue.period}: {describe(settings.digest, issue, now, tz)}")
    upcoming = next_digest(settings, now)
    if upcoming is not None:
        fire, period = upcoming
        click.echo(f"next digest   {period.key} at {fire:%Y-%m-%d %H:%M %Z}")
    click.echo(f"deliveries    {_statuses(found.queue) or 'none'}")
    if found.next_retry_at is not None:
        click.echo(f"next retry    {found.next_retry_at.astimezone(tz):%Y-%m-%d %H:%M %Z}")
    click.echo(f"subscribers   {_statuses(health.subscribers) or 'none'}")
    days = RECENT.days
    click.echo(
        f"bounces       {days} days: {_statuses(health.recent_events) or 'none'}; "
        f"ever: {_statuses(health.events) or 'none'}"
    )
    kept = health.recent_mail.get(InboundOutcome.UNREADABLE, 0)
    click.echo(
        f"returned mail {days} days: {_statuses(health.recent_mail) or 'none'}"
        + (f" (unreadable ones kept in {settings.bounces_keep_dir})" if kept else "")
    )


# How far back `status` counts bounces and returned mail besides the totals.
RECENT = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class ListStatus:
    """How clean the list is: subscribers by status, and what came back by mail."""

    subscribers: dict[str, int]
    events: dict[str, int]  # bounce events by kind, ever
    recent_events: dict[str, int]  # in the last RECENT
    recent_mail: dict[str, int]  # returned mail by outcome, in the last RECENT


async def list_status(store: Store, now: datetime) -> ListStatus:
    since = now - RECENT
    return ListStatus(
        subscribers={
            status: count
            for status in SubscriberStatus
            if (count := await store.count_subscribers(status))
        },
        events=await store.bounce_event_counts(),
        recent_events=await store.bounce_event_counts(since),
        recent_mail=await store.inbound_counts(since),
    )


async def describe_due_digest(settings: Settings, store: Store, now: datetime) -> str:
    """The most recent period whose digest is due, and how far its run got."""
    from syndicate.jobs import latest_due_period

    found = latest_due_period(settings, now)
    if found is None:
        return "none"
    period, due = found
    run = await store.get_run(f"digest:{period.key}")
    issue = await store.issue(period.key)
    since = f"due since {due.astimezone(settings.site.tz):%Y-%m-%d %H:%M %Z}"
    if issue is not None and issue.awaiting_review:
        from syndicate.digest.review import describe

        return f"{period.key}: {since}, {describe(settings.digest, issue, now, settings.site.tz)}"
    if run is None:
        return f"{period.key}: {since}, not started (the worker sends it when it next runs)"
    if run.status == RunStatus.DONE:
        return f"{period.key}: done" + ("" if issue else " (no posts, no issue)")
    if run.status == RunStatus.FAILED:
        return f"{period.key}: {since}, stopped: {run.error} (taken up again by the worker)"
    return f"{period.key}: {since}, running ({run.owner})"


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{status} {counts[status]}" for status in sorted(counts))
