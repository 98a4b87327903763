"""The nesting check: hostile shapes are refused before nh3 parses them, real markup passes,
and the estimate is never shallower than the tree nh3 (html5ever) really builds."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nh3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate.ingest.parse import parse_feed
from syndicate.markup.nesting import MAX_DEPTH, TooDeeplyNested, check_nesting

ROOT = Path(__file__).resolve().parent.parent
FORMATTING = ["b", "i", "u", "s", "em", "strong", "small", "code", "big", "tt", "font", "nobr"]

HOSTILE = {
    # The item: 300,000 nested <div>s, 1.5 MB.
    "nested divs": "<div>" * 300_000 + "x",
    "nested and closed": "<div>" * 5_000 + "x" + "</div>" * 5_000,
    "nested spans": "<span>" * 5_000 + "x",
    "nested lists": "<ul><li>" * 5_000,
    "nested tables": "<table><tr><td>" * 5_000,
    "unclosed formatting": "".join(f"<b id={n}>" for n in range(5_000)) + "x",
    # Each paragraph re-opens every <b> left open before it: 80 s in nh3 for 94 KB.
    "re-opened per paragraph": "".join(f"<p><b id={n}>x</p>" for n in range(5_000)),
    # Three of each formatting tag stay open (the parser keeps three equal ones), re-opened
    # at every paragraph: 36 elements per 8 bytes.
    "many re-opened": "<p>" + "".join(f"<{t}>" * 3 for t in FORMATTING) + "</p><p>x" * 20_000,
    # End tags the parser ignores (out of scope, inside a comment, an attribute, raw text).
    "end tag out of scope": "<div><object></div></object>" * 5_000,
    "list item end tag out of scope": "<li><ul></li>" * 5_000,
    "end tag in a comment": "<div><!--</div>-->" * 5_000,
    "end tag in an attribute": '<div><img alt="</div>">' * 5_000,
    "end tag in a script": "<div><script>'</div>'</script>" * 5_000,
    "block inside formatting": "<b><div></b>" * 5_000,
    "nested svg": "<svg>" + "<g>" * 5_000,
}


@pytest.mark.parametrize("html", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_nesting_is_refused(html: str) -> None:
    refused = r"^HTML (nests elements more than 256 deep|re-opens more than 10,000 unclosed)"
    with pytest.raises(TooDeeplyNested, match=refused):
        check_nesting(html)


SLOPPY_BUT_REAL = {
    "unclosed bold per paragraph": "<p><b>Q:</b> a<p><b>Q:</b> b" + "<p><b>x</p>" * 3_000,
    "unclosed cells": "<table>" + "<tr><td>a<td>b<td><font face=Arial>c" * 2_000 + "</table>",
    "unclosed list items": "<ul>" + "<li><p>item" * 2_000 + "</ul>",
    "definition list": "<dl>" + "<dt>a<dd>b" * 2_000 + "</dl>",
    "unclosed headings": "<h2>a<h2>b" * 1_000,
    "unclosed links": "".join(f'<a href="/{n}">x' for n in range(3_000)),
    "tags in scripts": "<div>" + "<script>var a = '<div><div>';</script>" * 1_000 + "</div>",
    "block editor comments": "<!-- wp:paragraph --><p>x</p><!-- /wp:paragraph -->" * 3_000,
    "inline svg": ("<svg viewBox='0 0 1 1'>" + '<path d="M0 0"/>' * 300 + "</svg>") * 10,
    "deep but not too deep": "<div>" * (MAX_DEPTH - 1) + "x" + "</div>" * (MAX_DEPTH - 1),
}


@pytest.mark.parametrize("html", SLOPPY_BUT_REAL.values(), ids=SLOPPY_BUT_REAL.keys())
def test_sloppy_but_real_markup_passes(html: str) -> None:
    check_nesting(html)


def test_the_bundled_and_benchmark_feeds_pass(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from feeds import write_feeds  # the benchmark's WordPress block-editor markup
    finally:
        sys.path.remove(str(ROOT / "bench"))
    paths = [*write_feeds(tmp_path, 3, 20, "wordpress"), *(ROOT / "examples").glob("*.*")]
    checked = 0
    for path in paths:
        if path.suffix in (".md", ".json"):
            continue
        for entry in parse_feed(path.read_bytes(), "https://blog.example/feed").entries:
            for html in (entry.content, entry.summary):
                if html:
                    check_nesting(html)
                    checked += 1
    assert checked > 60


# --- the estimate against the tree html5ever builds ---

VOCABULARY = [
    *FORMATTING, "a", "span", "div", "p", "ul", "ol", "li", "dl", "dt", "dd", "table", "tbody",
    "tr", "td", "th", "caption", "h2", "h3", "blockquote", "pre", "section", "figure",
    "figcaption", "sub", "sup", "br", "hr", "img",
]  # fmt: skip
VOID = {"br", "hr", "img"}
tag = st.sampled_from(VOCABULARY)
token = st.one_of(
    tag.map(lambda name: f"<{name}>"),
    st.tuples(tag, st.integers(0, 3)).map(lambda t: f"<{t[0]} id={t[1]}>"),  # Noah's Ark
    tag.map(lambda name: f"</{name}>"),
    st.sampled_from(["x", " ", "<!-- c -->", "<script>'</p>'</script>"]),
)


def tree_depth(html: str) -> int:
    """The depth of nh3's output, which is well formed: every element is closed."""
    depth = deepest = 0
    for end, name in re.findall(r"<(/?)([a-z0-9]+)", html):
        if name in VOID:  # a leaf
            deepest = max(deepest, depth + 1)
            continue
        depth += -1 if end else 1
        deepest = max(deepest, depth)
    return deepest


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(token, min_size=1, max_size=120), st.integers(2, 12))
def test_the_estimate_is_never_shallower_than_the_tree(tokens: list[str], limit: int) -> None:
    html = "".join(tokens)
    tree = nh3.clean(html, tags=set(VOCABULARY), attributes={}, clean_content_tags={"script"})
    if tree_depth(tree) > limit:
        with pytest.raises(TooDeeplyNested):
            check_nesting(html, max_depth=limit, max_reopened=10**9)
