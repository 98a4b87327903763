"""What digest templates see. Plain data, built by build.py, rendered by render.py.

Templates get: `site`, `period`, `groups` (each with `posts`), `posts` (all, in order),
`intro_html` (sanitised, may be empty), `more` (posts over max_posts, with `archive_url`),
`urls`, `subscriber`, `language` (the reader's, which the chrome is translated into) and
`other_posts` (posts in other languages, listed by title when `[digest] other_languages` is
"link"). Personal values (`subscriber.*`, `urls.unsubscribe`,
`urls.preferences`) are filled in per subscriber after the shared body is rendered once, so
templates must only print them, never test them: use `subscriber.greeting` for a greeting
that depends on whether a name is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from syndicate.i18n import Translator


@dataclass(frozen=True, slots=True)
class DigestSite:
    title: str
    url: str
    description: str
    language: str
    timezone: str


@dataclass(frozen=True, slots=True)
class DigestPeriod:
    key: str  # "2015-12" or "2015-W49"
    label: str  # "December 2015" or "Week 49, 2015"
    start: datetime  # aware, site time zone, inclusive
    end: datetime  # aware, site time zone, exclusive


@dataclass(frozen=True, slots=True)
class DigestPost:
    title: str  # plain text (escape it)
    url: str  # "" when the post has no public link
    excerpt: str  # plain text
    image: str | None
    author: str  # authors joined with ", " ("" when unknown)
    category: str  # the first of its site categories ("" when none): syndicate/categories.py
    source: str  # the source's title
    date: datetime  # published, aware (the `date` filter shows it in the site time zone)
    discussion_url: str | None
    reply_count: int | None
    categories: tuple[str, ...] = ()  # its own, as the feed gave them
    site_categories: tuple[str, ...] = ()  # the site's categories it is in
    image_alt: str = ""  # the feed's alt text for the image ("" when it gave none)
    image_width: int | None = None  # its natural size in pixels, when the feed says
    image_height: int | None = None
    language: str | None = None  # a language tag, when known (lang="" where it differs)


@dataclass(frozen=True, slots=True)
class DigestGroup:
    title: str  # a category, a source title, or "" when not grouped
    posts: tuple[DigestPost, ...]


@dataclass(frozen=True, slots=True)
class DigestUrls:
    view_in_browser: str  # the issue's web copy, feeds/digest/<period>.html
    archive: str  # the period's archive page (or the archive index for weeks)
    feeds: str  # the site's main feed (RSS)
    unsubscribe: str = ""  # personal: filled per subscriber
    preferences: str = ""  # personal: filled per subscriber
    subscribe: str = ""  # the subscribe page: filled when rendered, from site.url
    issues: str = ""  # the list of past issues (feeds/digest/): filled when rendered


@dataclass(frozen=True, slots=True)
class DigestSubscriber:
    name: str
    email: str
    greeting: str  # "Hello Ann," or "Hello," when no name

    @classmethod
    def of(cls, name: str, email: str, words: Translator | None = None) -> DigestSubscriber:
        """The subscriber with a greeting in the language of `words` (default English)."""
        if words is None:
            return cls(name, email, f"Hello {name}," if name.strip() else "Hello,")
        if name.strip():
            return cls(name, email, words.gettext("Hello %(name)s,") % {"name": name})
        return cls(name, email, words.gettext("Hello,"))


@dataclass(frozen=True, slots=True)
class DigestContext:
    site: DigestSite
    period: DigestPeriod
    groups: tuple[DigestGroup, ...]
    posts: tuple[DigestPost, ...]
    urls: DigestUrls
    subscriber: DigestSubscriber
    intro_html: str = ""  # sanitised HTML from digest/intro/<period>.md
    more: int = 0  # posts of the period left out by max_posts (see urls.archive)
    preheader: str = ""  # hidden preview text
    extra: dict[str, object] = field(default_factory=dict)
    language: str = ""  # the reader's language tag; "" for the site's (site.language)
    other_posts: tuple[DigestPost, ...] = ()  # in other languages, to list by title
