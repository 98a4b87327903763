"""How deep an HTML5 parser would nest a fragment, estimated in one linear pass.

nh3 parses with html5ever, which, like every HTML5 parser, keeps a stack of open elements
and a list of formatting elements to re-open (``<p><b>a</p><p>b`` re-opens the ``<b>`` in
the second paragraph). Several steps of the algorithm scan that stack or list, so the cost
grows with the square of the depth: 20,000 nested ``<div>``s take 4 s to sanitise, 300,000
more than 5 minutes. Formatting elements left open are re-opened at every paragraph, so
5,000 ``<p><b id=N>x</p>`` (94 KB) take 80 s and come out as megabytes.

``check_nesting`` reads the tags once with a small model of that stack and list, and refuses
a fragment that the model nests deeper than MAX_DEPTH or that makes it re-open more than
MAX_REOPENED elements, before nh3 sees it. The model follows the HTML5 rules that decide the
depth of ordinary markup (void elements, raw text, the implied end of ``p``, ``li``, ``td``
and friends, end tags ignored out of scope, the formatting list with its markers and its
limit of three equal entries); where it simplifies, it errs towards deeper. Every step is
O(1) (a stack of positions per tag name), so the pass is linear however hostile the input.

It is an estimate, not a parser: markup crafted against the model can still be slow, and
the parser processes' CPU limit (workers.py) ends that.
"""

from __future__ import annotations

import re

# Real HTML rarely nests past 30 (a post's blocks inside a theme's layout); Chromium and
# WebKit stop nesting at 512. Up to 256 the square barely shows: a 1.5 MB entry of <div>s
# nested 255 deep takes 1.6 times as long as one of ordinary paragraphs, where 20,000 deep
# take nh3 nine times as long for a seventh of the bytes (bench/hostile.py).
MAX_DEPTH = 256
# Each re-opened formatting element is a new element in the output. A sloppy post with one
# unclosed <b> re-opens it once per paragraph; 10,000 is a hundred paragraphs re-opening a
# hundred each, far past anything an editor produces.
MAX_REOPENED = 10_000


class TooDeeplyNested(ValueError):
    """An HTML fragment that would cost the HTML parser too much to read."""


# "<em>text</em>", "<a href=...>text</a>": a phrasing element holding only text, closed by
# its own end tag, leaves the stack as its text would (any implied end it would cause only
# makes the model deeper; the model keeps a level free for the leaf itself), so one C-speed
# pass turns those into text before the Python loop: they are most of the tags of a post.
# Guards: not after "<", "</", "<!" or "<?" (a new tag would appear), and no "--" or ">"
# inside (a comment's end would vanish).
_PHRASING_LEAF = re.compile(
    r"""<(?<![<!?/\-\[]<)
    (a|abbr|b|bdi|bdo|big|cite|code|data|del|dfn|em|font|i|ins|kbd|mark|nobr|q|s|samp|small
    |span|strike|strong|sub|sup|time|tt|u|var)(?=[\t\n\f\r />])
    [^<>-]*(?:-(?!-)[^<>-]*)*>[^<>]*</\1[\t\n\f\r ]*>""",
    re.VERBOSE,
)
_TOKEN = re.compile(
    r"""<(?:
        !--(?:>|->|.*?(?:--!?>|\Z))                         # a comment
      | (?:[!?]|/(?![A-Za-z>]))[^>]*>?                      # <!DOCTYPE, <?xml, </3
      | (?P<end>/?)(?P<name>[A-Za-z][^\t\n\f\r />]*)(?P<attrs>[^>]*)(?P<closed>>?)
    )""",
    re.VERBOSE | re.DOTALL,
)
# Where raw text ends ("<script>" holds no tags).
_RAW_TEXT_END = {
    name: re.compile(rf"</{name}(?=[\t\n\f\r />])[^>]*>?", re.IGNORECASE)
    for name in ("script", "style", "xmp", "iframe", "noembed", "noframes", "textarea", "title")
}
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

