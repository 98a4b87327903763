"""What the three feed renderers agree on: XML-safe text, UTC dates, item ids, URLs.

Kept in one place so RSS, Atom and JSON Feed never disagree about which id, date or
discussion link a post has.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from syndicate.links import public_id, public_url
from syndicate.models import Post
from syndicate.publish.document import FeedDocument

# A document with no posts has no "newest post" to date it by; a fixed moment keeps its
# bytes stable (the build time would change them on every run).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Characters XML 1.0 forbids (lxml, and so feedgen, raises on them): C0 controls other than
# tab, LF and CR; lone surrogates; U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# Enough of RFC 3987 to tell an IRI from a bare string: a scheme, then something without
# spaces or the characters IRIs never contain.
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+")

# Derived ids are UUIDv5s in this namespace (itself uuid5(NAMESPACE_DNS, "syndicate.guid")):
# fixed forever, so an id never changes between builds, versions or sites.
_GUID_NAMESPACE = uuid.UUID("4068d38d-d1f1-52ac-820b-8e3654ae3230")


def clean(value: str | None) -> str:
    """`value` without the characters XML 1.0 cannot carry."""
    return _NOT_XML.sub("", value) if value else ""


def utc(moment: datetime) -> datetime:
    """An aware datetime in UTC. Naive ones are bugs upstream (the store refuses them too)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r} given to a feed renderer; use aware UTC")
    return moment.astimezone(UTC)


def rfc3339(moment: datetime) -> str:
    """ "2015-12-01T10:00:00Z": the form JSON Feed readers parse most reliably."""
    return utc(moment).isoformat().replace("+00:00", "Z")


def feed_updated(doc: FeedDocument) -> datetime:
    return utc(doc.updated) if doc.updated else EPOCH


def http_url(value: str | None) -> str | None:
    """`value` if it is a public http(s) URL (syndicate.links), else None: links are
    dropped rather than published relative (or as javascript: and friends)."""
    return public_url(clean(value))


def is_iri(value: str) -> bool:
    return _IRI.fullmatch(value) is not None


def item_id(post: Post) -> str:
    """The post's id in every format: its guid when that is an IRI we may publish (a
    public http(s) URL, urn: or tag:), else a UUID URN derived from (source, guid).

    Atom needs an IRI; and a bare guid such as "42" is only unique within its source, so
    in a feed merging several sources it would collide. A guid such as "javascript:..."
    is an IRI, but readers that take an id for a link must never see it. RSS and JSON
    Feed use the same value so that the three formats name a post alike.
    """
    guid = clean(post.guid).strip()
    if is_iri(guid) and public_id(guid):
        return guid
    name = f"{post.source}\n{post.guid}"
    return f"urn:uuid:{uuid.uuid5(_GUID_NAMESPACE, name)}"


def discussion(post: Post) -> tuple[str | None, int | None]:
    """Where readers discuss the post, and how many replies it has there.

    Only the forum linker's answer counts: with strategy "feed" it is the source's own
    comments link, with "none" there is no link even if the source gave one.
    """
    forum = http_url(post.discussion_url)
    if not forum:
        return None, None
    count = post.reply_count
    return forum, max(count, 0) if count is not None else None


def distinct_summary_html(post: Post) -> str:
    """The summary HTML when it says something the content does not; normalise copies the
    summary into the content when a feed has only one, and repeating it doubles the size."""
    summary = clean(post.summary_html)
    return summary if summary.strip() and summary != clean(post.content_html) else ""


def title_of(post: Post) -> str:
    return clean(post.title).strip() or "Untitled"


def labels(values: tuple[str, ...]) -> list[str]:
    """Authors or categories, cleaned, without empties or repeats, in their given order."""
    return list(dict.fromkeys(v for v in (clean(value).strip() for value in values) if v))
