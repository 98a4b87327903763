"""FeedDocument -> JSON Feed 1.1 bytes (https://jsonfeed.org/version/1.1).

feedgen has no JSON Feed, and the format is a plain JSON object, so it is written here.
Keys come in a fixed order (the spec's), null and empty fields are left out, and the output
is UTF-8 with a trailing newline: the same document always gives the same bytes.

Our own additions live in `_syndicate` objects, as the spec asks of extensions:
- top level: RFC 5005-style archive links {"archive", "current", "prev_archive",
  "next_archive"} ("next_url" is JSON Feed's pagination, a different thing);
- per item: {"discussion_url", "reply_count", "source"}.
"""

from __future__ import annotations

import json
from typing import Any

from syndicate.models import Post
from syndicate.publish.document import FeedDocument
from syndicate.publish.sanity import (
    clean,
    discussion,
    http_url,
    item_id,
    labels,
    rfc3339,
    title_of,
)

VERSION = "https://jsonfeed.org/version/1.1"


def render_json(doc: FeedDocument) -> bytes:
    title = clean(doc.title).strip() or doc.url("json")
    feed: dict[str, Any] = {
        "version": VERSION,
        "title": title,
        "home_page_url": doc.home_url,
        "feed_url": doc.url("json"),
        "description": clean(doc.description).strip() or None,
        # JSON Feed's icon is the large square image; the logo is the nearest we have.
        "icon": http_url(doc.logo) or http_url(doc.icon),
        "favicon": http_url(doc.icon),
        "authors": [{"name": clean(doc.author).strip() or title}],
        "language": clean(doc.language).strip() or None,
        "hubs": [{"type": "WebSub", "url": hub}] if (hub := http_url(doc.hub)) else None,
        "_syndicate": _archive_links(doc) or None,
    }
    feed = _compact(feed)
    # Required even when empty, so set after compacting.
    feed["items"] = [_compact(_item(post, doc)) for post in doc.posts]
    text = json.dumps(feed, ensure_ascii=False, indent=2)
    return (text + "\n").encode("utf-8")


def _archive_links(doc: FeedDocument) -> dict[str, Any]:
    links = doc.links
    return _compact(
        {
            "archive": True if links.archive else None,
            "current": f"{links.current}.json" if links.current else None,
            "prev_archive": f"{links.prev_archive}.json" if links.prev_archive else None,
            "next_archive": f"{links.next_archive}.json" if links.next_archive else None,
        }
    )


def _item(post: Post, doc: FeedDocument) -> dict[str, Any]:
    content = clean(post.content_html)
    summary = clean(post.excerpt).strip()
    href, count = discussion(post)
    source = post.source if post.source in doc.sources else None
    enclosure = post.enclosure
    attachment = http_url(enclosure.url) if enclosure else None
    return {
        "id": item_id(post),
        "url": http_url(post.url),
        "title": title_of(post),
        # An item needs content_html or content_text; a post without content still has its
        # excerpt, or at least its title.
        "content_html": content if content.strip() else None,
        "content_text": None if content.strip() else summary or title_of(post),
        "summary": summary or None,
        "image": http_url(post.image_url),
        "date_published": rfc3339(post.published),
        "date_modified": rfc3339(post.updated),
        "authors": [{"name": name} for name in labels(post.authors)],
        "tags": labels(post.categories),
        "language": clean(post.language).strip() or None,
        "attachments": [
            {
                "url": attachment,
                "mime_type": clean(enclosure.type) or "application/octet-stream",
                "size_in_bytes": enclosure.length or None,
            }
        ]
        if enclosure and attachment
        else None,
        "_syndicate": {"discussion_url": href, "reply_count": count, "source": source},
    }


def _compact(value: Any) -> Any:
    """Drop None, empty lists and empty objects, recursively: JSON Feed says to omit
    fields without a value rather than write null."""
    if isinstance(value, dict):
        pairs = ((k, _compact(v)) for k, v in value.items())
        return {k: v for k, v in pairs if v is not None and v != [] and v != {}}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value
