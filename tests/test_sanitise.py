"""Sanitising: what must vanish, what must stay, URLs made absolute, text that reads well."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.markup.sanitise import (
    excerpt,
    first_image,
    html_to_text,
    plain_title,
    sanitise_html,
)

BASE = "https://blog.example/2026/06/post/"


class Collector(HTMLParser):
    """Every start tag and attribute in a document, the way a browser would see them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def parse(html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = Collector()
    collector.feed(html)
    collector.close()
    return collector.tags


@pytest.mark.parametrize(
    "html",
    ["<div>" * 1_000 + "x", "".join(f"<p><b id={n}>x</p>" for n in range(600))],
    ids=["nested", "re-opened"],
)
def test_html_too_deep_for_the_parser_is_refused(html: str) -> None:
    # An HTML parser's work grows with the square of the depth (see nesting.py): refused
    # before nh3 reads it, whether it is a post's body or an HTML title.
    refused = r"^HTML (nests elements more than 256 deep|re-opens more than 10,000 unclosed)"
    with pytest.raises(ValueError, match=refused):
        sanitise_html(html, BASE)
    with pytest.raises(ValueError, match=refused):
        plain_title(html, is_html=True)


def test_script_style_iframe_and_form_vanish_with_their_content() -> None:
    html = (
        "<p>keep</p><script>alert('x')</script><style>p { color: red }</style>"
        '<iframe src="https://evil.example/">fallback text</iframe>'
        "<form action='/x'><input name=a>form text<button>go</button></form>"
        "<noscript><img src=x></noscript>"
    )
    assert sanitise_html(html, BASE) == "<p>keep</p>"


def test_event_handlers_and_unlisted_attributes_are_removed() -> None:
    out = sanitise_html(
        '<div onclick="steal()" class="x" style="color:red" id="y"><p onmouseover="z">t</p></div>',
        BASE,
    )
    assert out == "<div><p>t</p></div>"


def test_dangerous_urls_are_dropped_but_link_text_stays() -> None:
    html = (
        '<a href="javascript:alert(1)">one</a> <a href="data:text/html,<b>x</b>">two</a> '
        '<a href="vbscript:msgbox">three</a> <a href=" JaVa&#x09;Script:alert(1)">four</a> '
        '<img src="data:image/png;base64,AAAA"><blockquote cite="javascript:x">q</blockquote>'
    )
    out = sanitise_html(html, BASE)
    assert "script:" not in out.lower()
    assert "data:" not in out
    assert "href" not in out and "src" not in out and "cite" not in out
    assert html_to_text(out) == "one two three four\n\nq"


def test_relative_urls_are_made_absolute() -> None:
    out = sanitise_html(
        '<a href="/about/">a</a><img src="../img/x.png" alt="x">'
        '<q cite="sources.html">c</q><a href="#notes">n</a><a href="//cdn.example/f">f</a>',
        BASE,
    )
    assert [attrs.get("href") or attrs.get("src") for _, attrs in parse(out)] == [
        "https://blog.example/about/",
        "https://blog.example/2026/06/img/x.png",
        None,  # <q> stays, its cite (invisible, and unchecked by nh3) does not
        "https://blog.example/2026/06/post/#notes",
        "https://cdn.example/f",
    ]


def test_relative_urls_stay_relative_without_a_base() -> None:
    out = sanitise_html('<a href="/about/">a</a><img src="x.png">', None)
    assert 'href="/about/"' in out and 'src="x.png"' in out


def test_absolute_and_mailto_urls_are_kept() -> None:
    out = sanitise_html(
        '<a href="https://other.example/a?b=1&amp;c=2">x</a><a href="mailto:hi@x.example">m</a>',
        BASE,
    )
    hrefs = [attrs["href"] for _, attrs in parse(out)]
    assert hrefs == ["https://other.example/a?b=1&c=2", "mailto:hi@x.example"]


def test_empty_src_is_dropped_rather_than_pointing_at_the_page() -> None:
    assert sanitise_html('<img src="" alt="a">', BASE) == '<img alt="a">'


def test_an_unparseable_url_is_dropped_without_raising() -> None:
    assert (
        sanitise_html('<a href="http://[::1/x">x</a>', BASE) == '<a rel="noopener nofollow">x</a>'
    )


def test_links_get_noopener_nofollow_replacing_their_own_rel() -> None:
    out = sanitise_html('<a href="https://x.example/" rel="me author" target="_blank">x</a>', BASE)
    assert out == '<a href="https://x.example/" rel="noopener nofollow">x</a>'


def test_control_characters_are_stripped_raw_and_as_references() -> None:
    out = sanitise_html("<p>a\x00b\x01c\x1bd\x7fe\x85f&#1;g&#x1f;h\ud800i\ufffej\tk\nl</p>", BASE)
    assert out == "<p>abcdefghij\tk\nl</p>"


def test_entities_are_kept_escaped_and_decoded_where_needed() -> None:
    out = sanitise_html("<p>Fish &amp; chips &lt;3 &eacute;t&eacute; &#8217; &nbsp;</p>", BASE)
    assert out == "<p>Fish &amp; chips &lt;3 été \u2019 &nbsp;</p>"


def test_blog_markup_is_kept() -> None:
    html = (
        "<h2>Heading</h2><p><em>e</em> <strong>s</strong> <code>c</code> <sub>1</sub>"
        '<abbr title="World Wide Web">WWW</abbr> <time datetime="2026-06-01">June</time></p>'
        "<figure><img src='https://x.example/a.jpg' alt='A' width='10' height='20'>"
        "<figcaption>cap</figcaption></figure><pre><code>x = 1</code></pre><hr>"
        "<table><caption>T</caption><thead><tr><th colspan='2'>h</th></tr></thead>"
        "<tbody><tr><td rowspan='2'>a</td><td>b</td></tr></tbody></table>"
        "<ol><li>one</li></ol><dl><dt>t</dt><dd>d</dd></dl>"
    )
    tags = parse(sanitise_html(html, BASE))
    names = [tag for tag, _ in tags]
    assert names == [
        "h2", "p", "em", "strong", "code", "sub", "abbr", "time", "figure", "img",
        "figcaption", "pre", "code", "hr", "table", "caption", "thead", "tr", "th",
        "tbody", "tr", "td", "td", "ol", "li", "dl", "dt", "dd",
    ]  # fmt: skip
    attrs = dict(tags)
    assert attrs["img"] == {
        "src": "https://x.example/a.jpg",
        "alt": "A",
        "width": "10",
        "height": "20",
    }
    assert attrs["th"] == {"colspan": "2"}
    assert attrs["abbr"] == {"title": "World Wide Web"}
    assert attrs["time"] == {"datetime": "2026-06-01"}


def test_sanitising_is_idempotent() -> None:
    once = sanitise_html('<p onclick=x>a <a href="/b">b</a><img src="c.png"></p>', BASE)
    assert sanitise_html(once, BASE) == once


def test_each_thread_uses_its_own_base_url() -> None:
    def run(n: int) -> str:
        return sanitise_html('<a href="x">x</a>' * 50, f"https://h{n}.example/")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(200)))
    for n, out in enumerate(results):
        assert out.count(f"https://h{n}.example/x") == 50


