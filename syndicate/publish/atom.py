"""FeedDocument -> Atom 1.0 (RFC 4287) bytes, with RFC 5005 history and RFC 4685 threading.

Deterministic: the same document gives the same bytes. `updated` is the newest post's
(or 1970-01-01 for a document without posts), never the build time.
"""

from __future__ import annotations

from datetime import datetime

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator

from syndicate.links import public_id
from syndicate.models import Post
from syndicate.publish.document import FeedDocument
from syndicate.publish.sanity import (
    clean,
    discussion,
    distinct_summary_html,
    feed_updated,
    http_url,
    item_id,
    labels,
    title_of,
    utc,
)
from syndicate.publish.stylesheet import with_stylesheet
from syndicate.publish.thread import AtomEntryExtension, AtomExtension

ATOM_TYPE = "application/atom+xml"


def render_atom(doc: FeedDocument) -> bytes:
    fg = FeedGenerator()
    fg.register_extension("thr", AtomExtension, AtomEntryExtension, atom=True, rss=False)

    # The self URL is the feed's id: stable, and unique to this document and format.
    fg.id(doc.url("atom"))
    fg.title(clean(doc.title).strip() or doc.url("atom"))
    if clean(doc.description).strip():
        fg.subtitle(clean(doc.description).strip())
    fg.updated(feed_updated(doc))
    # A feed-level author satisfies RFC 4287 for entries that name none.
    fg.author({"name": clean(doc.author).strip() or clean(doc.title).strip() or "syndicate"})
    fg.generator(clean(doc.generator))
    if doc.language:
        fg.language(clean(doc.language))
    if icon := http_url(doc.icon):
        fg.icon(icon)
    if logo := http_url(doc.logo):
        fg.logo(logo)

    fg.link(href=doc.home_url, rel="alternate", type="text/html")
    fg.link(href=doc.url("atom"), rel="self", type=ATOM_TYPE)
    for tag, path in doc.translations:  # the feed in each language the site offers
        if path != doc.path:
            href = f"{doc.feeds_url}/{path}.atom"
            fg.link(href=href, rel="alternate", type=ATOM_TYPE, hreflang=tag)
    if hub := http_url(doc.hub):
        fg.link(href=hub, rel="hub")
    links = doc.links
    for rel, base in (
        ("current", links.current),
        ("prev-archive", links.prev_archive),
        ("next-archive", links.next_archive),
    ):
        if base:
            fg.link(href=f"{base}.atom", rel=rel, type=ATOM_TYPE)
    if links.archive:
        fg.thr.archive()

    updated = _sources_updated(doc)
    for post in doc.posts:
        _entry(fg.add_entry(order="append"), post, doc, updated)
    # The stylesheet shows a person who opens the feed a readable page (stylesheet.py).
    data = fg.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    return with_stylesheet(data, doc.path)


def _entry(entry: FeedEntry, post: Post, doc: FeedDocument, updated: dict[str, datetime]) -> None:
    entry.id(item_id(post))
    entry.title(title_of(post))  # no type: Atom text, so "Fish & <Ships>" is escaped, not markup
    # Only href: feedgen drops an entry link's other attributes (see thread.py), and a
    # link without rel is the alternate one.
    link = http_url(post.url)
    if link:
        entry.link(href=link)
    if post.language:
        entry.thr.language(clean(post.language).strip())
    entry.published(utc(post.published))
    entry.updated(utc(post.updated))
    authors = labels(post.authors)
    if authors:
        entry.author([{"name": name} for name in authors])
    categories = labels(post.categories)
    if categories:
        entry.category([{"term": term} for term in categories])

    content = clean(post.content_html)
    if content.strip():
        # Escaped HTML, not type='CDATA': feedgen writes that value into the type attribute,
        # which Atom does not allow.
        entry.content(content, type="html")
    elif not link:
        # RFC 4287 4.1.1: an entry without content must have an alternate link.
        entry.content(clean(post.excerpt).strip() or title_of(post), type="text")
    summary = distinct_summary_html(post)
    if summary:
        entry.summary(summary, type="html")
    elif excerpt := clean(post.excerpt).strip():
        entry.summary(excerpt, type="text")

    if post.enclosure and (href := http_url(post.enclosure.url)):
        entry.thr.enclosure(
            href, clean(post.enclosure.type) or "application/octet-stream", post.enclosure.length
        )

    href, count = discussion(post)
    if href:
        entry.thr.replies(href, count)
    source = doc.sources.get(post.source)
    if source and (feed_url := http_url(source.feed_url)):
        entry.thr.source(
            clean(source.title).strip() or source.name,
            feed_url,
            public_id(clean(source.id)) or feed_url,
            updated[post.source],
            http_url(source.home_url),
        )


def _sources_updated(doc: FeedDocument) -> dict[str, datetime]:
    """Per source, the newest updated time of its posts in this document: what <source>
    says of the source feed's <updated>. A feed's updated is its newest entry's (our own
    rule too), and taking it from this document's posts alone keeps an archive's bytes
    unchanged when its sources publish again."""
    newest: dict[str, datetime] = {}
    for post in doc.posts:
        moment = utc(post.updated)
        if post.source not in newest or moment > newest[post.source]:
            newest[post.source] = moment
    return newest
