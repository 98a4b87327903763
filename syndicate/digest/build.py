"""Building a digest issue: the period's posts, the shared context, one stored row.

    context, ids = await digest_context(settings, store, period)   # what templates see
    result = await build_issue(settings, store, clock, "2015-12")  # stored, once
    content = await stored_content(settings, store, result.issue)  # what it is made of

An issue is unique per period: building again returns the stored one, and two processes
building at once end up with the same row. It keeps what it was made of (its posts as they
were, the templates, syndicate.digest.issue), so that a copy for some categories rendered
when it is sent is still the issue.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from markdown_it import MarkdownIt

from syndicate.categories import SiteCategories, unique
from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.digest import period as periods
from syndicate.digest.context import DigestContext, DigestPeriod, DigestPost, DigestSite, DigestUrls
from syndicate.digest.issue import NEUTRAL_SUBSCRIBER, IssueContent, group, preheader
from syndicate.digest.render import DigestRenderer
from syndicate.digest.review import fingerprint
from syndicate.files import write_atomic
from syndicate.i18n import Translator, translator
from syndicate.languages import best_match, primary
from syndicate.links import with_public_links
from syndicate.markup.sanitise import sanitise_html
from syndicate.models import DigestIssue, Post
from syndicate.store import Store

__all__ = ["NEUTRAL_SUBSCRIBER", "group"]  # from syndicate.digest.issue, for bench/digest.py


@dataclass(frozen=True, slots=True)
class BuildResult:
    period: DigestPeriod
    issue: DigestIssue | None  # None: no posts and skip_empty
    created: bool
    posts: int  # in the issue
    more: int  # left out by max_posts
    rebuilt: bool = False  # awaiting review, and made again as a new version


def renderer_for(settings: Settings) -> DigestRenderer:
    return DigestRenderer(
        settings.templates_dir, settings.digest.subject, locales_dir=settings.locales_dir
    )


def reader_words(settings: Settings, language: str | None) -> Translator:
    """The words of a reader of `language` (a subscriber's, maybe None or one the site no
    longer offers): the closest of the site's languages, else the site's default."""
    offered = settings.site.offered_languages
    chosen = best_match(language, offered) if language else None
    return translator(chosen or offered[0], settings.locales_dir)


def period_of(settings: Settings, key: str) -> DigestPeriod:
    return periods.parse(key, settings.digest.period, settings.site.tz)


async def issue_content(settings: Settings, store: Store, period: DigestPeriod) -> IssueContent:
    """The period's digest as it would be built now: the shared context and what an issue
    keeps besides (see syndicate.digest.issue); `templates` is filled when it is stored."""
    posts = await store.posts_between(period.start, period.end)  # oldest first
    if settings.digest.order == "newest":
        posts.reverse()
    max_posts = settings.digest.max_posts
    return _content(settings, period, posts[:max_posts], posts[max_posts:])


async def stored_content(settings: Settings, store: Store, issue: DigestIssue) -> IssueContent:
    """What a stored issue is made of (its copies are rendered from this)."""
    if issue.content is not None:
        return IssueContent.from_json(issue.content, issue.post_ids)
    # Stored before issues kept their content (revision 0007): its own posts as they are
    # now, and as the ones left out the period's other posts seen before it was built.
    period = period_of(settings, issue.period)
    found = await store.posts_by_ids(issue.post_ids)
    chosen = [found[post_id] for post_id in issue.post_ids if post_id in found]
    left_out = [
        post
        for post in await store.posts_between(period.start, period.end)
        if post.id not in found and post.first_seen <= issue.created_at
    ]
    return _content(settings, period, chosen, left_out)


def copy_renderer(settings: Settings, content: IssueContent) -> DigestRenderer:
    """A renderer of the issue's copies: the templates and subject it was built with."""
    if content.templates is None or content.subject is None:
        return renderer_for(settings)
    return DigestRenderer(
        settings.templates_dir,
        content.subject,
        sources=content.templates,
        locales_dir=settings.locales_dir,
    )


