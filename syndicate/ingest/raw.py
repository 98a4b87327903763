"""What a parser found in a feed, before normalising: loose, possibly relative, unsanitised.

Both parsers (feedparser for RSS/Atom, ours for JSON Feed) produce these, so normalising
has one input shape whatever the format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

TextType = Literal["text", "html"]


@dataclass(frozen=True, slots=True)
class RawEnclosure:
    url: str
    type: str | None = None
    length: int | None = None


@dataclass(slots=True)
class RawEntry:
    id: str | None = None
    link: str | None = None  # the entry's alternate (HTML) link, maybe relative
    title: str | None = None
    title_type: TextType = "text"
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published: datetime | None = None  # aware, any zone
    updated: datetime | None = None
    summary: str | None = None
    summary_type: TextType = "html"
    content: str | None = None
    content_type: TextType = "html"
    base_url: str | None = None  # what relative URLs in this entry resolve against
    image: str | None = None  # media:thumbnail, JSON Feed image, an image enclosure
    image_width: int | None = None  # in pixels, when the feed says (media:thumbnail width)
    image_height: int | None = None
    enclosures: list[RawEnclosure] = field(default_factory=list)
    comments_url: str | None = None  # RSS <comments>, Atom link rel="replies" type text/html
    language: str | None = None


@dataclass(slots=True)
class RawFeed:
    format: str  # "rss20", "atom10", "json11", ... as the parser names it
    id: str | None = None  # the feed's own id: Atom <id>, JSON Feed feed_url (RSS has none)
    title: str | None = None
    link: str | None = None  # the site's home page
    language: str | None = None
    entries: list[RawEntry] = field(default_factory=list)
    warning: str | None = None  # malformed but readable (feedparser's bozo)
