"""RawEntry -> Post: stable ids, absolute URLs, UTC dates, sanitised HTML, an excerpt, and
Burmese in Unicode (a post in Zawgyi is converted, and flagged: zawgyi.py).

Everything a later stage shows comes out of here clean, so publishing and the digest can
trust posts without sanitising again.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from syndicate.ingest.raw import RawEntry
from syndicate.ingest.zawgyi import post_text, text_to_unicode
from syndicate.languages import post_language
from syndicate.links import ONLY_PUBLIC, public_url, shown
from syndicate.markup.sanitise import (
    excerpt,
    first_image,
    image_details,
    plain_title,
    sanitise_html,
)
from syndicate.models import Enclosure, Post

# Dates before this are clock or parser accidents, not blog posts.
EARLIEST_PLAUSIBLE = datetime(1995, 1, 1, tzinfo=UTC)
# A post "published" further ahead than this is a wrong zone or a scheduled post leaking.
FUTURE_SLACK = timedelta(days=1)
MAX_TITLE = 500
MAX_LABELS = 20  # categories or authors kept per post
_TRACKING_PARAMS = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid")


def normalise_entry(
    entry: RawEntry,
    *,
    source: str,
    feed_url: str,
    feed_link: str | None,
    default_category: str | None,
    now: datetime,
    warn: Callable[[str], object] | None = None,
    language: str | None = None,
) -> Post:
    """Build a Post. `now` is the first-seen time, used for missing or absurd dates.

    Only public http(s) URLs are kept (syndicate.links): the link, image, enclosure or
    comments link of an entry that gives another is dropped, and `warn` is called once with
    a line naming the entry and what was dropped. A post without a public link has url "".
    `language` is the source's key: it wins over what the feed declares (see
    syndicate.languages.post_language for the rest). Text in Zawgyi becomes Unicode
    (syndicate.ingest.zawgyi), flagged on the post.
    """
    xml_base = public_url(absolute_url(entry.base_url, feed_url)) if entry.base_url else None
    feed_base = xml_base or public_url(absolute_url(feed_link, feed_url)) or feed_url
    raw_link = absolute_url(entry.link, feed_base) if entry.link else None
    link = public_url(raw_link)
    # Relative URLs in a post: an explicit xml:base, else the post's own page (the "/about/"
    # of a WordPress post means the blog's, even when the feed is served from elsewhere).
    base = xml_base or link or feed_base
    guid = (entry.id or "").strip() or raw_link or _hash_guid(entry)
    # No link of its own (or none we may publish): the guid, when it is one; else none. A
    # made-up link (the blog's home page) would send readers somewhere the post is not.
    public = link or public_url(guid)
    url = canonical_url(public) if public else ""
    dropped = [("link", entry.link)] if entry.link and not link else []
    summary_html = _html(entry.summary, entry.summary_type, base)
    content_html = _html(entry.content, entry.content_type, base) or summary_html
    # Zawgyi becomes Unicode before anything reads the text (the excerpt, the title's
    # fallback), and after nh3, whose output zawgyi.py can split into tags and text exactly.
    text = post_text(
        plain_title(entry.title or "", entry.title_type == "html"), summary_html, content_html
    )
    summary_html, content_html = text.summary_html, text.content_html
    published = _plausible(entry.published, now) or _plausible(entry.updated, now) or now
    updated = _plausible(entry.updated, now) or published
    enclosures = [(e, public_url(absolute_url(e.url, base))) for e in entry.enclosures]
    enclosure = next((Enclosure(url, e.type, e.length) for e, url in enclosures if url), None)
    dropped += [("enclosure", e.url) for e, url in enclosures if not url]
    own_image = public_url(absolute_url(entry.image, base)) if entry.image else None
    if entry.image and not own_image:
        dropped.append(("image", entry.image))
    # The content's first image is only a stand-in: one we may not publish is no image.
    image = own_image or public_url(first_image(content_html or summary_html))
    # Its alt text and size as the feed gives them: the <img> in the post's HTML (WordPress
    # writes all three), and for the feed's own image the size its attributes say.
    details = (
        image_details(content_html, image) or image_details(summary_html, image) if image else None
    )
    image_alt = details.alt if details else None
    if text.zawgyi and image_alt:
        # A plain-text field, like the title; the alt attribute in the HTML stays as written.
        image_alt = text_to_unicode(image_alt)
    width, height = (details.width, details.height) if details else (None, None)
    if own_image and entry.image_width and entry.image_height:
        width, height = entry.image_width, entry.image_height
    title = text.title[:MAX_TITLE]  # cut after converting: Zawgyi writes E first
    plain = excerpt(summary_html or content_html)
    categories = _labels(entry.categories) or ((default_category,) if default_category else ())
    comments = public_url(absolute_url(entry.comments_url, base)) if entry.comments_url else None
    if entry.comments_url and not comments:
        dropped.append(("comments link", entry.comments_url))
    if dropped and warn is not None:
        what = ", ".join(f"{kind} {shown(value)}" for kind, value in dropped)
        warn(f"entry {shown(guid)}: dropped {what}: {ONLY_PUBLIC}")
    post = Post(
        source=source,
        guid=guid,
        url=url,
        title=title or excerpt(summary_html or content_html, 80) or "Untitled",
        published=published,
        updated=max(updated, published),
        first_seen=now,
        content_hash="",
        authors=_labels(entry.authors),
        categories=categories,
        summary_html=summary_html,
        content_html=content_html,
        excerpt=plain,
        image_url=image,
        image_alt=image_alt if image else None,
        image_width=width if image else None,
        image_height=height if image else None,
        enclosure=enclosure,
        comments_url=comments,
        # Converted from Zawgyi, the text is Burmese in Unicode, which its script tells.
        language=post_language(language, entry.language, f"{title} {plain}"),
        zawgyi=text.zawgyi,
    )
    return _with_hash(post, entry)


def absolute_url(url: str | None, base: str | None) -> str:
    url = (url or "").strip()
    try:
        return urljoin(base, url) if base else url
    except ValueError:  # e.g. "http://[::1" (an invalid IPv6 host): refused as a URL later
        return url


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no tracking parameters: one post, one URL."""
    parts = urlsplit(url.strip())
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.lower().startswith(_TRACKING_PARAMS)
        ]
    )
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, parts.fragment)
    )


