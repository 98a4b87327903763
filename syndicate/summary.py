"""Human summaries of the configuration (for `syndicate check` and start-up banners)."""

from __future__ import annotations

from datetime import datetime

from syndicate.config import Settings
from syndicate.cron import cron_trigger
from syndicate.digest import period as periods
from syndicate.digest.context import DigestPeriod
from syndicate.store.engine import safe_url


def next_digest_time(settings: Settings, now: datetime) -> datetime | None:
    """When [digest] schedule next fires, in the site's time zone."""
    trigger = cron_trigger(settings.digest.schedule, settings.site.tz)
    return trigger.get_next_fire_time(None, now.astimezone(settings.site.tz))


def next_digest(settings: Settings, now: datetime) -> tuple[datetime, DigestPeriod] | None:
    """When the schedule next fires (site time zone) and the period whose issue it sends."""
    fire = next_digest_time(settings, now)
    if fire is None:
        return None
    return fire, periods.just_ended(fire, settings.digest.period, settings.site.tz)


def describe(settings: Settings, now: datetime) -> list[tuple[str, str]]:
    """(label, value) rows describing what this config will do."""
    sources = ", ".join(s.name + ("" if s.enabled else " (disabled)") for s in settings.sources)
    next_digest = next_digest_time(settings, now)
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
            + (next_digest.strftime("%Y-%m-%d %H:%M %Z") if next_digest else "never"),
        ),
        ("mail", transport),
        ("web", f"http://{settings.web.host}:{settings.web.port}/"),
    ]


def _categories(settings: Settings) -> str:
    listed = settings.site.categories
    if listed is None:
        return "every category a source names or a post has ([site] categories not set)"
    return f"{len(listed)}: {', '.join(listed)}" if listed else "none offered"
