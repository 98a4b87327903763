"""Untrusted feed HTML -> safe HTML, plain text, excerpts and titles, all through nh3.

One nh3 pass both cleans and absolutises: its ``url_relative`` callback joins each relative
href/src to the entry's base URL (absolute ones never reach Python, which keeps this fast).
The cleaners are built once (an ``nh3.clean`` call converts its allow-lists on every call,
about 25 µs, more than cleaning a short summary), so the per-call base URL reaches the shared
callback through a ContextVar, which stays correct across threads and asyncio tasks.
Regexes here never sanitise: they only mark block boundaries before nh3 parses, or read
nh3's own well-formed output (``first_image``).

HTML from a feed is checked by ``check_nesting`` before nh3 parses it: nesting too deep makes
an HTML5 parser's work grow with its square (nesting.py). ``sanitise_html`` and an HTML
``plain_title`` raise TooDeeplyNested for such input; ``html_to_text``, ``excerpt`` and
``first_image`` take what ``sanitise_html`` produced, which is no deeper.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass
from html import unescape
from urllib.parse import urljoin, urlsplit

import nh3

from syndicate.markup.nesting import check_nesting

_TAGS = {
    "p", "br", "hr", "div", "span", "a", "em", "strong", "b", "i", "u", "s", "small", "mark",
    "del", "ins", "sub", "sup", "abbr", "time", "blockquote", "q", "cite", "code", "pre",
    "ul", "ol", "li", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "img", "figure",
    "figcaption", "table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "abbr": {"title"},
    "time": {"datetime"},
}  # no `cite`: nh3 checks the scheme of href and src only, and readers never see a cite
# Tags whose content goes too. iframe and noscript content is raw text to the parser, so
# merely unwrapping them would show their markup to readers as text.
_DROP_WITH_CONTENT = {
    "script", "style", "iframe", "frame", "frameset", "noscript", "noembed", "noframes",
    "object", "embed", "applet", "form", "button", "textarea", "select", "template", "svg",
    "math", "xmp", "title",
}  # fmt: skip
_SCHEMES = {"http", "https", "mailto"}
_LINK_REL = "noopener nofollow"

# C0 and C1 controls except \t \n \r, lone surrogates (nh3 cannot encode them) and the two
# non-characters XML forbids: feedgen raises on all of them later.
_CONTROL_RANGES = "\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
_CONTROLS = re.compile(f"[{_CONTROL_RANGES}\f]")
_CONTROLS_BUT_BREAK = re.compile(f"[{_CONTROL_RANGES}]")
# For plain text, a line break is marked before block tags (two before paragraph-like ones,
# giving a blank line), so "<p>a</p><p>b</p>" reads "a", "b" and not "ab" once the tags are
# gone. The mark is a form feed, not "\n": source newlines are only spaces in HTML (except
# in <pre>), while a form feed cannot be in the input (controls are stripped first) yet is
# HTML whitespace, which the parser leaves in place even between table rows (other text is
# moved out of tables). Closing tags count only for paragraph-like ones, so list items are
# not double-spaced.
_BREAK = "\f"
_PARAGRAPH = _BREAK * 2
_SEPARATORS = {
    **dict.fromkeys(["br", "hr", "li", "dt", "dd", "tr", "caption", "figcaption"], _BREAK),
    **dict.fromkeys(["td", "th"], " "),
    **dict.fromkeys(
        ["p", "div", "blockquote", "pre", "ul", "ol", "dl", "table", "figure", "section",
         "article", "header", "footer", "aside", "h1", "h2", "h3", "h4", "h5", "h6"],
        _PARAGRAPH,
    ),
}  # fmt: skip
_BLOCK_TAG = re.compile(r"<(/?)(" + "|".join(_SEPARATORS) + r")\b", re.IGNORECASE)
_PRE = re.compile(r"<pre\b.*?</pre\s*>", re.IGNORECASE | re.DOTALL)
# nh3 always writes attributes double-quoted, and escapes < > inside values.
_IMG_SRC = re.compile(r'<img\b[^>]*?\ssrc="([^"]*)"')
# nh3 writes every attribute as name="value" with the value escaped, so this reads them all.
# (A quoted value may hold ">", which the serialiser leaves as it is.)
_IMG_TAG = re.compile(r'<img\b(?:[^>"]|"[^"]*")*>', re.IGNORECASE)
_ATTRIBUTE = re.compile(r'\s([a-zA-Z-]+)="([^"]*)"')
MAX_PIXELS = 20_000  # larger is a typo or a trick; treated as unknown

_base_url: ContextVar[str | None] = ContextVar("sanitise_base_url", default=None)


def _join_relative(url: str) -> str | None:
    """nh3 callback for relative URLs only: join to the current base, or drop.

    An empty URL is dropped: joined, it would point at the page itself, which first_image
    would take for an image.
    """
    if not url.strip():
        return None
    base = _base_url.get()
    if not base:
        return url
    try:
        joined = urljoin(base, url)
        scheme = urlsplit(joined).scheme
    except ValueError:  # e.g. "http://[::1" is an invalid IPv6 host
        return None
    return joined if not scheme or scheme in _SCHEMES else None


_HTML_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes=_ATTRIBUTES,
    url_relative=_join_relative,
    url_schemes=_SCHEMES,
    link_rel=_LINK_REL,
)
_TEXT_CLEANER = nh3.Cleaner(tags=set(), clean_content_tags=_DROP_WITH_CONTENT, attributes={})


def sanitise_html(html: str, base_url: str | None) -> str:
    """Safe HTML with absolute URLs; relative ones stay relative only when base_url is None.

    Raises TooDeeplyNested for HTML that would take the parser too long (nesting.py).
    """
    check_nesting(html)
    token = _base_url.set(base_url)
    try:
        cleaned = _HTML_CLEANER.clean(_CONTROLS.sub("", html))
    finally:
        _base_url.reset(token)
    # Character references such as "&#1;" come out of the parser as raw control characters.
    return _CONTROLS.sub("", cleaned)


def html_to_text(html: str) -> str:
    """Plain text, one line per block, a blank line between paragraphs.

    For HTML that sanitise_html produced (or trusted): it is not checked for nesting again.
    """
    marked = _PRE.sub(_mark_pre_lines, _BLOCK_TAG.sub(_mark_block, _CONTROLS.sub("", html)))
    text = _CONTROLS_BUT_BREAK.sub("", _unescape_text(_TEXT_CLEANER.clean(marked)))
    lines: list[str] = []
    for segment in text.split(_BREAK):
        line = " ".join(segment.split())
        if line or (lines and lines[-1]):  # keep at most one blank line in a row
            lines.append(line)
    return "\n".join(lines).strip()


def excerpt(html: str, limit: int = 280) -> str:
    """One paragraph of plain text, at most `limit` characters including the "…" if cut."""
    text = " ".join(html_to_text(html).split())
    if len(text) <= limit:
        return text
    if limit < 1:
        return ""
    room = limit - 1  # leave space for the ellipsis
    cut = text[:room]
    if text[room] != " ":  # the cut fell inside a word: back up to the last space, if any
        head, space, _ = cut.rpartition(" ")
        cut = head if space else cut
    return cut.rstrip(" ,;:-–—") + "…"


def first_image(html: str) -> str | None:
    """The src of the first <img> in HTML that sanitise_html produced, or None."""
    match = _IMG_SRC.search(html)
    return (unescape(match[1]) or None) if match else None


@dataclass(frozen=True, slots=True)
class ImageDetails:
    """What an <img> says of itself: its alt text (None when it has no alt attribute) and
    its size in pixels (None unless both width and height are whole numbers)."""

    alt: str | None
    width: int | None
    height: int | None


def image_details(html: str, src: str) -> ImageDetails | None:
    """The first <img> with this `src` in HTML that sanitise_html produced, or None.

    Its attributes are the feed author's: the alt text they wrote for the image (a reader
    who cannot see it hears that, not the post's title again) and the size they gave."""
    for tag in _IMG_TAG.finditer(html):
        attributes = {name.lower(): unescape(value) for name, value in _ATTRIBUTE.findall(tag[0])}
        if attributes.get("src") != src:
            continue
        alt = attributes.get("alt")
        width, height = pixels(attributes.get("width")), pixels(attributes.get("height"))
        if not (width and height):
            width = height = None
        alt = " ".join(_CONTROLS.sub("", alt).split()) if alt is not None else None
        return ImageDetails(alt, width, height)
    return None


