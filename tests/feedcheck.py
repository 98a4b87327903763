"""Spec checks for published feeds, usable from any test: check_rss, check_atom, check_json.

Each takes the document's bytes and raises AssertionError naming the first rule broken
(RFC 4287 for Atom, RSS 2.0, JSON Feed 1.1), or returns the parsed document for further
checks. Stdlib only (xml.etree.ElementTree), so they judge our output independently of the
libraries that wrote it.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn
from urllib.parse import urlsplit

ATOM = "{http://www.w3.org/2005/Atom}"
THR = "{http://purl.org/syndication/thread/1.0}"
FH = "{http://purl.org/syndication/history/1.0}"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
_TEXT_TYPES = {"text", "html", "xhtml"}


def _fail(where: str, message: str) -> NoReturn:
    raise AssertionError(f"{where}: {message}")


def _absolute(url: str | None, where: str) -> None:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        _fail(where, f"URL is not absolute http(s): {url!r}")


def _rfc3339(value: str | None, where: str) -> datetime:
    if not value or not _RFC3339.fullmatch(value.strip()):
        _fail(where, f"not an RFC 3339 date: {value!r}")
    try:
        return datetime.fromisoformat(value.strip().upper().replace("Z", "+00:00"))
    except ValueError:
        _fail(where, f"not a real date: {value!r}")


def _rfc822(value: str | None, where: str) -> datetime:
    try:
        moment = parsedate_to_datetime(value or "")
    except (TypeError, ValueError):
        moment = None
    if moment is None or moment.tzinfo is None:
        _fail(where, f"not an RFC 822 date with a zone: {value!r}")
    return moment


def _parse_xml(data: bytes, kind: str) -> ET.Element:
    if not isinstance(data, bytes):
        _fail(kind, f"expected bytes, got {type(data).__name__}")
    try:
        return ET.fromstring(data)
    except ET.ParseError as error:
        raise AssertionError(f"{kind}: not well-formed XML: {error}") from None


def _one(parent: ET.Element, tag: str, where: str, *, required: bool = True) -> ET.Element | None:
    found = parent.findall(tag)
    name = tag.replace(ATOM, "atom:")
    if len(found) > 1:
        _fail(where, f"more than one <{name}>")
    if required and not found:
        _fail(where, f"no <{name}>")
    return found[0] if found else None


# --- Atom (RFC 4287) ------------------------------------------------------------------------


def check_atom(data: bytes) -> ET.Element:
    """RFC 4287 rules, plus our own: a self link, absolute hrefs, no empty ids or titles."""
    root = _parse_xml(data, "atom")
    if root.tag != f"{ATOM}feed":
        _fail("atom", f"root is {root.tag}, not atom:feed")
    _atom_common(root, "atom feed")
    rels = [link.get("rel", "alternate") for link in root.findall(f"{ATOM}link")]
    if "self" not in rels:
        _fail("atom feed", "no rel='self' link")
    for tag in ("subtitle", "rights", "icon", "logo", "generator"):
        _one(root, f"{ATOM}{tag}", "atom feed", required=False)
    for tag in ("icon", "logo"):
        element = root.find(f"{ATOM}{tag}")
        if element is not None:
            _absolute(element.text, f"atom feed <{tag}>")
    feed_has_author = _authors_ok(root, "atom feed")
    for element in root.iter():
        if "href" in element.attrib:
            _absolute(element.get("href"), f"atom <{element.tag.replace(ATOM, '')}> href")
    archive = root.findall(f"{FH}archive")
    if len(archive) > 1 or (archive and (archive[0].text or "").strip()):
        _fail("atom feed", "fh:archive must appear once and be empty")

    seen: set[str] = set()
    for index, entry in enumerate(root.findall(f"{ATOM}entry")):
        where = f"atom entry {index}"
        entry_id = _atom_common(entry, where)
        where = f"atom entry {entry_id!r}"
        if entry_id in seen:
            _fail(where, "entry id repeated")
        seen.add(entry_id)
        if not _authors_ok(entry, where) and not feed_has_author:
            source = entry.find(f"{ATOM}source")
            if source is None or source.find(f"{ATOM}author") is None:
                _fail(where, "no author, and the feed has none")
        published = _one(entry, f"{ATOM}published", where, required=False)
        if published is not None:
            _rfc3339(published.text, f"{where} <published>")
        content = _one(entry, f"{ATOM}content", where, required=False)
        _one(entry, f"{ATOM}summary", where, required=False)
        if content is not None:
            kind = content.get("type", "text")
            if kind not in _TEXT_TYPES and "/" not in kind:
                _fail(where, f"content type {kind!r} is neither text/html/xhtml nor a MIME type")
            if content.get("src") and entry.find(f"{ATOM}summary") is None:
                _fail(where, "content with src needs a summary")
        links = entry.findall(f"{ATOM}link")
        if content is None and not any(
            link.get("rel", "alternate") == "alternate" for link in links
        ):
            _fail(where, "no content and no alternate link")
        for link in links:
            count = link.get(f"{THR}count")
            if count is not None and not count.isdigit():
                _fail(where, f"thr:count {count!r} is not a non-negative integer")
        source = entry.find(f"{ATOM}source")
        if source is not None:
            # RFC 4287 4.2.11 recommends the source feed's id, title and updated; the W3C
            # validator warns without them, so ours always carry all three.
            _atom_common(source, f"{where} <source>")
            rels = [link.get("rel", "alternate") for link in source.findall(f"{ATOM}link")]
            if "self" not in rels:
                _fail(f"{where} <source>", "no rel='self' link to the source feed")
    return root


def _atom_common(element: ET.Element, where: str) -> str:
    """id, title and updated, exactly once each; text constructs and links well-formed."""
    id_ = _one(element, f"{ATOM}id", where)
    title = _one(element, f"{ATOM}title", where)
    updated = _one(element, f"{ATOM}updated", where)
    assert id_ is not None and title is not None and updated is not None
    value = (id_.text or "").strip()
    if not _SCHEME.fullmatch(value):
        _fail(where, f"id is not an IRI: {value!r}")
    if not (title.text or "").strip() and title.get("type", "text") != "xhtml":
        _fail(where, "empty title")
    _rfc3339(updated.text, f"{where} <updated>")
    for tag in ("title", "subtitle", "summary", "rights"):
        for text in element.findall(f"{ATOM}{tag}"):
            if text.get("type", "text") not in _TEXT_TYPES:
                _fail(where, f"<{tag}> type {text.get('type')!r} is not text, html or xhtml")
    alternates: set[tuple[str | None, str | None]] = set()
    for link in element.findall(f"{ATOM}link"):
        _absolute(link.get("href"), f"{where} link rel={link.get('rel')!r}")
        if link.get("rel", "alternate") == "alternate":
            key = (link.get("type"), link.get("hreflang"))
            if key in alternates:
                _fail(where, f"two alternate links with the same type and hreflang {key}")
            alternates.add(key)
        if link.get("length") is not None and not link.get("length", "").isdigit():
            _fail(where, f"link length {link.get('length')!r} is not an integer")
    for category in element.findall(f"{ATOM}category"):
        if not category.get("term"):
            _fail(where, "category without term")
    return value


def _authors_ok(element: ET.Element, where: str) -> bool:
    authors = element.findall(f"{ATOM}author")
    for author in authors:
        name = author.find(f"{ATOM}name")
        if name is None or not (name.text or "").strip():
            _fail(where, "author without a name")
        uri = author.find(f"{ATOM}uri")
        if uri is not None:
            _absolute(uri.text, f"{where} author uri")
    return bool(authors)


# --- RSS 2.0 --------------------------------------------------------------------------------


def check_rss(data: bytes) -> ET.Element:
    """RSS 2.0 rules, plus our own: absolute URLs, RFC 822 dates, unique guids."""
    root = _parse_xml(data, "rss")
    if root.tag != "rss" or root.get("version") != "2.0":
        _fail("rss", f"root is <{root.tag} version={root.get('version')!r}>, not RSS 2.0")
    channels = root.findall("channel")
    if len(channels) != 1:
        _fail("rss", f"{len(channels)} <channel> elements, not one")
    channel = channels[0]
    for tag in ("title", "link", "description"):
        element = _one(channel, tag, "rss channel")
        assert element is not None
        if tag != "description" and not (element.text or "").strip():
            _fail("rss channel", f"empty <{tag}>")
    _absolute(channel.findtext("link"), "rss channel <link>")
    for tag in ("pubDate", "lastBuildDate"):
        element = _one(channel, tag, "rss channel", required=False)
        if element is not None:
            _rfc822(element.text, f"rss channel <{tag}>")
    ttl = channel.findtext("ttl")
    if ttl is not None and not ttl.strip().isdigit():
        _fail("rss channel", f"ttl {ttl!r} is not a number of minutes")
    image = channel.find("image")
    if image is not None:
        for tag in ("url", "title", "link"):
            if not (image.findtext(tag) or "").strip():
                _fail("rss channel <image>", f"no <{tag}>")
        _absolute(image.findtext("url"), "rss channel <image> url")
        _absolute(image.findtext("link"), "rss channel <image> link")
    for link in channel.findall(f"{ATOM}link"):
        _absolute(link.get("href"), f"rss channel atom:link rel={link.get('rel')!r}")

    seen: set[str] = set()
    for index, item in enumerate(channel.findall("item")):
        where = f"rss item {index}"
        title = (item.findtext("title") or "").strip()
        description = (item.findtext("description") or "").strip()
        if not title and not description:
            _fail(where, "neither title nor description")
        for tag in ("title", "link", "description", "guid", "pubDate", "comments", "source"):
            _one(item, tag, where, required=False)
        if item.find("link") is not None:
            _absolute(item.findtext("link"), f"{where} <link>")
        guid = item.find("guid")
        if guid is not None:
            value = (guid.text or "").strip()
            where = f"rss item {value!r}"
            if not value:
                _fail(where, "empty guid")
            if value in seen:
                _fail(where, "guid repeated")
            seen.add(value)
            permalink = guid.get("isPermaLink", "true")
            if permalink not in ("true", "false"):
                _fail(where, f"isPermaLink={permalink!r}")
            if permalink == "true":  # the default: then the guid must be a URL
                _absolute(value, f"{where} permalink guid")
        if item.find("pubDate") is not None:
            _rfc822(item.findtext("pubDate"), f"{where} <pubDate>")
        if item.find("comments") is not None:
            _absolute(item.findtext("comments"), f"{where} <comments>")
        for author in item.findall("author"):
            if "@" not in (author.text or ""):
                _fail(where, f"<author> must be an email address: {author.text!r}")
        for enclosure in item.findall("enclosure"):
            _absolute(enclosure.get("url"), f"{where} <enclosure>")
            if not (enclosure.get("length") or "").isdigit() or not enclosure.get("type"):
                _fail(where, "enclosure needs url, an integer length and a type")
        source = item.find("source")
        if source is not None:
            _absolute(source.get("url"), f"{where} <source>")
        for link in item.findall(f"{ATOM}link"):
            _absolute(link.get("href"), f"{where} atom:link")
    return root


# --- JSON Feed 1.1 --------------------------------------------------------------------------

_FEED_KEYS = {
    "version",
    "title",
    "home_page_url",
    "feed_url",
    "description",
    "user_comment",
    "next_url",
    "icon",
    "favicon",
    "authors",
    "author",
    "language",
    "expired",
    "hubs",
    "items",
}
_ITEM_KEYS = {
    "id",
    "url",
    "external_url",
    "title",
    "content_html",
    "content_text",
    "summary",
    "image",
    "banner_image",
    "date_published",
    "date_modified",
    "authors",
    "author",
    "tags",
    "language",
    "attachments",
}


def check_json(data: bytes) -> dict[str, Any]:
    """JSON Feed 1.1: required fields, field types, URLs, RFC 3339 dates, unique ids."""
    try:
        feed = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise AssertionError(f"json: not UTF-8 JSON: {error}") from None
    if not isinstance(feed, dict):
        _fail("json", "the document is not an object")
    if feed.get("version") != JSON_FEED_VERSION:
        _fail("json", f"version is {feed.get('version')!r}, not {JSON_FEED_VERSION!r}")
    _known_keys(feed, _FEED_KEYS, "json feed")
    _string(feed, "title", "json feed", required=True)
    for key in ("home_page_url", "feed_url", "next_url", "icon", "favicon"):
        if _string(feed, key, "json feed") is not None:
            _absolute(feed[key], f"json feed {key}")
    for key in ("description", "user_comment", "language"):
        _string(feed, key, "json feed")
    if "expired" in feed and not isinstance(feed["expired"], bool):
        _fail("json feed", "expired is not a boolean")
    _json_authors(feed, "json feed")
    hubs = feed.get("hubs", [])
    if not isinstance(hubs, list):
        _fail("json feed", "hubs is not a list")
    for hub in hubs:
        if not isinstance(hub, dict) or not all(
            isinstance(hub.get(k), str) for k in ("type", "url")
        ):
            _fail("json feed", f"hub needs type and url strings: {hub!r}")
        _absolute(hub["url"], "json feed hub")
    items = feed.get("items")
    if not isinstance(items, list):
        _fail("json feed", "items is missing or not a list")

    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            _fail(f"json item {index}", "not an object")
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            _fail(f"json item {index}", f"id must be a non-empty string: {item_id!r}")
        where = f"json item {item_id!r}"
        if item_id in seen:
            _fail(where, "id repeated")
        seen.add(item_id)
        _known_keys(item, _ITEM_KEYS, where)
        if not any(isinstance(item.get(k), str) for k in ("content_html", "content_text")):
            _fail(where, "neither content_html nor content_text")
        for key in ("url", "external_url", "image", "banner_image"):
            if _string(item, key, where) is not None:
                _absolute(item[key], f"{where} {key}")
        for key in ("title", "content_html", "content_text", "summary", "language"):
            _string(item, key, where)
        for key in ("date_published", "date_modified"):
            if _string(item, key, where) is not None:
                _rfc3339(item[key], f"{where} {key}")
        _json_authors(item, where)
        tags = item.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            _fail(where, "tags is not a list of strings")
        attachments = item.get("attachments", [])
        if not isinstance(attachments, list):
            _fail(where, "attachments is not a list")
        for attachment in attachments:
            if not isinstance(attachment, dict):
                _fail(where, "attachment is not an object")
            _string(attachment, "url", f"{where} attachment", required=True)
            _absolute(attachment["url"], f"{where} attachment")
            _string(attachment, "mime_type", f"{where} attachment", required=True)
            for key in ("size_in_bytes", "duration_in_seconds"):
                value = attachment.get(key)
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float)
                ):
                    _fail(where, f"attachment {key} is not a number")
    return feed


def _known_keys(value: dict[str, Any], known: set[str], where: str) -> None:
    """Extensions must start with "_" and a letter; anything else unknown is a typo."""
    for key in value:
        if key not in known and not re.fullmatch(r"_[A-Za-z]\w*", key):
            _fail(where, f"unknown key {key!r} (extensions start with '_')")
        if key.startswith("_") and not isinstance(value[key], dict):
            _fail(where, f"extension {key!r} is not an object")


def _string(value: dict[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    if key not in value:
        if required:
            _fail(where, f"no {key!r}")
        return None
    if value[key] is None:
        _fail(where, f"{key!r} is null: omit it instead")
    if not isinstance(value[key], str):
        _fail(where, f"{key!r} is not a string: {value[key]!r}")
    return value[key]


def _json_authors(value: dict[str, Any], where: str) -> None:
    authors = value.get("authors", [])
    if not isinstance(authors, list):
        _fail(where, "authors is not a list")
    for author in authors:
        if not isinstance(author, dict) or not any(
            isinstance(author.get(k), str) and author[k] for k in ("name", "url", "avatar")
        ):
            _fail(where, f"author needs a name, url or avatar: {author!r}")
        for key in ("url", "avatar"):
            if key in author:
                _absolute(author[key], f"{where} author {key}")