_VOID = {
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img",
    "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
}  # fmt: skip
_IGNORED = {"html", "head", "body", "frameset"}  # merged or dropped in a fragment
_FORMATTING = {
    "a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt",
    "u",
}  # fmt: skip
_MARKERS = {"applet", "object", "marquee", "template", "td", "th", "caption"}
_SPECIAL = {
    "address", "applet", "area", "article", "aside", "base", "basefont", "bgsound",
    "blockquote", "body", "br", "button", "caption", "center", "col", "colgroup", "dd",
    "details", "dialog", "dir", "div", "dl", "dt", "embed", "fieldset", "figcaption", "figure",
    "footer", "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head",
    "header", "hgroup", "hr", "html", "iframe", "img", "input", "keygen", "li", "link",
    "listing", "main", "marquee", "menu", "meta", "nav", "noembed", "noframes", "noscript",
    "object", "ol", "p", "param", "plaintext", "pre", "script", "search", "section", "select",
    "source", "style", "summary", "table", "tbody", "td", "template", "textarea", "tfoot",
    "th", "thead", "title", "tr", "track", "ul", "wbr", "xmp",
    "mi", "mo", "mn", "ms", "mtext", "annotation-xml", "foreignobject", "desc",
}  # fmt: skip
# A list item closes the previous one unless a special element other than these is between.
_LIST_ITEM_PASSES = {"address", "div", "p"}
_CLOSES_P = {
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div",
    "dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup", "main", "menu",
    "nav", "ol", "p", "search", "section", "summary", "ul", "h1", "h2", "h3", "h4", "h5", "h6",
    "pre", "listing", "form", "plaintext", "xmp", "table", "hr", "li", "dd", "dt",
}  # fmt: skip
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_TABLE_SECTIONS = ("tbody", "thead", "tfoot")
_CELLS = ("td", "th")
# Start tags that do not re-open formatting elements first (blocks, table parts).
_NO_REOPEN = _SPECIAL - {"applet", "marquee", "object", "area", "br", "embed", "img", "keygen"}

# The default scope: an end tag does not close an element below one of these.
_SCOPE = {"applet", "caption", "html", "table", "td", "th", "marquee", "object", "template"}
# Narrower scopes: a <p> is not closed past a <button>, nor an <li> past a list.
_NARROWER_SCOPE = {"p": ("button",), "li": ("ol", "ul")}
_TABLE_SCOPE = ("html", "table", "template")
_TABLE_PARTS = {"table", *_TABLE_SECTIONS, "tr", *_CELLS, "caption"}
_CLOSED_BY = {
    "caption": ("caption",),
    **dict.fromkeys(_TABLE_SECTIONS, _TABLE_SECTIONS),
    "tr": ("tr",),
    **dict.fromkeys(_CELLS, _CELLS),
}
_ROW_CONTENT = {"tr", *_CELLS}
# Start tags with an implied end of another element, besides those that end a <p>.
_IMPLIED_BY = {*_HEADINGS, *_TABLE_PARTS, "option", "optgroup", "a", "nobr", "button"}
# "/>" closes an element when the slash follows a space, a quote or the tag name: in
# "<g d=a/>" it belongs to the unquoted value "a/".
_BEFORE_SELF_CLOSING = {"", " ", "\t", "\n", "\f", "\r", '"', "'"}


def check_nesting(html: str, max_depth: int = MAX_DEPTH, max_reopened: int = MAX_REOPENED) -> None:
    """Raise TooDeeplyNested if parsing `html` would nest or re-open too much."""
    if _too_few_tags(html, max_depth, max_reopened):
        return
    html = _PHRASING_LEAF.sub("x", html)
    if _too_few_tags(html, max_depth, max_reopened):
        return
    model = _Model(max_depth, max_reopened)
    search = _TOKEN.search
    pos = 0
    while (token := search(html, pos)) is not None:
        if token.start() > pos and model.left_open:
            model.reopen()  # text re-opens the formatting elements left open
        pos = token.end()
        end, name, attrs, closed = token.group("end", "name", "attrs", "closed")
        if name is None:
            continue  # a comment
        if not closed:
            return  # a tag cut short by the end of the input is dropped, with the rest
        name = name.lower() if name.isascii() else name.translate(_ASCII_LOWER)
        if end:
            model.end(name)
        elif model.start(name, attrs):
            return  # <plaintext>: all the rest is text
        elif name in _RAW_TEXT_END and not model.foreign():
            raw_end = _RAW_TEXT_END[name].search(html, pos)
            if raw_end is None:
                return
            pos = raw_end.end()
            model.end(name)
    if len(html) > pos and model.left_open:
        model.reopen()


def _too_few_tags(html: str, max_depth: int, max_reopened: int) -> bool:
    """Whether `html` has too few tags to reach either limit, whatever they are.

    A start tag opens at most three elements (a cell implies its <tbody> and <tr>), and each
    text or start tag re-opens at most one element per formatting tag.
    """
    tags = html.count("<")
    return 3 * tags < max_depth and tags * (2 * tags + 1) <= max_reopened


