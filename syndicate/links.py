"""Which URLs may leave us: one rule for every link we publish, mail or show.

A URL from a feed (a post's link, image, enclosure and comments link, the feed's home page)
or from a forum ends up as a link in feed readers, browsers and mail clients. Only an
absolute http(s) URL with a host goes out. Everything else is dropped: `javascript:`,
`data:`, `vbscript:`, `file:` and other schemes, relative and protocol-relative URLs, URLs
with credentials (`https://bank.example@evil.example/` shows one host and opens another),
and URLs carrying whitespace, control or invisible characters, quotes, angle brackets or a
backslash (browsers read `\\` as `/`, Python does not, so the two would disagree on the host).

Ingest drops such URLs with a warning; the output edges (feeds, pages, the digest, the
forum linker) check again, so rows stored before this rule cannot leak either.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from urllib.parse import urlsplit

from syndicate.models import Post

# How a warning says why a URL was dropped.
ONLY_PUBLIC = "only absolute http(s) URLs are published"
# Browsers cope with longer, but no post link needs more, and a megabyte of data: URL
# should not be carried around only to be refused.
MAX_URL_LENGTH = 2048
_WEB_SCHEMES = ("http", "https")
# Ids are not links, but readers show or follow some of them; these are the usual Atom id
# schemes (RFC 4151 tag:, RFC 8141 urn:) besides http(s).
_ID_SCHEMES = ("urn", "tag")
# ASCII controls, space and DEL; quotes and angle brackets (they end an attribute or a tag;
# backtick did in old browsers) and the backslash.
_FORBIDDEN_ASCII = re.compile(r'[\x00-\x20\x7f<>"`\\]')
# Beyond ASCII: control (Cc), format (Cf: zero-width and bidi marks) and separator (Z*).
_INVISIBLE_CATEGORIES = ("Cc", "Cf", "Zs", "Zl", "Zp")


def public_url(value: str | None) -> str | None:
    """`value` (without surrounding whitespace) if we may publish it as a link, else None."""
    text = _plain(value)
    if text is None:
        return None
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 host)
        return None
    if parts.scheme not in _WEB_SCHEMES or not parts.hostname or "@" in parts.netloc:
        return None
    # urlsplit lower-cases the scheme; the text itself must start with it (nothing before).
    if not text.lower().startswith(f"{parts.scheme}://"):
        return None
    return text


def public_id(value: str | None) -> str | None:
    """`value` if it may be published as an id (Atom <id>, RSS <guid>, JSON Feed id):
    a public http(s) URL, or a urn: or tag: IRI. None otherwise."""
    text = _plain(value)
    if text is None:
        return None
    scheme, colon, rest = text.partition(":")
    if colon and scheme.lower() in _ID_SCHEMES and rest:
        return text
    return public_url(text)


def with_public_links(post: Post) -> Post:
    """The post without the URLs that may not leave us (for rows stored before the rule);
    the same object when every URL is fine. A post without a public link has url ""."""
    checked = {
        "url": public_url(post.url) or "",
        "image_url": public_url(post.image_url),
        "enclosure": post.enclosure if post.enclosure and public_url(post.enclosure.url) else None,
        "comments_url": public_url(post.comments_url),
        "discussion_url": public_url(post.discussion_url),
    }
    if all(getattr(post, name) == value for name, value in checked.items()):
        return post
    return replace(post, **checked)


def shown(value: str, limit: int = 80) -> str:
    """A URL from a feed as a log line may show it: shortened, quoted, controls escaped."""
    short = value if len(value) <= limit else value[: limit - 1] + "…"
    return repr(short)


def _plain(value: str | None) -> str | None:
    # Feeds often wrap a <link> in newlines and indentation; other controls are refused.
    text = value.strip(" \t\n\r\f") if isinstance(value, str) else ""
    if not text or len(text) > MAX_URL_LENGTH:
        return None
    if _FORBIDDEN_ASCII.search(text):
        return None
    # Most URLs are ASCII; only IRIs pay for a look at each character.
    if not text.isascii() and any(
        unicodedata.category(char) in _INVISIBLE_CATEGORIES for char in text if ord(char) > 127
    ):
        return None
    return text
