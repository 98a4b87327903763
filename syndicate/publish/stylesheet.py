"""The feeds' XSLT stylesheet: a person who opens an RSS or Atom feed in a browser sees a
readable page (the feed's title, what a feed is, its items), while feed readers, which ignore
the `<?xml-stylesheet?>` processing instruction, read the same bytes as before.

    data = with_stylesheet(rss_bytes, "category/rivers")  # PI pointing at ../feed.xsl
    STYLESHEET_PATH, stylesheet_bytes()                    # published beside index.rss

The href is relative to the feed, so it works wherever the site is served from (127.0.0.1
as well as `[site] url`): browsers apply a stylesheet only from the feed's own origin.
Browsers apply it only to XML they render as XML; syndicate/web/feeds.py serves feeds to a
browser's navigation as application/xml for that reason (see there).
"""

from __future__ import annotations

from importlib.resources import files

STYLESHEET_PATH = "feed.xsl"  # under the publish folder, served at /feeds/feed.xsl

_DECLARATION_END = b"?>\n"


def stylesheet_bytes() -> bytes:
    return files("syndicate.publish").joinpath("feed.xsl").read_bytes()


def stylesheet_href(feed_path: str) -> str:
    """The stylesheet's URL relative to the feed at `feed_path` ("index", "source/x")."""
    return "../" * feed_path.count("/") + STYLESHEET_PATH


def with_stylesheet(document: bytes, feed_path: str) -> bytes:
    """`document` (feedgen's output, which starts with an XML declaration line) with the
    processing instruction on the line after it; the rest of the bytes are untouched."""
    instruction = f'<?xml-stylesheet type="text/xsl" href="{stylesheet_href(feed_path)}"?>\n'
    head, found, rest = document.partition(_DECLARATION_END)
    if not found or not head.startswith(b"<?xml "):
        raise ValueError("a feed document must start with an XML declaration")
    return head + found + instruction.encode("ascii") + rest
