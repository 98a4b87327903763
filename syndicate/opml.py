"""OPML 2.0 in and out: import a reading list into config.toml, export the sources.

Importing edits config.toml with tomlkit so the admin's comments and layout survive.
OPML is parsed with ElementTree: on expat >= 2.4 it limits entity expansion (billion
laughs) and it never fetches external entities.
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

import tomlkit

from syndicate.config import Settings
from syndicate.config.fields import SLUG, is_http_url


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    url: str
    title: str
    category: str | None


def parse_opml(data: bytes) -> list[OpmlFeed]:
    """Every outline with an http(s) xmlUrl; a parent outline without one is its category."""
    try:
        root = ET.fromstring(data)  # noqa: S314 (see the comment on the import)
    except ET.ParseError as error:
        raise ValueError(f"not valid OPML: {error}") from None
    body = root.find("body")
    if root.tag != "opml" or body is None:
        raise ValueError("not an OPML document (no <opml><body>)")
    feeds: list[OpmlFeed] = []

    def walk(node: ET.Element, category: str | None) -> None:
        for outline in node.findall("outline"):
            url = (outline.get("xmlUrl") or "").strip()
            label = (outline.get("title") or outline.get("text") or "").strip()
            if url and is_http_url(url):
                feeds.append(OpmlFeed(url, label or url, category))
            walk(outline, category if url else (label or category))

    walk(body, None)
    return feeds


def add_to_config(config_text: str, feeds: list[OpmlFeed]) -> tuple[str, list[str], list[str]]:
    """Append [[sources]] blocks for feeds not configured yet.

    Returns the new text, the names added and the URLs skipped as already present.
    """
    document = tomlkit.parse(config_text)
    sources = document.get("sources")
    if sources is None:
        sources = tomlkit.aot()
        document["sources"] = sources
    taken = {str(s.get("name")) for s in sources}
    present = {str(s.get("url")) for s in sources}
    added, skipped = [], []
    for feed in feeds:
        if feed.url in present:
            skipped.append(feed.url)
            continue
        name = _unique_slug(feed.title or feed.url, taken)
        table = tomlkit.table()
        table.add("name", name)
        table.add("url", feed.url)
        table.add("title", feed.title)
        if feed.category:
            table.add("category", feed.category)
        sources.append(table)
        taken.add(name)
        present.add(feed.url)
        added.append(name)
    return tomlkit.dumps(document), added, skipped


def render_opml(settings: Settings) -> str:
    """OPML 2.0 listing every source, grouped in outlines by category."""
    groups: dict[str, list[str]] = {}
    for source in settings.sources:
        title = source.display_title()
        line = (
            f'<outline type="rss" text={quoteattr(title)} title={quoteattr(title)} '
            f"xmlUrl={quoteattr(source.url)}/>"
        )
        groups.setdefault(source.category or "", []).append(line)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        "  <head>",
        f"    <title>{_text(settings.site.title)} sources</title>",
        "  </head>",
        "  <body>",
    ]
    for category, outlines in groups.items():
        if category:
            lines.append(f"    <outline text={quoteattr(category)}>")
            lines.extend(f"      {outline}" for outline in outlines)
            lines.append("    </outline>")
        else:
            lines.extend(f"    {outline}" for outline in outlines)
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _text(value: str) -> str:
    return quoteattr(value)[1:-1]


def _unique_slug(text: str, taken: set[str]) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:50] or "feed"
    name, number = base, 2
    while name in taken or not SLUG.match(name):
        name, number = f"{base}-{number}", number + 1
    return name