class _Entry:
    """A formatting element in the list of those to re-open."""

    __slots__ = ("context", "index", "key", "name")

    def __init__(self, name: str, key: str, context: _Context) -> None:
        self.name = name
        self.key = key  # tag and attributes: at most three equal entries are kept
        self.context: _Context | None = context  # None once out of the list
        self.index = -1  # on the stack, or -1 when left open


class _Context:
    """The formatting list after one marker (a cell, an object...)."""

    __slots__ = ("by_name", "equal", "left_open")

    def __init__(self) -> None:
        self.left_open: dict[_Entry, None] = {}  # popped; re-opened at the next text
        self.by_name: dict[str, dict[_Entry, None]] = {}  # ordered sets: O(1) removal
        self.equal: dict[str, list[_Entry]] = {}  # Noah's Ark: at most three equal entries

    def add(self, entry: _Entry) -> None:
        equal = self.equal.setdefault(entry.key, [])
        if len(equal) == 3:
            self.forget(equal[0])
        equal.append(entry)
        self.by_name.setdefault(entry.name, {})[entry] = None

    def forget(self, entry: _Entry) -> None:
        self.left_open.pop(entry, None)
        del self.by_name[entry.name][entry]
        self.equal[entry.key].remove(entry)
        entry.context = None


class _Model:
    """The stack of open elements and the formatting list, as far as depth goes."""

    def __init__(self, max_depth: int, max_reopened: int) -> None:
        self.max_depth = max_depth
        self.max_reopened = max_reopened
        # What the stack may hold: a leaf (<img>, <em>text</em>, <path/>) is one deeper.
        self.room = max_depth - 1
        self.stack: list[str] = []
        self.entries: dict[int, _Entry] = {}  # stack index -> its formatting entry
        self.positions: dict[str, list[int]] = {}  # tag name -> its indexes on the stack
        self.specials: list[int] = []  # indexes of special elements
        self.bounds: list[int] = []  # indexes of the elements that limit the default scope
        self.stoppers: list[int] = []  # special elements a new list item does not pass
        self.contexts = [_Context()]
        self.left_open = self.contexts[0].left_open
        self.reopened = 0

    def start(self, name: str, attrs: str) -> bool:
        """Open an element; True for <plaintext>, after which everything is text."""
        if name in _IGNORED:
            return False
        if name not in _NO_REOPEN and self.left_open:
            self.reopen()
        if name in _VOID:
            return False
        if (
            attrs.endswith("/")
            and attrs[-2:-1] in _BEFORE_SELF_CLOSING
            and (name in ("svg", "math") or self.foreign())
        ):
            return False  # "/>" closes an element in SVG and MathML only
        if name in _TABLE_PARTS and name != "table" and self.top("table") < 0:
            return False  # table parts outside a table are dropped
        if name in _CLOSES_P or name in _IMPLIED_BY:
            self.close_implied(name)
        if name in _FORMATTING:
            context = self.contexts[-1]
            entry = _Entry(name, name + attrs, context)
            context.add(entry)
            self.push(name, entry)
        else:
            self.push(name)
        return name == "plaintext"

    def end(self, name: str) -> None:
        if name in _IGNORED:
            return
        if name == "br":  # "</br>" is read as "<br>"
            if self.left_open:
                self.reopen()
            return
        if name in _FORMATTING:
            entries = self.contexts[-1].by_name.get(name)
            if entries:
                self.end_formatting(next(reversed(entries)))
                return
        index = self.top(name)
        if index < 0:
            return
        if name in _SPECIAL:
            if name in _TABLE_PARTS:
                in_scope = self.none_above(index, _TABLE_SCOPE)
            else:
                in_scope = self.in_scope(index, _NARROWER_SCOPE.get(name, ()))
            if in_scope:
                self.pop_to(index)
        elif self.top_of(self.specials) < index:  # any other end tag: not past a special one
            self.pop_to(index)

    # --- the HTML5 rules, simplified ---

    def close_implied(self, name: str) -> None:
        if name in _CLOSES_P:
            index = self.top("p")
            if index >= 0 and self.in_scope(index, _NARROWER_SCOPE["p"]):
                self.pop_to(index)
        stack = self.stack
        if name in _HEADINGS:
            if stack and stack[-1] in _HEADINGS:
                self.pop_to(len(stack) - 1)
        elif name == "li" or name == "dd" or name == "dt":
            index = self.top("li") if name == "li" else max(self.top("dd"), self.top("dt"))
            if index >= 0 and self.top_of(self.stoppers) == index:
                self.pop_to(index)
        elif name in _TABLE_PARTS:
            self.close_table_part(name)
        elif name == "option" or name == "optgroup":
            if stack and stack[-1] == "option":
                self.pop_to(len(stack) - 1)
        elif name == "a" or name == "nobr":
            entries = self.contexts[-1].by_name.get(name)
            if entries:  # a new link ends the one still open
                self.end_formatting(next(reversed(entries)))
        elif name == "button":
            index = self.top("button")
            if index >= 0 and self.in_scope(index):
                self.pop_to(index)

    def close_table_part(self, name: str) -> None:
        table = self.top("table")
        if name == "table":
            return
        index = max(self.top(part) for part in _CLOSED_BY[name])
        if index > table and self.none_above(index, _TABLE_SCOPE):
            self.pop_to(index)
        # The parser adds the <tbody> and <tr> a cell or row needs.
        if name in _ROW_CONTENT and max(self.top(part) for part in _TABLE_SECTIONS) < table:
            self.push("tbody")
        if name in _CELLS and self.top("tr") < table:
            self.push("tr")

    def end_formatting(self, entry: _Entry) -> None:
        """The adoption agency, as far as depth goes."""
        index = entry.index
        if index < 0:
            self.contexts[-1].forget(entry)  # left open: it is no longer re-opened
        elif not self.in_scope(index):
            return
        elif self.top_of(self.specials) > index:
            # A block inside the formatting element: the parser moves the block under a
            # copy of it, which leaves the stack as deep as it was.
            return
        else:
            self.contexts[-1].forget(entry)
            self.pop_to(index)

    def reopen(self) -> None:
        left_open = self.left_open
        self.reopened += len(left_open)
        if self.reopened > self.max_reopened:
            raise TooDeeplyNested(
                f"HTML re-opens more than {self.max_reopened:,} unclosed formatting elements"
            )
        entries = list(left_open)
        left_open.clear()
        for entry in entries:
            self.push(entry.name, entry)

    # --- the stack ---

    def push(self, name: str, entry: _Entry | None = None) -> None:
        index = len(self.stack)
        if index >= self.room:
            raise TooDeeplyNested(f"HTML nests elements more than {self.max_depth} deep")
        self.stack.append(name)
        positions = self.positions.get(name)
        if positions is None:
            self.positions[name] = [index]
        else:
            positions.append(index)
        if entry is not None:
            entry.index = index
            self.entries[index] = entry
        elif name in _SPECIAL:
            self.specials.append(index)
            if name not in _LIST_ITEM_PASSES:
                self.stoppers.append(index)
            if name in _SCOPE:
                self.bounds.append(index)
            if name in _MARKERS:
                self.contexts.append(_Context())
                self.left_open = self.contexts[-1].left_open

    def pop_to(self, index: int) -> None:
        """Pop the element at `index` and everything above it."""
        stack, entries = self.stack, self.entries
        while len(stack) > index:
            name = stack.pop()
            top = len(stack)
            self.positions[name].pop()
            entry = entries.pop(top, None)
            if entry is not None:
                entry.index = -1
                if entry.context is not None:  # still listed: re-opened at the next text
                    entry.context.left_open[entry] = None
            elif name in _SPECIAL:
                self.specials.pop()
                if name not in _LIST_ITEM_PASSES:
                    self.stoppers.pop()
                if name in _SCOPE:
                    self.bounds.pop()
                if name in _MARKERS:  # its formatting list goes with it
                    self.contexts.pop()
                    self.left_open = self.contexts[-1].left_open

    def top(self, name: str) -> int:
        indexes = self.positions.get(name)
        return indexes[-1] if indexes else -1

    @staticmethod
    def top_of(indexes: list[int]) -> int:
        return indexes[-1] if indexes else -1

    def in_scope(self, index: int, narrower: tuple[str, ...] = ()) -> bool:
        """Whether an end tag reaches the element at `index` (the parser's "in scope")."""
        if self.bounds and self.bounds[-1] > index:
            return False
        return self.none_above(index, narrower)

    def none_above(self, index: int, boundaries: tuple[str, ...]) -> bool:
        positions = self.positions
        for name in boundaries:
            indexes = positions.get(name)
            if indexes and indexes[-1] > index:
                return False
        return True

    def foreign(self) -> bool:
        return self.top("svg") >= 0 or self.top("math") >= 0
