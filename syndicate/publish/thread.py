"""feedgen extensions for what feedgen 1.0 will not write, or writes wrong.

Atom (`AtomExtension`, `AtomEntryExtension`):
- RFC 4685 threading, `<link rel="replies" type="text/html" href=... thr:count="N"/>`:
  feedgen's entry link() refuses rel="replies".
- The enclosure link: feedgen's atom_entry() rebinds its loop variable and so drops every
  entry link's rel, type and length; an enclosure would come out as a second alternate link.
  (The alternate link is safe with feedgen: a link without rel *is* alternate in Atom.)
- `<source>` with the source feed's id and updated, and saying which link is the feed
  (rel="self") and which the site: feedgen's has one link without rel, and no updated.
- RFC 5005 `<fh:archive/>`. Hub and archive links go through feedgen's own feed link().

RSS (`RssExtension`, `RssEntryExtension`):
- `<slash:comments>N</slash:comments>`, the reply count RSS readers know.
- atom:link hub/current/prev-archive/next-archive (feedgen writes only rel="self"), and
  `<fh:archive/>`.

Registered per FeedGenerator like feedgen's own extensions (feedgen/ext/*.py):
`fg.register_extension("thr", AtomExtension, AtomEntryExtension, atom=True, rss=False)`, then
`fg.thr.archive()`, `entry.thr.replies(...)`. feedgen builds Atom without namespaces under a
literal xmlns attribute, so the Atom elements written here are un-namespaced too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.util import xml_elem
from lxml.etree import _Element

ATOM_NS = "http://www.w3.org/2005/Atom"
THR_NS = "http://purl.org/syndication/thread/1.0"
SLASH_NS = "http://purl.org/rss/1.0/modules/slash/"
FH_NS = "http://purl.org/syndication/history/1.0"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


class AtomExtension(BaseExtension):
    """Atom, feed level: the thr prefix, and fh:archive for archive documents."""

    def __init__(self) -> None:
        self._archive = False

    def archive(self) -> None:
        """Mark the document an RFC 5005 archive: its contents will not change."""
        self._archive = True

    def extend_ns(self) -> dict[str, str]:
        # Called when the feed is written, so only archives declare fh.
        return {"thr": THR_NS, **({"fh": FH_NS} if self._archive else {})}

    def extend_atom(self, feed: _Element) -> _Element:
        if self._archive:
            xml_elem(f"{{{FH_NS}}}archive", feed)
        return feed


@dataclass(frozen=True, slots=True)
class _Source:
    title: str
    feed_url: str
    id: str
    updated: datetime
    home_url: str | None


class AtomEntryExtension(BaseEntryExtension):
    """Atom, per entry: enclosure and replies links, and the entry's <source>."""

    def __init__(self) -> None:
        self._enclosure: dict[str, str] | None = None
        self._replies: tuple[str, int | None] | None = None
        self._source: _Source | None = None
        self._language: str | None = None

    def language(self, tag: str) -> None:
        """The entry's xml:lang (RFC 4287 2: any element may carry it)."""
        self._language = tag or None

    def enclosure(self, href: str, type: str, length: int | None = None) -> None:
        self._enclosure = {"rel": "enclosure", "type": type, "href": href}
        if length:  # optional in Atom: left out rather than claiming 0 bytes
            self._enclosure["length"] = str(length)

    def replies(self, href: str, count: int | None = None) -> None:
        self._replies = (href, count)

    def source(
        self, title: str, feed_url: str, id: str, updated: datetime, home_url: str | None = None
    ) -> None:
        """The feed the entry came from; RFC 4287 4.2.11 recommends its id, title and
        updated (the W3C validator warns without them)."""
        self._source = _Source(title, feed_url, id, updated, home_url)

    def extend_atom(self, entry: _Element) -> _Element:
        if self._language:
            entry.set(XML_LANG, self._language)
        if self._enclosure:
            xml_elem("link", entry, **self._enclosure)
        if self._replies:
            href, count = self._replies
            link = xml_elem("link", entry, rel="replies", type="text/html", href=href)
            if count is not None:
                link.set(f"{{{THR_NS}}}count", str(count))
        if self._source:
            source = xml_elem("source", entry)
            xml_elem("id", source).text = self._source.id
            xml_elem("title", source).text = self._source.title
            # The form feedgen gives every other Atom date.
            xml_elem("updated", source).text = self._source.updated.isoformat()
            xml_elem("link", source, rel="self", href=self._source.feed_url)
            if self._source.home_url:
                xml_elem("link", source, rel="alternate", href=self._source.home_url)
        return entry


class RssExtension(BaseExtension):
    """RSS, channel level: atom:link elements beyond self, and fh:archive."""

    def __init__(self) -> None:
        self._archive = False
        self._links: list[tuple[str, str]] = []

    def archive(self) -> None:
        self._archive = True

    def link(self, rel: str, href: str) -> None:
        self._links.append((rel, href))

    def extend_ns(self) -> dict[str, str]:
        return {"slash": SLASH_NS, **({"fh": FH_NS} if self._archive else {})}

    def extend_rss(self, rss: _Element) -> _Element:
        channel = rss[0]
        for rel, href in self._links:
            xml_elem(f"{{{ATOM_NS}}}link", channel, rel=rel, href=href)
        if self._archive:
            xml_elem(f"{{{FH_NS}}}archive", channel)
        return rss


class RssEntryExtension(BaseEntryExtension):
    """RSS, per item: `<slash:comments>`."""

    def __init__(self) -> None:
        self._count: int | None = None

    def comments(self, count: int) -> None:
        self._count = count

    def extend_rss(self, item: _Element) -> _Element:
        if self._count is not None:
            xml_elem(f"{{{SLASH_NS}}}comments", item).text = str(self._count)
        return item