def issue_web_url(settings: Settings, key: str) -> str:
    """Where an issue's "view in browser" copy is published: <site>/feeds/digest/<key>.html."""
    return f"{settings.site.url}/feeds/digest/{key}.html"


def _content(
    settings: Settings, period: DigestPeriod, chosen: list[Post], left_out: list[Post]
) -> IssueContent:
    titles = {s.name: s.display_title() for s in settings.sources}
    site_categories = SiteCategories.of(settings)
    items = [_digest_post(post, titles, site_categories) for post in chosen]
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
            view_in_browser=issue_web_url(settings, period.key),
            archive=archive,
            feeds=f"{base}/index.{settings.publish.formats[0]}",
        ),
        subscriber=NEUTRAL_SUBSCRIBER,
        intro_html=intro_html(settings, period.key),
        more=len(left_out),
        preheader=preheader(items, period),
    )
    return IssueContent(
        context=context,
        post_ids=tuple(post.id or 0 for post in chosen),
        left_out=tuple(
            unique((*site_categories.of_post(post.source, post.categories), *post.categories))
            for post in left_out
        ),
        group_by=settings.digest.group_by,
        languages=tuple(site.offered_languages),
        other_languages=settings.digest.other_languages,
        # The editor's note in the other languages, where they wrote one.
        intros={
            primary(language): text
            for language in site.offered_languages[1:]
            if (text := intro_html(settings, period.key, language))
        },
    )


def default_copy(settings: Settings, content: IssueContent) -> DigestContext:
    """The issue as its stored copy shows it: for a reader of the site's default language
    who chose no categories."""
    return content.for_reader(frozenset(), reader_words(settings, content.default_language))


async def digest_context(
    settings: Settings, store: Store, period: DigestPeriod
) -> tuple[DigestContext, list[int]]:
    """The shared context of the period's digest as its stored copy shows it, and the ids
    of the posts in the issue."""
    content = await issue_content(settings, store, period)
    return default_copy(settings, content), list(content.post_ids)


def intro_html(settings: Settings, key: str, language: str | None = None) -> str:
    """digest/intro/<period>.md beside the config (with a language, <period>.<lang>.md):
    Markdown with raw HTML off, sanitised; "" when there is no such file."""
    suffix = f".{primary(language)}" if language is not None else ""
    path = settings.resolve(f"digest/intro/{key}{suffix}.md")
    if not path.is_file():
        return ""
    markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})
    return sanitise_html(markdown.render(path.read_text(encoding="utf-8")), settings.site.url)


async def build_issue(settings: Settings, store: Store, clock: Clock, key: str) -> BuildResult:
    """Store the period's issue (once) and write its web copy; see the module docstring.

    With [digest] review on, the issue is stored awaiting review, without a web copy, and
    until it is approved it is rebuilt as a new version whenever what it is made of changed
    (syndicate.digest.review)."""
    period = period_of(settings, key)
    existing = await store.issue(period.key)
    if existing is not None:
        if existing.awaiting_review and settings.digest.review is not None:
            rebuilt = await _rebuild_if_changed(settings, store, existing)
            if rebuilt is not None:
                return BuildResult(period, rebuilt, False, len(rebuilt.post_ids), 0, rebuilt=True)
        else:
            await publish_web_copy(settings, store, existing)
        return BuildResult(period, existing, False, len(existing.post_ids), 0)
    content = await issue_content(settings, store, period)
    if not content.post_ids and settings.digest.skip_empty:
        return BuildResult(period, None, False, 0, content.context.more)
    content = _kept(settings, content)
    rendered = copy_renderer(settings, content).render(default_copy(settings, content))
    stored = content.to_json()
    issue, created = await store.create_issue(
        period.key,
        rendered.subject,
        content.post_ids,
        rendered.html,
        rendered.text,
        clock.now(),
        content=stored,
        fingerprint=fingerprint(stored),
        awaiting_review=settings.digest.review is not None,
    )
    if created and not issue.awaiting_review:
        _write_web_copy(settings, period.key, content)
    else:
        # Another process stored it first: its content, not ours, is the issue.
        await publish_web_copy(settings, store, issue)
    return BuildResult(period, issue, created, len(issue.post_ids), content.context.more)


