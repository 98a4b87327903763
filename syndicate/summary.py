"""Human summaries of the configuration (for `syndicate check` and start-up banners)."""

from __future__ import annotations

from datetime import datetime

from syndicate.config import Settings
from syndicate.config.fields import format_duration
from syndicate.cron import cron_trigger
from syndicate.digest import period as periods
from syndicate.digest.context import DigestPeriod
from syndicate.store.engine import safe_url


def next_digest(settings: Settings, now: datetime) -> tuple[datetime, DigestPeriod] | None:
    """When the next digest goes out (site time zone) and the period it is for: the first
    schedule time after a period's end that is still ahead. A schedule that fires more often
    than periods end ("0 9 1 * mon" for months: the 1st and every Monday) also fires in
    between, but then there is nothing new to send."""
    kind, tz = settings.digest.period, settings.site.tz
    trigger = cron_trigger(settings.digest.schedule, tz)
    for period in (periods.just_ended(now, kind, tz), periods.containing(now, kind, tz)):
        fire = trigger.get_next_fire_time(None, period.end)
        if fire is None:
            return None
        if fire > now:
            return fire.astimezone(tz), period
    return None


def describe(settings: Settings, now: datetime) -> list[tuple[str, str]]:
    """(label, value) rows describing what this config will do."""
    sources = ", ".join(s.name + ("" if s.enabled else " (disabled)") for s in settings.sources)
    upcoming = next_digest(settings, now)
    smtp = settings.mail.smtp
    transport = (
        f"outbox {settings.outbox_dir}"
        if settings.mail.transport == "outbox"
        else f"smtp {smtp.host}:{smtp.port} ({smtp.tls}, pool {smtp.pool})"
    )
    return [
        ("site", f"{settings.site.title} <{settings.site.url}> ({settings.site.timezone})"),
        ("database", safe_url(settings.database_url)),
        ("sources", f"{len(settings.sources)}: {sources}" if sources else "none configured"),
        ("categories", _categories(settings)),
        ("forum", settings.forum.strategy),
        (
            "feeds",
            f"{settings.publish_dir} ({', '.join(settings.publish.formats)}, "
            f"{settings.publish.items} items)",
        ),
        (
            "digest",
            f'"{settings.digest.schedule}" every {settings.digest.period}, next '
            + (upcoming[0].strftime("%Y-%m-%d %H:%M %Z") if upcoming else "never"),
        ),
        ("review", _review(settings)),
        ("mail", transport),
        ("bounces", _bounces(settings)),
        ("web", f"http://{settings.web.host}:{settings.web.port}/"),
    ]


def _review(settings: Settings) -> str:
    digest = settings.digest
    if digest.review is None:
        return "off: each issue goes out at the schedule"
    return (
        f"proofs to {', '.join(digest.reviewers)}; {format_duration(digest.review)} to approve, "
        f"then {'sent' if digest.unreviewed == 'send' else 'held'}"
    )


def _bounces(settings: Settings) -> str:
    mail, bounces = settings.mail, settings.bounces
    imap = bounces.imap
    read = (
        f"imap {imap.host}:{imap.effective_port} {imap.folder} every "
        f"{int(bounces.every.total_seconds() // 60)}m"
        if imap
        else "from `bounces process` only"
    )
    return (
        f"{read}; return path {mail.return_path or 'not set (matched by Message-ID)'}; "
        f"unsubscribe mailbox {mail.unsubscribe_mailbox or 'not set (no mailto)'}"
    )


def _categories(settings: Settings) -> str:
    listed = settings.site.categories
    if listed is None:
        return "every category a source names or a post has ([site] categories not set)"
    return f"{len(listed)}: {', '.join(listed)}" if listed else "none offered"