def test_html_to_text_keeps_word_boundaries() -> None:
    html = (
        "Intro<p>One</p>\n<p>Two<br>three\n  same   line</p><ul><li>a</li><li>b</li></ul>"
        "<h2>Head</h2><div>d</div><table><tr><th>h1</th><th>h2</th></tr>"
        "<tr><td>x</td><td>y</td></tr></table><pre>l1\n  l2</pre>"
        "<script>hidden()</script>end&nbsp;&amp; &lt;done&gt;"
    )
    assert html_to_text(html) == (
        "Intro\n\nOne\n\nTwo\nthree same line\n\na\nb\n\nHead\n\nd\n\nh1 h2\nx y\n\nl1\nl2\n\n"
        "end & <done>"
    )


def test_html_to_text_of_nothing() -> None:
    assert html_to_text("") == ""
    assert html_to_text("  <p> </p> <br> ") == ""


def test_excerpt_cuts_at_a_word_boundary() -> None:
    html = "<p>The quick brown fox</p><p>jumps over the lazy dog.</p>"
    assert excerpt(html) == "The quick brown fox jumps over the lazy dog."
    assert excerpt(html, 18) == "The quick brown…"
    assert excerpt(html, 20) == "The quick brown fox…"  # the cut falls just before a space
    assert excerpt("<p>one, two, three</p>", 11) == "one, two…"  # no dangling comma
    assert excerpt("<p>Supercalifragilistic</p>", 8) == "Superca…"  # one long word: hard cut
    assert excerpt("<p>abc</p>", 0) == ""
    for limit in range(1, 50):
        assert len(excerpt(html, limit)) <= limit