def pixels(value: object) -> int | None:
    """A width or height in whole pixels ("640", "640px"), or None ("100%", "auto", 0)."""
    if isinstance(value, int):
        number = value
    else:
        match = re.fullmatch(r"\s*(\d{1,5})(?:px)?\s*", str(value or ""))
        if not match:
            return None
        number = int(match[1])
    return number if 0 < number <= MAX_PIXELS else None


def plain_title(text: str, is_html: bool) -> str:
    """A one-line plain-text title. Only HTML titles lose tags and entities.

    Raises TooDeeplyNested for an HTML title that would take the parser too long.
    """
    if is_html:
        check_nesting(text)
        text = _unescape_text(_TEXT_CLEANER.clean(_CONTROLS.sub("", text)))
    return " ".join(_CONTROLS.sub("", text).split())


def _mark_block(match: re.Match[str]) -> str:
    separator = _SEPARATORS[match[2].lower()]
    if match[1] and separator != _PARAGRAPH:
        return match[0]
    return separator + match[0]


def _mark_pre_lines(match: re.Match[str]) -> str:
    return match[0].replace("\n", _BREAK)


def _unescape_text(cleaned: str) -> str:
    # nh3 re-escapes the text it keeps (&amp; &lt; &gt; &nbsp;): decode exactly once.
    return unescape(cleaned)
