"""FeedDocument -> RSS 2.0 bytes, with content:encoded, dc:creator, slash:comments and the
atom:link elements (self, hub, RFC 5005 archives) RSS readers look for.

Deterministic: the same document gives the same bytes. lastBuildDate is the newest post's
updated time (or 1970-01-01 for a document without posts), never the build time.
"""

from __future__ import annotations

import html

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator

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
from syndicate.publish.thread import RssEntryExtension, RssExtension

RSS_TYPE = "application/rss+xml"


def render_rss(doc: FeedDocument) -> bytes:
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.register_extension("extra", RssExtension, RssEntryExtension, atom=False, rss=True)

    title = clean(doc.title).strip() or doc.url("rss")
    fg.title(title)
    # RSS requires a description; the title is better than an empty element.
    fg.description(clean(doc.description).strip() or title)
    fg.lastBuildDate(feed_updated(doc))
    fg.generator(clean(doc.generator))
    if doc.language:
        fg.language(clean(doc.language))
    if doc.ttl_minutes > 0:
        fg.ttl(doc.ttl_minutes)
    if image := http_url(doc.logo) or http_url(doc.icon):
        fg.image(url=image, title=title, link=doc.home_url)

    fg.link(href=doc.url("rss"), rel="self", type=RSS_TYPE)
    # feedgen makes the channel <link> the last link added: the home page goes last.
    fg.link(href=doc.home_url, rel="alternate")
    if hub := http_url(doc.hub):
        fg.extra.link("hub", hub)
    links = doc.links
    for rel, base in (
        ("current", links.current),
        ("prev-archive", links.prev_archive),
        ("next-archive", links.next_archive),
    ):
        if base:
            fg.extra.link(rel, f"{base}.rss")
    if links.archive:
        fg.extra.archive()

    for post in doc.posts:
        _item(fg.add_entry(order="append"), post, doc)
    # The stylesheet shows a person who opens the feed a readable page (stylesheet.py).
    data = fg.rss_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    return with_stylesheet(data, doc.path)


def _item(item: FeedEntry, post: Post, doc: FeedDocument) -> None:
    item.title(title_of(post))
    link = http_url(post.url)
    if link:
        item.link(href=link)
    guid = item_id(post)
    item.guid(guid, permalink=guid == link)
    item.pubDate(utc(post.published))
    # RSS <author> must be an email address; the names we have go into dc:creator.
    authors = labels(post.authors)
    if authors:
        item.dc.dc_creator(authors)
    categories = labels(post.categories)
    if categories:
        item.category([{"term": term} for term in categories])

    # <description> is HTML to readers, so a plain-text excerpt is escaped first.
    description = distinct_summary_html(post) or html.escape(clean(post.excerpt).strip())
    if description:
        item.description(description)
    content = clean(post.content_html)
    if content.strip():
        item.content(content)  # content:encoded (or <description> when there is none)

    if post.enclosure and (url := http_url(post.enclosure.url)):
        # RSS requires length and type; 0 is the customary "unknown".
        item.enclosure(
            url,
            str(post.enclosure.length or 0),
            clean(post.enclosure.type) or "application/octet-stream",
        )

    href, count = discussion(post)
    if href:
        item.comments(href)
    if count is not None:
        item.extra.comments(count)
    source = doc.sources.get(post.source)
    if source and (feed_url := http_url(source.feed_url)):
        item.source(url=feed_url, title=clean(source.title).strip() or source.name)
