"""What a published document says, independent of its format.

The planner (plan.py) decides which documents exist and which posts each holds; the
renderers turn one FeedDocument into RSS, Atom or JSON Feed bytes, or an ArchivePage into
HTML. Everything here is plain data with absolute URLs already worked out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from syndicate.models import Post


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """How a source is credited on its posts (Atom <source>, RSS <source url=...>)."""

    name: str
    title: str
    feed_url: str  # where syndicate reads it (http(s) URL), or our own feed of it
    home_url: str | None = None
    id: str | None = None  # the feed's atom:id: its own, else feed_url


@dataclass(frozen=True, slots=True)
class ArchiveLinks:
    """RFC 5005 links. In an archive document `archive` is True (fh:archive)."""

    archive: bool = False
    current: str | None = None  # base URL (without extension) of the subscription feed
    prev_archive: str | None = None  # base URL (without extension) of the older archive
    next_archive: str | None = None  # base URL (without extension) of the newer archive


NO_LINKS = ArchiveLinks()


@dataclass(frozen=True, slots=True)
class FeedDocument:
    """One feed, rendered once per format as `<feeds_url>/<path>.<ext>`.

    `path` has no extension ("index", "category/rivers", "source/partner", "archive/2015-12").
    Link bases in `links` likewise have no extension: a renderer appends its own, so the Atom
    file links to Atom archives and the JSON file to JSON ones.
    """

    path: str
    feeds_url: str  # e.g. "https://news.example.org/feeds"
    title: str
    description: str
    home_url: str  # the HTML page this feed is the feed of
    language: str
    author: str
    generator: str  # "syndicate 0.1.0"
    posts: tuple[Post, ...]  # newest first
    sources: dict[str, SourceInfo] = field(default_factory=dict)
    ttl_minutes: int = 60
    icon: str | None = None
    logo: str | None = None
    hub: str | None = None  # WebSub hub URL
    links: ArchiveLinks = NO_LINKS
    # (language tag, path) of the same feed in each language the site offers (hreflang).
    translations: tuple[tuple[str, str], ...] = ()

    def url(self, ext: str) -> str:
        return f"{self.feeds_url}/{self.path}.{ext}"

    @property
    def updated(self) -> datetime | None:
        """The newest post's updated time: never the build time, so bytes stay stable."""
        return max((post.updated for post in self.posts), default=None)


@dataclass(frozen=True, slots=True)
class MonthLink:
    key: str  # "2015-12"
    label: str  # "December 2015"
    count: int
    url: str  # the month's HTML page


@dataclass(frozen=True, slots=True)
class LanguageLink:
    """One language of a page, for the switch in base.html.j2: `tag` ("th"), `name` (the
    language named in itself, "ไทย"), `url` (relative, "?lang=th" or "2015-12.th.html?lang=th"),
    `current` (the page's own)."""

    tag: str
    name: str
    url: str
    current: bool


@dataclass(frozen=True, slots=True)
class Alternate:
    """`<link rel="alternate" hreflang="th" href="...">`: the page in another language;
    hreflang "x-default" is the one for readers of none of them."""

    hreflang: str
    url: str


@dataclass(frozen=True, slots=True)
class ArchivePage:
    """The HTML page of one month ("Archive for December 2015"), or the index of months."""

    path: str  # "archive/2015-12.html" or "archive/index.html"
    site_title: str
    site_url: str  # relative to the page ("../.."), like feeds_url: see build._page_files
    feeds_url: str
    language: str
    title: str  # "Archive for December 2015" / "Archive"
    posts: tuple[Post, ...] = ()  # newest first
    months: tuple[MonthLink, ...] = ()  # every month with posts, newest first
    previous: MonthLink | None = None  # older month
    next: MonthLink | None = None  # newer month
    atom_url: str | None = None  # this month's RFC 5005 archive document
    sources: dict[str, SourceInfo] = field(default_factory=dict)
    timezone: str = "UTC"
    # The page in each language the site offers (none with one language): the switch, and
    # the hreflang links.
    languages: tuple[LanguageLink, ...] = ()
    alternates: tuple[Alternate, ...] = ()


# The whole site's feeds, linked from every page (footer and <head> autodiscovery).
FEED_TYPES = {
    "rss": ("RSS", "application/rss+xml"),
    "atom": ("Atom", "application/atom+xml"),
    "json": ("JSON Feed", "application/feed+json"),
}


@dataclass(frozen=True, slots=True)
class FeedLink:
    """One of the site's feeds as templates see it: `feed.label`, `feed.type`, `feed.url`."""

    format: str  # "rss"
    label: str  # "RSS"
    type: str  # "application/rss+xml"
    url: str


def feed_type(ext: str, url: str) -> FeedLink:
    """The feed in format `ext` ("rss") at `url`, labelled and typed for a page."""
    label, media_type = FEED_TYPES[ext]
    return FeedLink(ext, label, media_type, url)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One feed in the list of feeds: `label` ("Rivers"), `description`, `links` (a
    FeedLink per format, relative to the list's page)."""

    label: str
    description: str
    links: tuple[FeedLink, ...]
    language: str | None = None  # a language feed's: its label is in that language


@dataclass(frozen=True, slots=True)
class FeedGroup:
    title: str  # "By category"
    feeds: tuple[FeedEntry, ...]


@dataclass(frozen=True, slots=True)
class IssueLink:
    """One past digest issue: `subject`, `period` ("2015-12"), `url` (its web copy,
    relative to the list's page), `created_at`."""

    period: str
    subject: str
    url: str
    created_at: datetime
