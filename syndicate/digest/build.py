"""Building a digest issue: the period's posts, the shared context, one stored row.

    context = await digest_context(settings, store, period)   # what templates see
    result = await build_issue(settings, store, clock, "2015-12")  # stored, once

An issue is unique per period: building again returns the stored one, and two processes
building at once end up with the same row.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from markdown_it import MarkdownIt

from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.digest import period as periods
from syndicate.digest.context import (
    DigestContext,
    DigestGroup,
    DigestPeriod,
    DigestPost,
    DigestSite,
    DigestSubscriber,
    DigestUrls,
)
from syndicate.digest.render import DigestRenderer, RenderedDigest
from syndicate.ingest.sanitise import sanitise_html
from syndicate.links import with_public_links
from syndicate.models import DigestIssue, Post
from syndicate.publish.files import write_atomic
from syndicate.store import Store

NEUTRAL_SUBSCRIBER = DigestSubscriber(name="", email="", greeting="Hello,")


@dataclass(frozen=True, slots=True)
class BuildResult:
    period: DigestPeriod
    issue: DigestIssue | None  # None: no posts and skip_empty
    created: bool
    posts: int  # in the issue
    more: int  # left out by max_posts


def renderer_for(settings: Settings) -> DigestRenderer:
    return DigestRenderer(settings.templates_dir, settings.digest.subject)


def period_of(settings: Settings, key: str) -> DigestPeriod:
    return periods.parse(key, settings.digest.period, settings.site.tz)


async def digest_context(
    settings: Settings, store: Store, period: DigestPeriod
) -> tuple[DigestContext, list[int]]:
    """The shared context of the period's digest, and the ids of the posts in it."""
    posts = await store.posts_between(period.start, period.end)  # oldest first
    if settings.digest.order == "newest":
        posts.reverse()
    chosen = posts[: settings.digest.max_posts]
    titles = {s.name: s.title or s.name for s in settings.sources}
    items = [_digest_post(post, titles) for post in chosen]
    site = settings.site
    base = f"{site.url}/feeds"
    archive = (
        f"{base}/archive/{period.key}.html"
        if settings.digest.period == "month"
        else f"{base}/archive/index.html"
    )
    context = DigestContext(
        site=DigestSite(site.title, site.url, site.description, site.language, site.timezone),
        period=period,
        groups=group(items, settings.digest.group_by),
        posts=tuple(items),
        urls=DigestUrls(
            view_in_browser=f"{base}/digest/{period.key}.html",
            archive=archive,
            feeds=f"{base}/index.{settings.publish.formats[0]}",
        ),
        subscriber=NEUTRAL_SUBSCRIBER,
        intro_html=intro_html(settings, period.key),
        more=len(posts) - len(chosen),
        preheader=_preheader(items, period),
    )
    return context, [post.id or 0 for post in chosen]


def for_categories(
    context: DigestContext, categories: frozenset[str], group_by: str
) -> DigestContext:
    """The digest of a subscriber who chose some categories: only their posts."""
    wanted = {category.casefold() for category in categories}
    if not wanted:
        return context
    items = tuple(p for p in context.posts if wanted & {c.casefold() for c in p.categories})
    return replace(context, posts=items, groups=group(list(items), group_by))


def group(items: list[DigestPost], group_by: str) -> tuple[DigestGroup, ...]:
    """Groups in the order their first post appears; posts keep their order inside."""
    if group_by == "none":
        return (DigestGroup("", tuple(items)),) if items else ()
    groups: dict[str, list[DigestPost]] = {}
    for item in items:
        key = (item.category or "Other") if group_by == "category" else item.source
        groups.setdefault(key, []).append(item)
    return tuple(DigestGroup(title, tuple(posts)) for title, posts in groups.items())


def intro_html(settings: Settings, key: str) -> str:
    """digest/intro/<period>.md beside the config: Markdown with raw HTML off, sanitised."""
    path = settings.resolve(f"digest/intro/{key}.md")
    if not path.is_file():
        return ""
    markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})
    return sanitise_html(markdown.render(path.read_text(encoding="utf-8")), settings.site.url)


async def build_issue(settings: Settings, store: Store, clock: Clock, key: str) -> BuildResult:
    """Store the period's issue (once) and write its web copy; see the module docstring."""
    period = period_of(settings, key)
    existing = await store.issue(period.key)
    if existing is not None:
        _write_web_copy(settings, period.key, _stored(settings, existing), only_if_missing=True)
        return BuildResult(period, existing, False, len(existing.post_ids), 0)
    context, ids = await digest_context(settings, store, period)
    if not ids and settings.digest.skip_empty:
        return BuildResult(period, None, False, 0, context.more)
    rendered = renderer_for(settings).render(context)
    issue, created = await store.create_issue(
        period.key, rendered.subject, ids, rendered.html, rendered.text, clock.now()
    )
    _write_web_copy(settings, period.key, _stored(settings, issue), only_if_missing=not created)
    return BuildResult(period, issue, created, len(issue.post_ids), context.more)


def web_copy_path(settings: Settings, key: str) -> Path:
    return settings.publish_dir / "digest" / f"{key}.html"


def _write_web_copy(
    settings: Settings, key: str, rendered: RenderedDigest, *, only_if_missing: bool
) -> None:
    path = web_copy_path(settings, key)
    if not (only_if_missing and path.exists()):
        write_atomic(path, rendered.web_copy().encode("utf-8"))


def _stored(settings: Settings, issue: DigestIssue) -> RenderedDigest:
    return RenderedDigest(
        subject=issue.subject, html=issue.html, text=issue.text, home_url=f"{settings.site.url}/"
    )


def _digest_post(stored: Post, titles: dict[str, str]) -> DigestPost:
    # Checked again here, not only at ingest: rows stored before that check may hold links
    # that must not be mailed.
    post = with_public_links(stored)
    return DigestPost(
        title=post.title,
        url=post.url,
        excerpt=post.excerpt,
        image=post.image_url,
        author=", ".join(post.authors),
        category=post.categories[0] if post.categories else "",
        source=titles.get(post.source, post.source),
        date=post.published,
        discussion_url=post.discussion_url,
        reply_count=post.reply_count,
        categories=post.categories,
    )


def _preheader(items: list[DigestPost], period: DigestPeriod) -> str:
    if not items:
        return f"No new posts in {period.label}."
    titles = "; ".join(item.title for item in items[:3])
    return f"{len(items)} posts from {period.label}: {titles}"[:150]
