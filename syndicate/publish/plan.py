"""Which documents exist, which posts each holds, and a fingerprint of everything its bytes
depend on. Pure: no I/O, so it is cheap to run on every publish and easy to test.

Every public URL of a feed or page lives under `<site url>/feeds/` (README: Publishing).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from syndicate.categories import SiteCategories
from syndicate.languages import language_name, primary
from syndicate.models import PostKey
from syndicate.months import month_key, month_label
from syndicate.publish.document import NO_LINKS, ArchiveLinks
from syndicate.slugs import slugify


@dataclass(frozen=True, slots=True)
class FeedPlan:
    """One feed document: rendered once per format in `formats`."""

    path: str  # without extension: "index", "category/rivers", "archive/2015-12"
    title: str
    description: str
    home_url: str
    post_ids: tuple[int, ...]
    formats: tuple[str, ...]
    links: ArchiveLinks = NO_LINKS
    fingerprint: str = ""
    language: str | None = None  # its posts' language (a lang/ feed); None: the site's
    # The same feed in each language the site offers, as (tag, path) pairs: hreflang links.
    translations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class MonthPlan:
    key: str  # "2015-12"
    label: str  # "December 2015"
    post_ids: tuple[int, ...]


@dataclass(slots=True)
class Plan:
    feeds: list[FeedPlan] = field(default_factory=list)
    months: list[MonthPlan] = field(default_factory=list)  # newest first


def make_plan(
    keys: list[PostKey],
    *,
    site_title: str,
    site_description: str,
    site_url: str,
    feeds_url: str,
    timezone: ZoneInfo,
    items: int,
    formats: tuple[str, ...],
    sources: dict[str, tuple[str, str | None]],  # name -> (title, home url)
    now: datetime,
    context: str,  # fingerprint of settings and templates the bytes also depend on
    site_categories: SiteCategories | None = None,
    languages: Sequence[str] = (),
) -> Plan:
    """`keys` newest first. Feeds hold the newest `items` posts; archives a whole month.
    A category feed per site category with posts (syndicate/categories.py; None: one per
    category a post has). When the site offers several `languages` (the default first), a
    feed per language ("lang/th") of the posts in it, a post of no known language counting
    as the default's; the site's feed links to them (hreflang)."""
    by_key = {key.id: key for key in keys}
    months: dict[str, list[int]] = {}
    categories: dict[str, tuple[str, list[int]]] = {}
    by_source: dict[str, list[int]] = {name: [] for name in sources}
    # One language: its feed would be the site's feed again.
    by_language: dict[str, list[int]] = {tag: [] for tag in languages} if len(languages) > 1 else {}
    language_of: dict[str | None, str] = {}  # a post's language -> the offered one it is in
    # Posts share a few sources and categories: each combination is worked out once, not
    # once per post (100,000 posts, a few hundred combinations).
    placed: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, str], ...]] = {}
    for key in keys:
        months.setdefault(month_key(key.published, timezone), []).append(key.id)
        combination = (key.source, key.categories)
        slugged = placed.get(combination)
        if slugged is None:
            in_categories = (
                site_categories.of_post(key.source, key.categories)
                if site_categories is not None
                else key.categories
            )
            slugged = placed[combination] = tuple((slugify(c), c) for c in in_categories)
        for slug, category in slugged:
            categories.setdefault(slug, (category, []))[1].append(key.id)
        if key.source in by_source:
            by_source[key.source].append(key.id)
        if len(languages) > 1:
            tag = language_of.get(key.language)
            if tag is None:
                tag = language_of[key.language] = _offered(key.language, languages)
            by_language[tag].append(key.id)

    month_keys = sorted(months, reverse=True)
    current_month = month_key(now, timezone)
    full_months = [month for month in month_keys if month < current_month]
    plan = Plan(months=[MonthPlan(m, month_label(m), tuple(months[m])) for m in month_keys])

    def feed(
        path: str,
        title: str,
        description: str,
        home: str,
        ids: list[int],
        fmts: tuple[str, ...],
        links: ArchiveLinks = NO_LINKS,
        language: str | None = None,
        translations: tuple[tuple[str, str], ...] = (),
    ) -> None:
        chosen = tuple(ids if path.startswith("archive/") else ids[:items])
        fingerprint = _fingerprint(
            path, title, description, home, links, chosen, by_key, context, language, translations
        )
        plan.feeds.append(
            FeedPlan(
                path,
                title,
                description,
                home,
                chosen,
                fmts,
                links,
                fingerprint,
                language,
                translations,
            )
        )

    latest_full = f"{feeds_url}/archive/{full_months[0]}" if full_months else None
    translations = tuple((tag, f"lang/{tag}") for tag in by_language)
    feed(
        "index",
        site_title,
        site_description,
        site_url,
        [k.id for k in keys],
        formats,
        ArchiveLinks(prev_archive=latest_full),
        translations=translations,
    )
    for tag, ids in by_language.items():
        name = language_name(tag)
        feed(
            f"lang/{tag}",
            f"{site_title} ({name})",
            f"Posts in {name}.",
            site_url,
            ids,
            formats,
            language=tag,
            translations=translations,
        )
    for slug, (name, ids) in sorted(categories.items()):
        feed(
            f"category/{slug}", f"{site_title}: {name}", f"Posts in {name}.", site_url, ids, formats
        )
    for name, ids in by_source.items():
        title, home = sources[name]
        feed(
            f"source/{name}",
            f"{site_title}: {title}",
            f"Posts from {title}.",
            home or site_url,
            ids,
            formats,
        )
    for index, month in enumerate(month_keys):
        older = month_keys[index + 1] if index + 1 < len(month_keys) else None
        newer = month_keys[index - 1] if index > 0 else None
        links = ArchiveLinks(
            archive=True,
            current=f"{feeds_url}/index",
            prev_archive=f"{feeds_url}/archive/{older}" if older else None,
            next_archive=f"{feeds_url}/archive/{newer}" if newer else None,
        )
        label = month_label(month)
        feed(
            f"archive/{month}",
            f"{site_title}: Archive for {label}",
            f"Every post of {label}.",
            f"{feeds_url}/archive/{month}.html",
            months[month],
            formats,
            links,
        )
    return plan


def _fingerprint(
    path: str,
    title: str,
    description: str,
    home: str,
    links: ArchiveLinks,
    ids: tuple[int, ...],
    by_key: dict[int, PostKey],
    context: str,
    language: str | None = None,
    translations: tuple[tuple[str, str], ...] = (),
) -> str:
    """Everything the document's bytes depend on; equal fingerprints, equal bytes."""
    posts = [
        (
            i,
            by_key[i].content_hash,
            by_key[i].updated.isoformat(),
            by_key[i].source,
            by_key[i].discussion_url,
            by_key[i].reply_count,
        )
        for i in ids
    ]
    data = [
        context,
        path,
        title,
        description,
        home,
        links.archive,
        links.current,
        links.prev_archive,
        links.next_archive,
        posts,
        language,
        list(translations),
    ]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()


def _offered(language: str | None, offered: Sequence[str]) -> str:
    """The offered language a post in `language` belongs to: the same tag, else the same
    language ("th-TH" in "th"), else the site's default."""
    if language:
        wanted = language.lower()
        for tag in offered:
            if tag.lower() == wanted:
                return tag
        for tag in offered:
            if primary(tag) == primary(language):
                return tag
    return offered[0]


def fingerprint_of(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
