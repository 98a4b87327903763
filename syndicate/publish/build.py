"""The publish job: plan the documents, rebuild the ones whose inputs changed, write them
atomically, remove the ones that no longer exist, ping the WebSub hub.

A second build with nothing changed loads no post content and writes no file: each
document's fingerprint (plan.py) is compared with the one stored when it was written, and the
file on disk with the bytes recorded then. The records are in the database, which several
workers may share while each publishes to a folder of its own: a folder that missed another
worker's build holds other bytes than the record, so it is brought up to date.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from hashlib import sha256
from pathlib import Path
from typing import Any

from syndicate import __version__
from syndicate.categories import SiteCategories
from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.files import file_stamp, has_bytes, holds, prepare_folder, remove, write_atomic
from syndicate.i18n import catalog_file, translator
from syndicate.links import public_id, public_url, with_public_links
from syndicate.models import IssueSummary, Post
from syndicate.publish.atom import render_atom
from syndicate.publish.document import ArchivePage, FeedDocument, MonthLink, SourceInfo
from syndicate.publish.jsonfeed import render_json
from syndicate.publish.listings import FEEDS_PAGE, ISSUES_PAGE, feed_groups, issue_links
from syndicate.publish.pages import (
    FEEDS_TEMPLATE,
    ISSUES_TEMPLATE,
    PageRenderer,
    page_languages,
    root_from,
    variant_path,
)
from syndicate.publish.plan import FeedPlan, MonthPlan, Plan, fingerprint_of, make_plan
from syndicate.publish.rss import render_rss
from syndicate.publish.stylesheet import STYLESHEET_PATH, stylesheet_bytes
from syndicate.publish.websub import ping_hub
from syndicate.store import Store
from syndicate.store.published import PublishedFile

log = logging.getLogger(__name__)

RENDERERS: dict[str, Callable[[FeedDocument], bytes]] = {
    "rss": render_rss,
    "atom": render_atom,
    "json": render_json,
}
FEED_EXTENSIONS = tuple(RENDERERS)


@dataclass(slots=True)
class PublishReport:
    folder: Path
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    pinged: int = 0
    ping_failures: int = 0

    def summary(self) -> str:
        line = (
            f"published to {self.folder}: {len(self.written)} written, "
            f"{self.unchanged} unchanged, {len(self.removed)} removed"
        )
        if self.pinged or self.ping_failures:
            line += f"; WebSub: {self.pinged} pinged, {self.ping_failures} to retry"
        return line


@dataclass(frozen=True, slots=True)
class _File:
    path: str
    fingerprint: str
    build: Callable[[dict[int, Post]], bytes]
    post_ids: tuple[int, ...]


async def publish(settings: Settings, store: Store, clock: Clock) -> PublishReport:
    folder = settings.publish_dir
    report = PublishReport(folder)
    prepare_folder(folder)
    now = clock.now()
    feeds_url = f"{settings.site.url}/feeds"
    sources = await _source_infos(settings, store, feeds_url)
    pages = PageRenderer(settings.templates_dir, formats=tuple(settings.publish.formats))
    context = fingerprint_of(
        __version__,
        settings.site.model_dump(),
        settings.publish.model_dump(exclude={"dir"}),
        [vars_of_source(s) for s in sources.values()],
        pages.fingerprint(),
    )
    keys = await store.post_keys()
    plan = make_plan(
        keys,
        site_title=settings.site.title,
        site_description=settings.site.description,
        site_url=settings.site.url,
        feeds_url=feeds_url,
        timezone=settings.site.tz,
        items=settings.publish.items,
        formats=tuple(settings.publish.formats),
        sources={name: (info.title, info.home_url) for name, info in sources.items()},
        now=now,
        context=context,
        site_categories=SiteCategories.of(settings),
        languages=settings.site.offered_languages,
    )
    files = _feed_files(settings, plan, sources, feeds_url) + _page_files(
        settings, plan, sources, feeds_url, pages, context
    )
    issues = [i for i in await store.issue_list() if _has_web_copy(folder, i.period)]
    files += _list_files(settings, plan, issues, feeds_url, pages, context)

    previous = await store.published_files()
    stale: list[_File] = []
    # Records of files found current by reading them (no stamp yet, or another worker's
    # folder): stamped now, so the next build needs only a stat() for them.
    records: list[PublishedFile] = []
    for file in files:
        record = previous.get(file.path)
        if record is None or record.fingerprint != file.fingerprint:
            stale.append(file)
            continue
        stamp = file_stamp(folder / file.path)
        if stamp is not None and stamp == record.stamp:
            continue
        if stamp is not None and holds(folder / file.path, record.sha256):
            records.append(replace(record, stamp=stamp))
        else:
            stale.append(file)
    report.unchanged = len(files) - len(stale)
    # The posts of one group of files at a time (a month's archive in every format shares
    # them; a feed's newest posts are few): a full build of 100,000 posts never holds them
    # all at once.
    groups: dict[tuple[int, ...], list[_File]] = {}
    for file in stale:
        groups.setdefault(file.post_ids, []).append(file)
    for ids, group in groups.items():
        # Checked again here, not only at ingest: rows stored before that check may hold
        # links that must not be published.
        stored = await store.posts_by_ids(ids)
        posts = {i: with_public_links(post) for i, post in stored.items()}
        for file in group:
            data = file.build(posts)
            target = folder / file.path
            if has_bytes(target, data):
                report.unchanged += 1
            else:
                write_atomic(target, data)
                report.written.append(file.path)
            records.append(
                PublishedFile(
                    file.path,
                    file.fingerprint,
                    sha256(data).hexdigest(),
                    now,
                    ping_pending=False,
                    stamp=file_stamp(target),
                )
            )
        del stored, posts
    await store.record_published(records)

    planned = {file.path for file in files}
    gone = [path for path in previous if path not in planned]
    for path in gone:
        if remove(folder / path, folder):
            report.removed.append(path)
    await store.forget_published(gone)

    if settings.publish.websub_hub:
        await _ping(settings.publish.websub_hub, store, feeds_url, report, previous, planned)
    log.info(
        "published to %s: %d written, %d unchanged, %d removed",
        folder,
        len(report.written),
        report.unchanged,
        len(report.removed),
    )
    return report


async def _ping(
    hub: str,
    store: Store,
    feeds_url: str,
    report: PublishReport,
    previous: dict[str, PublishedFile],
    planned: set[str],
) -> None:
    """Ping for feeds written now and for those whose earlier ping failed."""
    owed = {path for path in report.written if path.endswith(FEED_EXTENSIONS)}
    owed |= {path for path, file in previous.items() if file.ping_pending and path in planned}
    if not owed:
        return
    await store.set_ping_pending(owed, True)
    urls = {f"{feeds_url}/{path}": path for path in sorted(owed)}
    accepted = await ping_hub(hub, urls)
    await store.set_ping_pending([urls[url] for url in accepted], False)
    report.pinged = len(accepted)
    report.ping_failures = len(urls) - len(accepted)


def _feed_files(
    settings: Settings, plan: Plan, sources: dict[str, SourceInfo], feeds_url: str
) -> list[_File]:
    def builder(feed: FeedPlan, ext: str) -> Callable[[dict[int, Post]], bytes]:
        def build(posts: dict[int, Post]) -> bytes:
            return RENDERERS[ext](_document(settings, feed, posts, sources, feeds_url))

        return build

    return [
        _File(f"{feed.path}.{ext}", feed.fingerprint, builder(feed, ext), feed.post_ids)
        for feed in plan.feeds
        for ext in feed.formats
    ]


def _document(
    settings: Settings,
    feed: FeedPlan,
    posts: dict[int, Post],
    sources: dict[str, SourceInfo],
    feeds_url: str,
) -> FeedDocument:
    site = settings.site
    return FeedDocument(
        path=feed.path,
        feeds_url=feeds_url,
        title=feed.title,
        description=feed.description,
        home_url=feed.home_url,
        language=feed.language or site.language,
        author=site.author or site.title,
        generator=f"syndicate {__version__}",
        posts=tuple(posts[i] for i in feed.post_ids),
        translations=feed.translations,
        sources=sources,
        ttl_minutes=int(settings.publish.ttl.total_seconds() // 60),
        icon=site.icon,
        logo=site.logo,
        hub=settings.publish.websub_hub,
        links=feed.links,
    )


def _page_files(
    settings: Settings,
    plan: Plan,
    sources: dict[str, SourceInfo],
    feeds_url: str,
    pages: PageRenderer,
    context: str,
) -> list[_File]:
    """The archive pages (the index of months, a page per month) in each offered language:
    the default's under the pages' own names, the others' beside them (pages.variant_path)."""
    files: list[_File] = []
    for language in settings.site.offered_languages:
        files += _archive_files(settings, plan, sources, pages, context, language)
    return files


