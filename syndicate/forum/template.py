"""The `template` strategy: a discussion URL built from the post, no forum API needed."""

from __future__ import annotations

import hashlib
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from syndicate.models import Post
from syndicate.slugs import slugify


def post_id(post: Post) -> str:
    """A short id that never changes for a post: a hash of where it came from."""
    return hashlib.sha256(f"{post.source}\0{post.guid}".encode()).hexdigest()[:12]


def post_slug(post: Post) -> str:
    """The last part of the post's URL ("/2015/12/fish-survey/" -> "fish-survey"), else a
    slug of its title."""
    segments = [s for s in urlsplit(post.url).path.split("/") if s]
    last = segments[-1].rsplit(".", 1)[0] if segments else ""
    return slugify(last) if last and not last.isdigit() else slugify(post.title)


def template_url(template: str, post: Post, timezone: ZoneInfo) -> str:
    published = post.published.astimezone(timezone)
    return template.format(
        slug=quote(post_slug(post)),
        id=post_id(post),
        source=quote(post.source),
        year=f"{published.year:04d}",
        month=f"{published.month:02d}",
    )
