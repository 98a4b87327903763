"""Bytes -> RawFeed. RSS and Atom through feedparser; JSON Feed through our own parser.

feedparser is given the bytes and the response's Content-Type (it decides the encoding),
never a string (a string would be taken as a path or URL). Its own sanitiser and
relative-URL resolver are off: they take most of its time, and nh3 does both jobs, more
strictly, when normalising. For the same reason it is not told the feed's URL
(Content-Location): it would then join every element's base to it, about a third of its
remaining time; normalising resolves relative URLs against the entry's link, the feed's
link or the URL fetched, in that order, and xml:base values against the URL fetched.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from time import struct_time
from typing import Any

import feedparser

from syndicate.ingest.jsonfeed import looks_like_json_feed, parse_json_feed
from syndicate.ingest.raw import RawEnclosure, RawEntry, RawFeed, TextType
from syndicate.markup.sanitise import pixels

_HTML_PAGE = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html)[\s>]", re.I | re.S)
_JSON_TYPES = ("application/feed+json", "application/json")


class ParseError(ValueError):
    """The bytes are not a feed we can read (an HTML page, garbage, broken JSON)."""


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> RawFeed:
    """Parse a feed document of any supported format; raise ParseError if it is none."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in _JSON_TYPES or looks_like_json_feed(body):
        try:
            return parse_json_feed(body, url)
        except ValueError as error:
            raise ParseError(f"invalid JSON Feed: {error}") from None
    parsed = feedparser.parse(
        io.BytesIO(body),
        response_headers={"content-type": content_type or "application/xml"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if not parsed.get("version") and not parsed.entries:
        if _HTML_PAGE.match(body[:2048]):
            raise ParseError("not a feed: the URL returned an HTML page")
        reason = parsed.get("bozo_exception")
        raise ParseError(f"not a feed{f': {_one_line(reason)}' if reason else ''}")
    feed = parsed.feed
    warning = None
    if parsed.get("bozo"):
        warning = f"malformed feed, read leniently: {_one_line(parsed.get('bozo_exception'))}"
    return RawFeed(
        format=parsed.get("version") or "unknown",
        id=feed.get("id") or None,
        title=feed.get("title"),
        link=feed.get("link"),
        language=feed.get("language"),
        entries=[_entry(entry, feed.get("language")) for entry in parsed.entries],
        warning=warning,
    )


def _entry(entry: Any, feed_language: str | None) -> RawEntry:
    content = _best_content(entry.get("content") or [])
    summary = entry.get("summary_detail") or {}
    title = entry.get("title_detail") or {}
    base = (content or summary or title or {}).get("base") or None  # xml:base, if any
    image, image_width, image_height = _image(entry)
    return RawEntry(
        id=entry.get("id") or None,
        link=entry.get("link") or None,
        title=entry.get("title"),
        title_type=_text_type(title.get("type")),
        authors=[a["name"] for a in entry.get("authors", []) if a.get("name")]
        or ([entry["author"]] if entry.get("author") else []),
        categories=[
            t.get("label") or t.get("term")
            for t in entry.get("tags", [])
            if t.get("label") or t.get("term")
        ],
        published=_datetime(entry.get("published_parsed")),
        # dict.get: feedparser's own get() would hand back published for a missing updated.
        updated=_datetime(dict.get(entry, "updated_parsed")),
        summary=summary.get("value") if summary else entry.get("summary"),
        summary_type=_text_type(summary.get("type", "text/html")),
        content=content.get("value") if content else None,
        content_type=_text_type(content.get("type", "text/html")) if content else "html",
        base_url=base,
        image=image,
        image_width=image_width,
        image_height=image_height,
        enclosures=[
            RawEnclosure(url=e["href"], type=e.get("type") or None, length=_int(e.get("length")))
            for e in entry.get("enclosures", [])
            if e.get("href")
        ],
        comments_url=_comments(entry),
        language=(content or {}).get("language") or feed_language,
    )


def _best_content(contents: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Prefer the HTML body when an entry carries several (Atom allows text and html)."""
    for item in contents:
        if "html" in (item.get("type") or ""):
            return item
    return contents[0] if contents else None


def _comments(entry: Any) -> str | None:
    # RFC 4685: a replies link is a discussion page only when it is HTML, not a comment feed.
    for link in entry.get("links", []):
        if link.get("rel") == "replies" and link.get("type", "text/html") == "text/html":
            return link.get("href")
    return entry.get("comments") or None


def _image(entry: Any) -> tuple[str | None, int | None, int | None]:
    """The entry's own image, with its width and height in pixels when the feed gives them
    (Media RSS does, as attributes)."""
    for thumbnail in entry.get("media_thumbnail", []):
        if thumbnail.get("url"):
            return thumbnail["url"], *_size(thumbnail)
    for media in entry.get("media_content", []):
        if media.get("url") and (
            media.get("medium") == "image" or (media.get("type") or "").startswith("image/")
        ):
            return media["url"], *_size(media)
    for enclosure in entry.get("enclosures", []):
        if (enclosure.get("type") or "").startswith("image/") and enclosure.get("href"):
            return enclosure["href"], None, None
    return None, None, None


def _size(media: Any) -> tuple[int | None, int | None]:
    width, height = pixels(media.get("width")), pixels(media.get("height"))
    return (width, height) if width and height else (None, None)


def _text_type(mime: str | None) -> TextType:
    return "html" if mime and ("html" in mime or "xhtml" in mime) else "text"


def _datetime(parsed: struct_time | None) -> datetime | None:
    # feedparser has already converted the date to UTC.
    if not parsed:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _int(value: object) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _one_line(error: object) -> str:
    return " ".join(str(error).split()) or type(error).__name__