def _archive_files(
    settings: Settings,
    plan: Plan,
    sources: dict[str, SourceInfo],
    pages: PageRenderer,
    context: str,
    language: str,
) -> list[_File]:
    # The pages link to each other and to the site relatively (publish.pages.root_from), so
    # they work wherever they are served: on `[site] url`, or on the admin's 127.0.0.1:8080
    # before that exists. Feeds keep `feeds_url`, absolute: they are read elsewhere.
    # `site_url` and `feeds_url` follow each page's own path; the month links and Atom
    # archive links below are for pages in feeds/archive/, where all of these are.
    # A page in another language links to the months in its own language.
    words = translator(language, settings.locales_dir)
    default = settings.site.offered_languages[0]
    page_site = root_from("/feeds/archive/")
    page_feeds = f"{page_site}/feeds"
    months = tuple(
        MonthLink(
            m.key,
            words.month_label(m.key),
            len(m.post_ids),
            f"{page_feeds}/{variant_path(f'archive/{m.key}.html', language, default)}",
        )
        for m in plan.months
    )
    spoken = _language_key(settings, language)

    def page(path: str, title: str, posts: tuple[Post, ...] = (), **extra: object) -> ArchivePage:
        return _page(
            settings, path, title, language, posts=posts, months=months, sources=sources, **extra
        )

    index = "archive/index.html"
    files = [
        _File(
            variant_path(index, language, default),
            fingerprint_of(context, "index", months, page_site, spoken),
            lambda _: pages.render_archive_index(page(index, words.gettext("Archive"))),
            (),
        )
    ]
    archive_fingerprints = {f.path: f.fingerprint for f in plan.feeds}
    for position, month in enumerate(plan.months):
        older = months[position + 1] if position + 1 < len(months) else None
        newer = months[position - 1] if position > 0 else None
        month_fingerprint = archive_fingerprints[f"archive/{month.key}"]
        label = months[position].label

        def build(
            posts: dict[int, Post],
            month: MonthPlan = month,
            older: MonthLink | None = older,
            newer: MonthLink | None = newer,
            label: str = label,
        ) -> bytes:
            return pages.render_archive(
                page(
                    f"archive/{month.key}.html",
                    words.gettext("Archive for %(month)s") % {"month": label},
                    tuple(posts[i] for i in month.post_ids),
                    previous=older,
                    next=newer,
                    atom_url=f"{page_feeds}/archive/{month.key}.atom",
                )
            )

        files.append(
            _File(
                variant_path(f"archive/{month.key}.html", language, default),
                fingerprint_of(month_fingerprint, older, newer, "html", page_site, spoken),
                build,
                month.post_ids,
            )
        )
    return files