def test_first_image() -> None:
    html = sanitise_html('<p>x</p><img alt="a > b" src="/i/1.png?a=1&b=2"><img src="2.png">', BASE)
    assert first_image(html) == "https://blog.example/i/1.png?a=1&b=2"
    assert first_image("<p>no images</p>") is None
    assert first_image(sanitise_html('<img src="javascript:x">', BASE)) is None


def test_plain_title() -> None:
    assert plain_title("Fish & <Ships>", is_html=False) == "Fish & <Ships>"
    assert plain_title("  Two\n lines\x00 ", is_html=False) == "Two lines"
    assert (
        plain_title("Fish &amp; &lt;Ships&gt; <b>bold</b>", is_html=True) == "Fish & <Ships> bold"
    )
    assert plain_title("Caf&eacute; <script>x()</script>M&uuml;ller", is_html=True) == "Café Müller"


DANGEROUS = [
    "<script>",
    "</script>",
    "<script src=//evil.example/x.js>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">',
    "<a href=javascript:alert(1)>",
    '<a href="jav&#x09;ascript:alert(1)">',
    '<a href=" javascript:alert(1)">',
    '<a href="data:text/html;base64,PHNjcmlwdD4=">',
    '<a href="vbscript:x">',
    '<svg onload="alert(1)">',
    "<iframe srcdoc='<script>alert(1)</script>'>",
    "<style>",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    '<div onclick="x" ',
    "<p title='",
    "'>",
    '"',
    "<math><mi xlink:href=javascript:alert(1)>",
    "<blockquote cite=javascript:x>",
    "<noscript>",
    "<textarea>",
    "<a",
    ">",
    "<",
    "&lt;script&gt;",
    "&#0;",
    "\x00",
    "javascript:",
    " onclick=",
    "<p>",
    "text",
]
SAFE_SCHEMES = {"", "http", "https", "mailto"}


def assert_safe(out: str) -> None:
    """No script element, no event handler, no URL attribute with a scheme that runs code.

    Checked on the parsed output: nh3 escapes "<" even inside attribute values, so the text
    "<script" cannot appear at all, but "javascript:" or " onclick=" may appear as text.
    """
    assert "<script" not in out.lower()
    for tag, attrs in parse(out):
        assert tag not in {"script", "style", "iframe", "svg", "math", "noscript", "textarea"}
        for name, value in attrs.items():
            assert not name.startswith("on"), (name, out)
            # Text such as "javascript:" in a title or alt is only text; URLs are what run.
            if name in {"href", "src", "cite"}:
                assert urlsplit(value or "").scheme in SAFE_SCHEMES, (name, value, out)


@settings(max_examples=500)
@given(st.text(), st.one_of(st.none(), st.just(BASE)))
def test_sanitise_never_raises_on_any_text(text: str, base: str | None) -> None:
    assert_safe(sanitise_html(text, base))
    html_to_text(text)
    excerpt(text, 40)
    plain_title(text, is_html=True)
    first_image(text)


@settings(max_examples=1000)
@given(st.lists(st.one_of(st.sampled_from(DANGEROUS), st.text(max_size=5)), max_size=30))
def test_sanitise_is_safe_on_dangerous_fragments(parts: list[str]) -> None:
    out = sanitise_html("".join(parts), BASE)
    assert_safe(out)
    assert sanitise_html(out, BASE) == out
