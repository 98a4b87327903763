"""Text on its way to a terminal, made inert: the one edge every message and cell goes through.

    say(f"poll {name}: failed: {error}")        # click.echo, control characters escaped
    table.add_row(*(cell(v) for v in values))   # rich: literal text, never markup

Much of what syndicate prints was written by someone else: a feed server's HTTP reason or
Location header, an SMTP server's reply, a subscriber's name from the web form, a line of an
imported CSV. Printed raw, an escape sequence could retitle the terminal, rewrite what is on
screen or forge a hyperlink, a carriage return could hide the start of a line, and rich would
read "[link=http://evil]" as markup (as it eats our own "[ingest] max_size"). So control
characters (C0 but tab, DEL, C1, line separators and the bidi overrides that reorder what is
shown) become visible escapes such as ``\\x1b``, and rich gets Text, which it never parses.
"""

from __future__ import annotations

import click
from rich.text import Text

_BIDI = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))  # embeddings, overrides, isolates
_ESCAPES: dict[int, str] = {
    **{code: f"\\x{code:02x}" for code in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))},
    **{code: f"\\u{code:04x}" for code in (0x2028, 0x2029, *_BIDI)},
    0x0A: "\\n",
    0x0D: "\\r",
}
del _ESCAPES[0x09]  # a tab moves the cursor right, nothing more
_ESCAPES_BUT_NEWLINES = {code: escape for code, escape in _ESCAPES.items() if code != 0x0A}


def printable(text: object, *, newlines: bool = False) -> str:
    """`text` with every control character shown as an escape; one line unless `newlines`
    (a traceback in a log keeps its lines)."""
    return str(text).translate(_ESCAPES_BUT_NEWLINES if newlines else _ESCAPES)


def cell(text: object) -> Text:
    """A table cell for rich: printed literally, brackets and all."""
    return Text(printable(text))


def say(text: object, *, err: bool = False) -> None:
    """Print one message line (stdout, or stderr with `err`)."""
    click.echo(printable(text), err=err)