def _language_key(settings: Settings, language: str) -> list[str]:
    """What a page in `language` depends on beyond the templates: the tag and its catalog's
    text (a translator's edit rebuilds the pages in that language)."""
    found = catalog_file(settings.locales_dir, language)
    return [language, sha256(found.read_bytes()).hexdigest() if found else ""]


def _page(settings: Settings, path: str, title: str, language: str, **fields: Any) -> ArchivePage:
    """The page at `path` under feeds/ ("archive/2015-12.html") in `language` (written at
    pages.variant_path), its links to the site and the feeds relative to where it is (see
    _archive_files)."""
    here = root_from(f"/feeds/{path}")
    site = settings.site
    offered = site.offered_languages
    switch, alternates = page_languages(path, language, offered)
    return ArchivePage(
        path=variant_path(path, language, offered[0]),
        site_title=site.title,
        site_url=here,
        feeds_url=f"{here}/feeds",
        language=language,
        title=title,
        timezone=site.timezone,
        languages=switch,
        alternates=alternates,
        **fields,
    )


def _list_files(
    settings: Settings,
    plan: Plan,
    issues: list[IssueSummary],
    feeds_url: str,
    pages: PageRenderer,
    context: str,
) -> list[_File]:
    """The list of feeds (/feeds/) and the past digest issues (/feeds/digest/) in each
    offered language, and the feeds' XSLT stylesheet (stylesheet.py)."""
    site = settings.site
    links = issue_links(issues)
    default = site.offered_languages[0]
    files: list[_File] = []
    for language in site.offered_languages:
        words = translator(language, settings.locales_dir)
        groups = feed_groups(plan.feeds, site.title, words)
        spoken = _language_key(settings, language)

        def page(path: str, title: str, language: str = language) -> ArchivePage:
            return _page(settings, path, title, language)

        feeds_title = words.gettext("Feeds")
        issues_title = words.gettext("Past issues")
        files += [
            _File(
                variant_path(FEEDS_PAGE, language, default),
                fingerprint_of(context, FEEDS_PAGE, groups, "relative", spoken),
                lambda _, page=page, groups=groups, title=feeds_title: pages.render_feeds(
                    page(FEEDS_PAGE, title), groups
                ),
                (),
            ),
            _File(
                variant_path(ISSUES_PAGE, language, default),
                fingerprint_of(context, ISSUES_PAGE, links, "relative", spoken),
                lambda _, page=page, title=issues_title: pages.render_issues(
                    page(ISSUES_PAGE, title), links
                ),
                (),
            ),
        ]
    # A templates folder copied before these pages existed lacks their templates: the feeds
    # and archives are still published, and the admin is told what to add.
    missing = [name for name in (FEEDS_TEMPLATE, ISSUES_TEMPLATE) if not pages.has(name)]
    if missing:
        log.warning(
            "not publishing /feeds/ and /feeds/digest/: no %s in %s (copy them from "
            "syndicate's bundled templates)",
            " or ".join(missing),
            pages.templates_dir,
        )
        files = []
    if {"rss", "atom"} & set(settings.publish.formats):
        xsl = stylesheet_bytes()
        files.append(
            _File(STYLESHEET_PATH, sha256(xsl).hexdigest(), lambda _: xsl, ()),
        )
    return files


