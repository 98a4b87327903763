"""JSON Feed 1.0 and 1.1 -> RawFeed. feedparser cannot read JSON Feed, so this is ours.

Strict about the document (JSON, an object, a jsonfeed.org version, an ``items`` list) and
lenient about everything inside it: a wrong type where a string, list or object belongs is
ignored, a bad date is None, and an item we cannot identify is skipped with a warning.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from syndicate.ingest.raw import RawEnclosure, RawEntry, RawFeed

# The spec says https, but early feeds wrote http; the URL is an identifier, not fetched.
_VERSION_PREFIXES = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")
_FORMATS = {"1": "json10", "1.0": "json10", "1.1": "json11"}
_BOM = b"\xef\xbb\xbf"


def looks_like_json_feed(body: bytes) -> bool:
    """A cheap sniff: a JSON object that mentions jsonfeed.org somewhere.

    The whole body is searched (a substring search runs at memory speed), because nothing
    makes "version" come first, and "jsonfeed.org" rather than ".../version" because PHP's
    json_encode writes "https:\\/\\/jsonfeed.org\\/version\\/1.1".
    """
    start = body[3:64] if body.startswith(_BOM) else body[:64]
    return start.lstrip().startswith(b"{") and b"jsonfeed.org" in body


def parse_json_feed(body: bytes, url: str) -> RawFeed:
    """Parse a JSON Feed document; raise ValueError if it is not one.

    `url` is where it was fetched from: relative URLs in the feed resolve against it.
    """
    # JSON Feed is UTF-8. A stray bad byte should cost one character, not the whole feed.
    text = body.decode("utf-8-sig", errors="replace")
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ValueError(f"not JSON: {error}") from None
    except RecursionError:
        raise ValueError("not JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise ValueError(f"not a JSON Feed: the document is a JSON {type(document).__name__}")
    format_ = _format(document.get("version"))
    items = document.get("items")
    if not isinstance(items, list):
        raise ValueError('not a JSON Feed: "items" is missing or not a list')

    home = _string(document.get("home_page_url"))
    feed_base = _join(url, home) or url
    language = _string(document.get("language"))
    authors = _authors(document)
    entries = [
        entry
        for item in items
        if isinstance(item, dict)
        and (entry := _entry(item, feed_base, authors, language)) is not None
    ]
    skipped = len(items) - len(entries)
    return RawFeed(
        format=format_,
        # JSON Feed has no id; its feed_url "serves as the unique identifier for the feed".
        id=_string(document.get("feed_url")),
        title=_string(document.get("title")),
        link=home,
        language=language,
        entries=entries,
        warning=f"skipped {skipped} of {len(items)} items: not an object, or no id or url"
        if skipped
        else None,
    )


def _format(version: object) -> str:
    if not isinstance(version, str):
        raise ValueError('not a JSON Feed: no "version" string')
    for prefix in _VERSION_PREFIXES:
        if version.startswith(prefix):
            number = version.removeprefix(prefix).strip("/")
            if number in _FORMATS:
                return _FORMATS[number]
            # Minor versions only add optional fields: read a future 1.2 as the newest we know.
            if number.startswith("1.") and number[2:].isdigit():
                return _FORMATS["1.1"]
            raise ValueError(f"unsupported JSON Feed version {version!r}")
    raise ValueError(f"not a JSON Feed: unknown version {version!r}")


def _entry(
    item: dict[str, Any], feed_base: str, feed_authors: list[str], language: str | None
) -> RawEntry | None:
    link = _string(item.get("url")) or _string(item.get("external_url"))
    # JSON Feed requires an id; a feed that forgets it but gives a permalink is common
    # enough to accept, with the permalink standing in. Neither: nothing identifies it.
    item_id = _id(item.get("id")) or _string(item.get("url"))
    if item_id is None:
        return None
    content_html = _string(item.get("content_html"))
    content_text = _string(item.get("content_text"))
    extension = item.get("_syndicate")
    return RawEntry(
        id=item_id,
        link=link,
        title=_string(item.get("title")),
        title_type="text",
        authors=_authors(item) or feed_authors,
        categories=[tag for value in _list(item.get("tags")) if (tag := _string(value))],
        published=_datetime(item.get("date_published")),
        updated=_datetime(item.get("date_modified")),
        summary=_string(item.get("summary")),
        summary_type="text",  # the spec: a plain-text summary
        content=content_html or content_text,
        content_type="html" if content_html else "text",
        base_url=_join(feed_base, _string(item.get("url"))) or feed_base,
        image=_string(item.get("image")) or _string(item.get("banner_image")),
        enclosures=[
            RawEnclosure(url=attachment_url, type=_string(a.get("mime_type")), length=_size(a))
            for a in _list(item.get("attachments"))
            if isinstance(a, dict) and (attachment_url := _string(a.get("url")))
        ],
        comments_url=(
            _string(extension.get("discussion_url")) if isinstance(extension, dict) else None
        ),
        language=_string(item.get("language")) or language,
    )


def _authors(holder: dict[str, Any]) -> list[str]:
    """1.1 `authors` (a list of objects), else 1.0 `author` (one object); names only.

    Either key may turn up in either version (1.1 feeds often keep `author` for old readers).
    """
    return _names(_list(holder.get("authors"))) or _names([holder.get("author")])


def _names(authors: list[Any]) -> list[str]:
    return [name for a in authors if isinstance(a, dict) and (name := _string(a.get("name")))]


def _datetime(value: object) -> datetime | None:
    """RFC 3339 -> aware datetime. No offset is read as UTC; anything unreadable is None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _id(value: object) -> str | None:
    # Numbers are common ids (a database key); booleans are a bool subclass but no id.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value) if math.isfinite(value) else None
    return _string(value)


def _size(attachment: dict[str, Any]) -> int | None:
    size = attachment.get("size_in_bytes")
    if isinstance(size, float) and size.is_integer():
        size = int(size)
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None


def _string(value: object) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _join(base: str, url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urljoin(base, url)
    except ValueError:  # an invalid IPv6 host and the like: fall back to the next base
        return None
