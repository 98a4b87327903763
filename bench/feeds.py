"""Deterministic RSS feeds for benchmarks, with full content like a WordPress feed.

"wordpress" style writes what the block editor produces (block comments, classes, images
with srcset, lists, inline links and emphasis, a little hostile markup); "plain" style is
bare paragraphs with a few links, the cheapest HTML a sanitiser can meet.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

WORDS = [
    "river",
    "water",
    "garden",
    "volunteer",
    "council",
    "bridge",
    "heron",
    "willow",
    "meadow",
    "compost",
    "planting",
    "survey",
    "community",
    "trust",
    "bank",
    "litter",
    "sample",
    "season",
    "funding",
    "report",
    "weir",
    "otter",
    "orchard",
    "school",
    "walk",
    "path",
    "flood",
    "nature",
    "tree",
]


def _sentence(rng: random.Random, feed: int) -> str:
    """A sentence with the inline markup a blog editor leaves behind."""
    words = [rng.choice(WORDS) for _ in range(rng.randint(10, 18))]
    words[2] = f'<a href="/{feed}/{rng.choice(WORDS)}/">{words[2]}</a>'
    words[5] = f"<strong>{words[5]}</strong>"
    if rng.random() < 0.5:
        words[8] = f'<em class="has-inline-color">{words[8]}</em>'
    if rng.random() < 0.3:
        words[-1] = f'<a href="https://partner{feed}.example/{words[-1]}" target="_blank">x</a>'
    return " ".join(words).capitalize() + "."


def _block(rng: random.Random, feed: int, n: int, style: str) -> str:
    """One paragraph; in "wordpress" style wrapped the way the block editor writes it."""
    text = " ".join(_sentence(rng, feed) for _ in range(rng.randint(3, 5)))
    if style == "plain":
        return f"<p>{text}</p>"
    kind = rng.random()
    if kind < 0.15:
        image = f"/wp-content/uploads/2015/{feed % 12 + 1:02d}/photo-{feed}-{n}"
        return (
            '<!-- wp:image {"sizeSlug":"large"} --><figure class="wp-block-image size-large">'
            f'<img decoding="async" loading="lazy" width="1024" height="683" src="{image}.jpg" '
            f'alt="{rng.choice(WORDS)}" class="wp-image-{n}" srcset="{image}.jpg 1024w, '
            f'{image}-300x200.jpg 300w" sizes="(max-width: 1024px) 100vw, 1024px" />'
            f'<figcaption class="wp-element-caption">{text[:60]}</figcaption></figure>'
            "<!-- /wp:image -->"
        )
    if kind < 0.25:
        items = "".join(f"<li>{_sentence(rng, feed)}</li>" for _ in range(3))
        return f'<!-- wp:list --><ul class="wp-block-list">{items}</ul><!-- /wp:list -->'
    return f'<!-- wp:paragraph --><p class="has-text-align-left">{text}</p><!-- /wp:paragraph -->'


def feed_xml(feed: int, entries: int, style: str = "wordpress", seed: int = 1) -> bytes:
    rng = random.Random(seed * 100_003 + feed)
    start = datetime(2015, 1, 1, tzinfo=UTC)
    items = []
    for n in range(entries):
        published = start + timedelta(hours=rng.randint(0, 24 * 365))
        body = "".join(_block(rng, feed, n, style) for _ in range(6))
        body += (
            f'<figure><img src="/uploads/{feed}-{n}.jpg" alt="photo {n}" width="600">'
            f"<figcaption>Photo {n}</figcaption></figure>"
            f'<p onclick="track()">Share <a href="javascript:void(0)">this</a></p>'
            f"<script>trackView({n})</script><ul><li>one</li><li>two</li></ul>"
        )
        items.append(
            f"<item><title>{escape(' '.join(rng.choice(WORDS) for _ in range(6)))} {n}</title>"
            f"<link>https://blog{feed}.example/{n}/</link>"
            f"<comments>https://forum.example/t/{feed}-{n}</comments>"
            f"<dc:creator>Author {n % 3}</dc:creator>"
            f"<category>{rng.choice(WORDS)}</category><category>{rng.choice(WORDS)}</category>"
            f'<guid isPermaLink="false">https://blog{feed}.example/?p={n}</guid>'
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<description>{escape(body[:300])}</description>"
            f"<content:encoded><![CDATA[{body}]]></content:encoded></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>Blog {feed}</title><link>https://blog{feed}.example/</link>"
        f"<description>Benchmark feed {feed}</description><language>en</language>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def write_feeds(folder: Path, count: int, entries: int, style: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for feed in range(count):
        path = folder / f"feed-{feed:04d}.xml"
        if not path.exists():
            path.write_bytes(feed_xml(feed, entries, style))
        paths.append(path)
    return paths