def _has_web_copy(folder: Path, period: str) -> bool:
    # Written by the digest build (syndicate.digest.build) into this folder; one missing
    # here (another worker's folder built it) is left out rather than linked to a 404.
    return (folder / "digest" / f"{period}.html").is_file()


async def _source_infos(settings: Settings, store: Store, feeds_url: str) -> dict[str, SourceInfo]:
    states = {state.name: state for state in await store.source_states()}
    # A source read from a file (or from a URL with credentials) is credited with our own
    # feed of it, in a format we publish. Atom, then RSS: only those two credit sources,
    # and RSS wants an XML one ("the XMLization of the source").
    formats = settings.publish.formats
    own_format = next(f for f in ("atom", "rss", *formats) if f in formats)
    infos = {}
    for source in settings.sources:
        state = states.get(source.name)
        title = source.display_title(state.feed_title if state else None)
        if feed_url := public_url(source.url):
            # The source feed's own id when it gave one; else the URL it is read from,
            # which is what identifies a feed without one (RSS has none).
            feed_id = public_id(state.feed_id if state else None) or feed_url
        else:
            feed_url = feed_id = f"{feeds_url}/source/{source.name}.{own_format}"
        home_url = public_url(state.feed_link) if state else None
        infos[source.name] = SourceInfo(source.name, title, feed_url, home_url, feed_id)
    return infos


def vars_of_source(info: SourceInfo) -> list[str | None]:
    return [info.name, info.title, info.feed_url, info.home_url, info.id]