def _html(value: str | None, kind: str, base: str) -> str:
    if not value or not value.strip():
        return ""
    if kind == "text":
        paragraphs = [p.strip() for p in value.split("\n\n") if p.strip()]
        return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return sanitise_html(value, base)


def _plausible(moment: datetime | None, now: datetime) -> datetime | None:
    if moment is None or moment < EARLIEST_PLAUSIBLE or moment > now + FUTURE_SLACK:
        return None
    return moment.astimezone(UTC)


def _labels(values: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        label = plain_title(value, is_html=False)[:100]
        if label and label.casefold() not in {s.casefold() for s in seen}:
            seen[label] = None
    return tuple(seen)[:MAX_LABELS]


def _hash_guid(entry: RawEntry) -> str:
    """No id and no link: the title and date are all that identify the entry."""
    date = entry.published or entry.updated
    seed = f"{entry.title or ''}\x00{date.isoformat() if date else ''}"
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()[:32]


def _with_hash(post: Post, entry: RawEntry) -> Post:
    # The image's alt text and size are not in it: an <img>'s are in the HTML already, and
    # adding them would make every stored post look changed (and updated) once.
    # The raw dates, not the fallbacks: a dateless entry must not look changed on every poll.
    fields = [
        post.url,
        post.title,
        post.authors,
        post.categories,
        post.summary_html,
        post.content_html,
        post.image_url,
        post.comments_url,
        post.language,
        [post.enclosure.url, post.enclosure.type, post.enclosure.length]
        if post.enclosure
        else None,
        entry.published.isoformat() if entry.published else None,
        entry.updated.isoformat() if entry.updated else None,
    ]
    digest = hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()
    return replace(post, content_hash=digest)