async def publish_web_copy(settings: Settings, store: Store, issue: DigestIssue) -> None:
    """Write the issue's web copies unless they are there, or it awaits review (an issue
    nobody approved is for its reviewers' eyes only)."""
    if issue.awaiting_review or web_copy_path(settings, issue.period).exists():
        return
    _write_web_copy(settings, issue.period, await stored_content(settings, store, issue))


def _kept(settings: Settings, content: IssueContent) -> IssueContent:
    # The templates are read once and kept with the issue, so that the copies rendered
    # when it is sent (for subscribers' categories) are made by the same ones.
    return replace(
        content,
        templates=DigestRenderer.read_sources(settings.templates_dir),
        subject=settings.digest.subject,
    )


async def _rebuild_if_changed(
    settings: Settings, store: Store, issue: DigestIssue
) -> DigestIssue | None:
    """The issue's next version when its posts, intro or templates changed since it was
    built; None when nothing did (or it was approved or rebuilt meanwhile)."""
    period = period_of(settings, issue.period)
    content = await issue_content(settings, store, period)
    if not content.post_ids:
        return None  # its posts are gone: keep the issue the reviewers have seen
    content = _kept(settings, content)
    stored = content.to_json()
    mark = fingerprint(stored)
    before = issue.fingerprint or (fingerprint(issue.content) if issue.content else None)
    if mark == before:
        return None
    rendered = copy_renderer(settings, content).render(default_copy(settings, content))
    return await store.rebuild_issue(
        issue, rendered.subject, content.post_ids, rendered.html, rendered.text, stored, mark
    )


def web_copy_html(settings: Settings, content: IssueContent, language: str | None) -> str:
    """The issue's web copy in `language` (the default's when None), as published."""
    words = reader_words(settings, language)
    return copy_renderer(settings, content).render_web_copy(content.for_reader(frozenset(), words))


def web_copy_path(settings: Settings, key: str, language: str | None = None) -> Path:
    """The default language's web copy, <key>.html, or another language's, <key>.<lang>.html."""
    suffix = f".{primary(language)}" if language is not None else ""
    return settings.publish_dir / "digest" / f"{key}{suffix}.html"


def _write_web_copy(settings: Settings, key: str, content: IssueContent) -> None:
    """The issue's "view in browser" pages, rendered from what the issue is made of (the
    stored copy greets its reader and offers to unsubscribe: the page is for anyone): one
    in the default language, and one more in each other language the site offers."""
    languages = content.languages or (content.default_language,)
    for index, language in enumerate(languages):
        html = web_copy_html(settings, content, language)
        path = web_copy_path(settings, key, language if index else None)
        write_atomic(path, html.encode("utf-8"))


def _digest_post(stored: Post, titles: dict[str, str], site: SiteCategories) -> DigestPost:
    # Checked again here, not only at ingest: rows stored before that check may hold links
    # that must not be mailed.
    post = with_public_links(stored)
    site_categories = site.of_post(post.source, post.categories)
    return DigestPost(
        title=post.title,
        url=post.url,
        excerpt=post.excerpt,
        image=post.image_url,
        author=", ".join(post.authors),
        category=site_categories[0] if site_categories else "",
        source=titles.get(post.source, post.source),
        date=post.published,
        discussion_url=post.discussion_url,
        reply_count=post.reply_count,
        categories=post.categories,
        site_categories=site_categories,
        image_alt=(post.image_alt or "") if post.image_url else "",
        image_width=post.image_width if post.image_url else None,
        image_height=post.image_height if post.image_url else None,
        language=post.language,
    )
