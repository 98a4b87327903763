"""Text helpers for the plain-text part of every email: the `wrap` and `plaintext` filters
(registered by syndicate.templating.email_environment), and the final tidying of the rendered
text. Plain string functions, no Jinja: they sit beside templating, not inside it."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from syndicate.linebreak import wrap_line


def wrap(value: object, width: int = 72) -> str:
    """`{{ post.excerpt|wrap }}`: each line wrapped at `width` columns; URLs and other long
    words are never broken, so they stay clickable (up to RFC 5322's 998 bytes a line). Thai,
    Lao, Khmer and Burmese, written without spaces, break between words, and nothing breaks
    inside a grapheme cluster: see syndicate.linebreak."""
    return "\n".join(piece for line in str(value).splitlines() for piece in wrap_line(line, width))


def plaintext(value: object) -> str:
    """`{{ intro_html|plaintext }}`: sanitised HTML as text. A paragraph becomes a line (with
    a blank line between), a list item a line "- item", a link "text <url>", an image its alt.
    Lines are left long: |wrap them."""
    parser = _TextParser()
    parser.feed(str(value))
    parser.close()
    text = "".join(parser.out)
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n ")


class _TextParser(HTMLParser):
    # Elements that start a paragraph of their own.
    _BLOCKS = frozenset(
        {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote", "pre"}
        | {"hr", "table", "tr", "figure"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._links: list[str | None] = []
        self._link_text: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCKS:
            self.out.append("\n\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "br":
            self.out.append("\n")
        elif tag == "a":
            self._links.append(dict(attrs).get("href"))
            self._link_text.append(len(self.out))
        elif tag == "img" and (alt := dict(attrs).get("alt")):
            self.out.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._BLOCKS:
            self.out.append("\n\n")
        elif tag == "a" and self._links:
            href = self._links.pop()
            label = "".join(self.out[self._link_text.pop() :]).strip()
            if href and href != label:
                self.out.append(f" <{href}>")

    def handle_data(self, data: str) -> None:
        # Whitespace in HTML is a space, whatever the source's line breaks; between block
        # elements ("</li>\n<li>") it is nothing.
        if data.isspace() and (not self.out or self.out[-1].endswith("\n")):
            return
        self.out.append(re.sub(r"\s+", " ", data))


def tidy(text: str) -> str:
    """Runs of blank lines collapsed to one, none at the start, one newline at the end."""
    text = re.sub(r"\n(?:[ \t]*\n){2,}", "\n\n", text)
    return text.lstrip("\n").rstrip() + "\n"
