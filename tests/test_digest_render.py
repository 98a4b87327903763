"""Rendering the digest email: escaping, inlined CSS, the text part, personalisation with
markers, the web copy, the subject, golden files, and template mistakes named by line.

The shipped templates (templates/email/) are what these tests render, so a change a
subscriber would see shows up here. Set SYNDICATE_UPDATE_GOLDEN=1 to rewrite the golden
files after a deliberate change, and read the diff.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from syndicate.digest.context import (
    DigestContext,
    DigestGroup,
    DigestPeriod,
    DigestPost,
    DigestSite,
    DigestSubscriber,
    DigestUrls,
)
from syndicate.digest.render import DigestRenderer, RenderedDigest
from syndicate.plaintext import plaintext, wrap
from syndicate.templating import TemplateProblem

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
SUBJECT = "{{ site.title }}: {{ period.label }}"

SITE = "https://news.example.org"
FEEDS = f"{SITE}/feeds"
FORUM = "https://forum.example.org"
# New York, so a post published at 03:00 UTC on the 9th is dated the 8th.
ZONE = "America/New_York"

ANN = DigestSubscriber("Ann", "ann@example.org", "Hello Ann,")
UNSUBSCRIBE = f"{SITE}/unsubscribe/tok-ann?a=1&b=2"
PREFERENCES = f"{SITE}/preferences/tok-ann"
HOSTILE = DigestSubscriber(
    'Eve "<script>alert(1)</script>', "eve@example.org", 'Hello Eve "<script>alert(1)</script>,'
)
# Anything a marker could leave behind: the markers themselves and their pieces.
LEAKS = re.compile(r"%%|SYNDICATE-", re.IGNORECASE)


def post(n: int, **changes: object) -> DigestPost:
    base = DigestPost(
        title=f"Post {n}",
        url=f"{SITE}/2015/12/post-{n}/",
        excerpt=f"The first lines of post {n}.",
        image=None,
        author="Ann Author",
        category="News",
        source="Riverside blog",
        date=datetime(2015, 12, 9, 3, 0, tzinfo=UTC),
        discussion_url=None,
        reply_count=None,
        categories=("News",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


SCRIPT = post(
    1,
    title="<script>alert(1)</script> and a title",
    excerpt="Someone typed <script>alert(2)</script> into the excerpt, & more.",
    category="Events",
    categories=("Events",),
)
FISH = post(
    2,
    title="Fish & <Ships>",
    excerpt=(
        "A long excerpt that has to be wrapped in the text part, because text email is read "
        "at 72 columns or so, and a link like https://news.example.org/a/very/long/path/that"
        "/must/not/be/broken/in/the/middle stays whole."
    ),
    image=f"{SITE}/images/fish.jpg",
    image_alt='A boat & its "nets" <at dawn>',
    image_width=300,
    image_height=200,
    discussion_url=f"{FORUM}/t/fish-ships/12",
    reply_count=12,
)
QUIET = post(3, title="A quiet post", author="", discussion_url=f"{FORUM}/t/quiet/13")
BARE = post(4, title="No category", category="", categories=(), excerpt="", source="")
POSTS = (SCRIPT, FISH, QUIET, BARE)


def context(**changes: object) -> DigestContext:
    """The December 2015 issue, grouped by category like digest/build.py does."""
    base = DigestContext(
        site=DigestSite("Riverside News", SITE, "News from the river", "en", ZONE),
        period=DigestPeriod(
            "2015-12",
            "December 2015",
            datetime(2015, 12, 1, 5, tzinfo=UTC),
            datetime(2016, 1, 1, 5, tzinfo=UTC),
        ),
        groups=(
            DigestGroup("Events", (SCRIPT,)),
            DigestGroup("News", (FISH, QUIET)),
            DigestGroup("Other", (BARE,)),
        ),
        posts=POSTS,
        urls=DigestUrls(
            view_in_browser=f"{FEEDS}/digest/2015-12.html",
            archive=f"{FEEDS}/archive/2015-12.html",
            feeds=f"{FEEDS}/index.rss",
        ),
        subscriber=DigestSubscriber("", "", "Hello,"),
        intro_html=(
            '<p>A <strong>busy</strong> month &amp; a <a href="https://news.example.org/donate">'
            "donation drive</a>.</p>\n<ul>\n<li>Item one</li>\n<li>Item two</li>\n</ul>"
        ),
        more=3,
        preheader="4 posts from December 2015: <script>alert(1)</script> and a title",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def renderer() -> DigestRenderer:
    return DigestRenderer(REPO / "templates", SUBJECT)


@pytest.fixture(scope="module")
def rendered(renderer: DigestRenderer) -> RenderedDigest:
    return renderer.render(context())


@pytest.fixture(scope="module")
def mail(rendered: RenderedDigest) -> tuple[str, str]:
    return rendered.personalise(ANN, UNSUBSCRIBE, PREFERENCES)


# --- a small DOM, so tests assert structure rather than substrings ---------------------------

VOID = {"meta", "link", "img", "br", "hr", "input", "source", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def all(self, tag: str, cls: str | None = None) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                classes = (child.attrs.get("class") or "").split()
                if child.tag == tag and (cls is None or cls in classes):
                    found.append(child)
                found.extend(child.all(tag, cls))
        return found

    def one(self, tag: str, cls: str | None = None) -> Node:
        found = self.all(tag, cls)
        assert len(found) == 1, f"{len(found)} <{tag} class={cls}>"
        return found[0]


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        while len(self.stack) > 1:
            if self.stack.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def dom(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def style_of(node: Node) -> dict[str, str]:
    declarations = (node.attrs.get("style") or "").split(";")
    return dict(
        (name.strip(), value.strip())
        for name, _, value in (d.partition(":") for d in declarations if d.strip())
    )


# --- HTML --------------------------------------------------------------------------------------


def test_post_data_is_escaped(mail: tuple[str, str]) -> None:
    html, _ = mail
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; and a title" in html
    assert "Fish &amp; &lt;Ships&gt;" in html
    titles = [a.text() for a in dom(html).all("h3", "post-title")]
    assert titles == [
        "<script>alert(1)</script> and a title",
        "Fish & <Ships>",
        "A quiet post",
        "No category",
    ]


def test_the_intro_is_the_only_markup_from_data(mail: tuple[str, str]) -> None:
    intro = dom(mail[0]).one("div", "intro")
    assert intro.one("strong").text() == "busy"
    assert intro.one("a").attrs["href"] == "https://news.example.org/donate"


def test_css_is_inlined_and_media_queries_kept(mail: tuple[str, str]) -> None:
    html, _ = mail
    tree = dom(html)
    assert len(tree.all("style")) == 1
    style = tree.one("style").text()
    assert "@media (max-width: 480px)" in style
    assert "@media (prefers-color-scheme: dark)" in style
    assert "<link" not in html
    assert style_of(tree.one("table", "container"))["max-width"] == "600px"
    assert style_of(tree.all("h3", "post-title")[0])["font-size"] == "20px"
    # Only @media rules stay: every top-level rule went into style="" attributes.
    assert style.startswith("@media")
    assert not re.search(r"^(body|\.[a-z-]+)[ ,{]", style, re.MULTILINE)


def test_email_layout(mail: tuple[str, str]) -> None:
    html, _ = mail
    assert html.lower().startswith("<!doctype html>")
    tree = dom(html)
    assert tree.one("html").attrs["lang"] == "en"
    metas = {m.attrs.get("name"): m.attrs.get("content") for m in tree.all("meta")}
    assert metas["color-scheme"] == "light dark"
    assert metas["viewport"] == "width=device-width, initial-scale=1"
    tables = tree.all("table")
    assert tables and all(t.attrs.get("role") == "presentation" for t in tables)
    assert '<!--[if mso]><table role="presentation" width="600"' in html
    assert tree.one("title").text() == "Riverside News: December 2015"


def test_preheader_is_present_and_hidden(mail: tuple[str, str]) -> None:
    tree = dom(mail[0])
    preheader = tree.one("div", "preheader")
    assert preheader.text().startswith(
        "4 posts from December 2015: <script>alert(1)</script> and a title"
    )
    style = style_of(preheader)
    assert style["display"] == "none"
    assert style["max-height"] == "0"
    assert style["overflow"] == "hidden"
    # First in <body>, so clients take it for the preview line.
    body = tree.one("body")
    assert next(c for c in body.children if isinstance(c, Node)) is preheader


def test_every_image_has_alt_text(mail: tuple[str, str]) -> None:
    images = dom(mail[0]).all("img")
    # The feed's own alt text, not the post's title again.
    assert [(i.attrs["src"], i.attrs["alt"]) for i in images] == [
        (f"{SITE}/images/fish.jpg", 'A boat & its "nets" <at dawn>')
    ]


def image_of(digest_post: DigestPost) -> tuple[Node, bool]:
    """The post's <img> in the email, and whether it is inside a link."""
    digest = context(posts=(digest_post,), groups=(DigestGroup("", (digest_post,)),))
    rendered = DigestRenderer(REPO / "templates", SUBJECT).render(digest)
    tree = dom(rendered.personalise(ANN, UNSUBSCRIBE, PREFERENCES)[0])
    [image] = tree.all("img")
    return image, any(image in link.all("img") for link in tree.all("a"))


@pytest.mark.parametrize(
    ("width", "height", "shown"),
    [
        (300, 200, ("300", "200")),  # smaller than the column: its own size, never stretched
        (1200, 800, ("536", "357")),  # larger: the column's width, the same shape
        (536, 100, ("536", "100")),
        (None, None, None),  # unknown: no size given, and none forced on it either
        (640, None, None),  # half a size is no size
    ],
)
def test_images_keep_their_own_size(
    width: int | None, height: int | None, shown: tuple[str, str] | None
) -> None:
    image, _ = image_of(replace(FISH, image_width=width, image_height=height))
    attrs = image.attrs
    assert ((attrs["width"], attrs["height"]) if "width" in attrs else None) == shown
    if shown is None:
        assert "height" not in attrs
    style = style_of(image)
    # Nothing in the stylesheet stretches it: it shrinks to the column and keeps its shape.
    assert "width" not in style and style["max-width"] == "100%" and style["height"] == "auto"


def test_an_image_without_alt_text_is_decorative_not_a_nameless_link() -> None:
    image, linked = image_of(replace(FISH, image_alt=""))
    assert image.attrs["alt"] == "" and not linked
    image, linked = image_of(FISH)
    assert image.attrs["alt"] and linked


def test_posts_dates_meta_and_groups(mail: tuple[str, str]) -> None:
    tree = dom(mail[0])
    assert [h.text() for h in tree.all("h2", "group-title")] == ["Events", "News", "Other"]
    metas = [p.text() for p in tree.all("p", "meta")]
    assert metas == [
        "8 December 2015 · Ann Author · Events · Riverside blog",
        "8 December 2015 · Ann Author · News · Riverside blog",
        "8 December 2015 · News · Riverside blog",
        "8 December 2015 · Ann Author",
    ]
    links = [a.attrs["href"] for a in tree.all("h3", "post-title")[1].all("a")]
    assert links == [FISH.url]
    assert [p.text() for p in tree.all("p", "excerpt")] == [
        SCRIPT.excerpt,
        FISH.excerpt,
        QUIET.excerpt,
    ]


def test_read_more_and_discussion_links(mail: tuple[str, str]) -> None:
    actions = dom(mail[0]).all("p", "actions")
    links = [[(a.text(), a.attrs["href"]) for a in p.all("a")] for p in actions]
    assert links == [
        [("Read more", SCRIPT.url)],
        [("Read more", FISH.url), ("Discuss (12 comments)", FISH.discussion_url)],
        [("Read more", QUIET.url), ("Discuss", QUIET.discussion_url)],
        [("Read more", BARE.url)],
    ]


def test_one_comment_is_singular(renderer: DigestRenderer) -> None:
    one = replace(FISH, reply_count=1)
    html, text = renderer.render(
        context(groups=(DigestGroup("", (one,)),), posts=(one,))
    ).personalise(ANN, UNSUBSCRIBE, PREFERENCES)
    assert "Discuss (1 comment)" in html
    assert f"Discuss: {FISH.discussion_url} (1 comment)\n" in text


def test_more_posts_line(renderer: DigestRenderer, mail: tuple[str, str]) -> None:
    html, text = mail
    more = dom(html).one("p", "more")
    assert more.text() == "and 3 more posts on the archive page"
    assert more.one("a").attrs["href"] == f"{FEEDS}/archive/2015-12.html"
    assert f"and 3 more posts on the archive page: {FEEDS}/archive/2015-12.html\n" in text
    html, text = renderer.render(context(more=0)).personalise(ANN, UNSUBSCRIBE, PREFERENCES)
    assert not dom(html).all("p", "more")
    assert "more posts" not in text


def test_footer_links(mail: tuple[str, str]) -> None:
    footer = dom(mail[0]).one("td", "footer")
    links = {a.text(): a.attrs["href"] for a in footer.all("a")}
    assert links == {
        "Unsubscribe": UNSUBSCRIBE,
        "Manage your subscription": PREFERENCES,
        "View in your browser": f"{FEEDS}/digest/2015-12.html",
        "Follow the feed": f"{FEEDS}/index.rss",
    }
    assert "Riverside News" in footer.text()


def test_an_empty_issue_says_so(renderer: DigestRenderer) -> None:
    empty = renderer.render(context(groups=(), posts=(), more=0, intro_html=""))
    html, text = empty.personalise(ANN, UNSUBSCRIBE, PREFERENCES)
    assert dom(html).one("p", "empty").text() == "No new posts in December 2015."
    assert "No new posts in December 2015.\n" in text


# --- text --------------------------------------------------------------------------------------


def test_text_part_is_text(mail: tuple[str, str]) -> None:
    _, text = mail
    # Post data comes through as typed, not escaped: this is not HTML.
    assert "<script>alert(1)</script> and a title\n" in text
    assert "Fish & <Ships>\n" in text
    assert "&amp;" not in text and "&lt;" not in text
    without_data = text.replace(SCRIPT.title, "").replace(SCRIPT.excerpt, "")
    without_data = without_data.replace(FISH.title, "")
    # No tags and no entities; only "<https://...>" after a link's text in the intro.
    assert not re.search(r"<(?!https?://)[a-zA-Z/!]", without_data)
    assert not re.search(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", without_data, re.IGNORECASE)


def test_text_layout(mail: tuple[str, str]) -> None:
    _, text = mail
    lines = text.splitlines()
    assert lines[:2] == ["Riverside News: December 2015", "=" * 29]
    assert "Hello Ann," in lines
    assert "A busy month & a donation drive <https://news.example.org/donate>." in lines
    assert "- Item one" in lines and "- Item two" in lines
    assert "EVENTS" in lines and "NEWS" in lines
    fish = lines.index("Fish & <Ships>")
    assert lines[fish + 1] == "8 December 2015 · Ann Author · News"
    assert f"Read more: {FISH.url}" in lines
    assert f"Discuss: {FISH.discussion_url} (12 comments)" in lines
    assert f"Discuss: {QUIET.discussion_url}" in lines
    assert lines.count("Discuss: " + (BARE.discussion_url or "")) == 0
    assert f"Unsubscribe: {UNSUBSCRIBE}" in lines  # raw: "&" stays "&"
    assert f"Manage your subscription: {PREFERENCES}" in lines
    assert f"View in your browser: {FEEDS}/digest/2015-12.html" in lines
    assert "\n\n\n" not in text and text.endswith("\n") and not text.endswith("\n\n")


def test_text_is_wrapped_at_72_columns_without_breaking_urls(mail: tuple[str, str]) -> None:
    _, text = mail
    long_url = "https://news.example.org/a/very/long/path/that/must/not/be/broken/in/the/middle"
    assert long_url in text.splitlines()
    assert all(len(line) <= 72 for line in text.splitlines() if "://" not in line)


def test_wrap_and_plaintext_filters() -> None:
    assert wrap("word " * 30).splitlines()[0] == ("word " * 14).strip()
    assert wrap("one\ntwo", 72) == "one\ntwo"
    assert wrap("a b c", 3) == "a b\nc"
    assert (
        plaintext('<h2>Hi &amp; bye</h2><p>See <a href="https://x.example/">this</a><br>now.</p>')
        == "Hi & bye\n\nSee this <https://x.example/>\nnow."
    )
    assert plaintext('<p><a href="https://x.example/">https://x.example/</a></p>') == (
        "https://x.example/"
    )
    assert plaintext('<p><img src="a.png" alt="A chart"></p>') == "A chart"


# --- personalisation ---------------------------------------------------------------------------


def test_personalise_fills_every_slot(mail: tuple[str, str]) -> None:
    html, text = mail
    assert dom(html).one("p", "greeting").text() == "Hello Ann,"
    assert 'href="https://news.example.org/unsubscribe/tok-ann?a=1&amp;b=2"' in html
    assert f'href="{PREFERENCES}"' in html
    assert "Hello Ann,\n" in text
    assert not LEAKS.search(html) and not LEAKS.search(text)


def test_a_hostile_name_is_escaped_in_html(rendered: RenderedDigest) -> None:
    html, text = rendered.personalise(HOSTILE, UNSUBSCRIBE, PREFERENCES)
    assert "<script" not in html.lower()
    assert "Hello Eve &quot;&lt;script&gt;alert(1)&lt;/script&gt;," in html
    assert dom(html).one("p", "greeting").text() == HOSTILE.greeting
    assert f"{HOSTILE.greeting}\n" in text


def test_personal_values_in_attributes_are_escaped(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    base = templates / "email" / "base.html.j2"
    base.write_text(
        base.read_text().replace(
            '<body class="body">',
            '<body class="body" data-name="{{ subscriber.name }}"'
            ' data-to="{{ subscriber.email }}">',
        )
    )
    rendered = DigestRenderer(templates, SUBJECT).render(context())
    html, _ = rendered.personalise(HOSTILE, UNSUBSCRIBE, PREFERENCES)
    body = dom(html).one("body")
    assert body.attrs["data-name"] == HOSTILE.name
    assert body.attrs["data-to"] == "eve@example.org"
    assert 'data-name="Eve &quot;&lt;script&gt;' in html
    assert not LEAKS.search(rendered.web_copy())


def test_personalise_renders_nothing(
    rendered: RenderedDigest, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("personalise() must not render or inline")

    monkeypatch.setattr("jinja2.environment.Template.render", forbidden)
    monkeypatch.setattr("css_inline.CSSInliner.inline", forbidden, raising=False)
    html, _ = rendered.personalise(ANN, UNSUBSCRIBE, PREFERENCES)
    assert "Hello Ann," in html


def test_markers_in_post_data_are_not_filled(renderer: DigestRenderer) -> None:
    # A feed must not learn each subscriber's address through a tracking image.
    sneaky = replace(
        FISH,
        image="https://tracker.example/p.gif?to=%%SYNDICATE-EMAIL%%",
        title="Hi %%syndicate-name%%",
        excerpt="%25%25SYNDICATE-UNSUBSCRIBE%25%25",
    )
    rendered = renderer.render(
        context(groups=(DigestGroup("", (sneaky,)),), posts=(sneaky,), intro_html="")
    )
    html, text = rendered.personalise(ANN, UNSUBSCRIBE, PREFERENCES)
    assert "ann@example.org" not in html + text
    assert "tok-ann" not in dom(html).one("td", "content").text()
    assert html.count("tok-ann") == 2  # the footer's own two links
    assert "tracker.example/p.gif?to=%\u2060%SYNDICATE-EMAIL%%" in html


def test_values_are_filled_in_once(rendered: RenderedDigest) -> None:
    # A name that looks like a marker is shown as typed, never filled in again.
    sly = DigestSubscriber("x", "sly@example.org", "Hello %%SYNDICATE-EMAIL%%,")
    html, text = rendered.personalise(sly, UNSUBSCRIBE, PREFERENCES)
    assert "Hello %%SYNDICATE-EMAIL%%," in html and "Hello %%SYNDICATE-EMAIL%%,\n" in text
    assert "sly@example.org" not in html + text


def test_the_same_rendering_serves_many_subscribers(rendered: RenderedDigest) -> None:
    bob = DigestSubscriber("Bob", "bob@example.org", "Hello Bob,")
    first = rendered.personalise(ANN, UNSUBSCRIBE, PREFERENCES)
    second = rendered.personalise(bob, f"{SITE}/unsubscribe/tok-bob", f"{SITE}/preferences/b")
    again = rendered.personalise(ANN, UNSUBSCRIBE, PREFERENCES)
    assert first == again
    assert "Hello Bob," in second[0] and "Hello Ann," not in second[0]
    assert "tok-ann" not in second[0] + second[1]


# --- web copy and subject ----------------------------------------------------------------------


def test_web_copy_has_no_personal_data(rendered: RenderedDigest) -> None:
    web = rendered.web_copy()
    assert not LEAKS.search(web)
    tree = dom(web)
    assert tree.one("p", "greeting").text() == "Hello,"
    links = {a.text(): a.attrs["href"] for a in tree.one("td", "footer").all("a")}
    assert links["Unsubscribe"] == links["Manage your subscription"] == f"{SITE}/"
    text = rendered.text_copy()
    assert not LEAKS.search(text) and "Hello,\n" in text


def test_web_copy_of_a_stored_issue(rendered: RenderedDigest) -> None:
    # What digest/build.py keeps: subject, html and text, without the site's address.
    stored = RenderedDigest(rendered.subject, rendered.html, rendered.text)
    web = stored.web_copy()
    assert not LEAKS.search(web)
    links = {a.text(): a.attrs["href"] for a in dom(web).one("td", "footer").all("a")}
    # Published at /feeds/digest/<period>.html, so ../../ is the site's home page.
    assert links["Unsubscribe"] == "../../"
    assert stored.personalise(ANN, UNSUBSCRIBE, PREFERENCES) == rendered.personalise(
        ANN, UNSUBSCRIBE, PREFERENCES
    )


def test_subject(rendered: RenderedDigest) -> None:
    assert rendered.subject == "Riverside News: December 2015"


def test_subject_is_one_line(tmp_path: Path) -> None:
    renderer = DigestRenderer(
        REPO / "templates", "{{ site.title }}\r\n:\t{{ period.label }}\n{{ posts|length }} posts"
    )
    subject = renderer.render(context()).subject
    assert subject == "Riverside News : December 2015 4 posts"
    assert "\r" not in subject and "\n" not in subject
    data = context(site=replace(context().site, title="Evil\r\nBcc: x@example.org"))
    assert "\n" not in renderer.render(data).subject


def test_subject_cannot_be_personal() -> None:
    renderer = DigestRenderer(REPO / "templates", "Hi {{ subscriber.name }}")
    with pytest.raises(TemplateProblem, match=r"^\[digest\] subject: .*same for every"):
        renderer.render(context())


def test_subject_mistakes_name_the_setting() -> None:
    broken = DigestRenderer(REPO / "templates", "{{ site.title }")
    assert broken.check() == ["[digest] subject:1: unexpected '}'"]
    undefined = DigestRenderer(REPO / "templates", "{{ site.title }}\n{{ site.nmae }}")
    (problem,) = undefined.check()
    assert problem.startswith("[digest] subject:2: ") and "nmae" in problem


# --- golden files ------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["html", "txt"])
def test_golden(mail: tuple[str, str], ext: str) -> None:
    data = (mail[0] if ext == "html" else mail[1]).encode("utf-8")
    golden = GOLDEN / f"digest-2015-12.{ext}"
    if os.environ.get("SYNDICATE_UPDATE_GOLDEN") == "1" or not golden.exists():
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(data)
        pytest.skip(f"wrote {golden}; read it, then run again")
    assert data == golden.read_bytes(), (
        f"{ext} output differs from {golden}; if intended, rerun with SYNDICATE_UPDATE_GOLDEN=1"
    )


# --- check() and mistakes in templates ---------------------------------------------------------


def copy_templates(tmp_path: Path) -> Path:
    """The bundled templates in a config dir of their own, to break on purpose."""
    target = tmp_path / "config" / "templates"
    shutil.copytree(REPO / "templates", target)
    return target


def edit(templates: Path, name: str, old: str, new: str) -> None:
    path = templates / name
    source = path.read_text()
    assert old in source, f"{old!r} not in {name}"
    path.write_text(source.replace(old, new, 1))


def test_check_passes_on_the_bundled_templates(renderer: DigestRenderer) -> None:
    assert renderer.check() == []


def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    edit(templates, "email/digest.html.j2", "{% if post.excerpt %}", "{% if post.excerpt }")
    renderer = DigestRenderer(templates, SUBJECT)
    line = 1 + (templates / "email/digest.html.j2").read_text().split("\n").index(
        "{% if post.excerpt }"
    )
    assert renderer.check() == [f"templates/email/digest.html.j2:{line}: unexpected '}}'"]
    with pytest.raises(TemplateProblem) as caught:
        renderer.render(context())
    assert (caught.value.template, caught.value.line) == ("templates/email/digest.html.j2", line)


def test_an_undefined_variable_names_file_and_line(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    edit(templates, "email/digest.txt.j2", "{{ post.url }}", "{{ post.link }}")
    edit(templates, "email/base.html.j2", "{{ site.title }}</a>", "{{ site_title }}</a>")
    problems = DigestRenderer(templates, SUBJECT).check()
    assert len(problems) == 2
    html_problem, text_problem = problems
    assert re.fullmatch(
        r"templates/email/base\.html\.j2:\d+: 'site_title' is undefined", html_problem
    )
    assert re.fullmatch(
        r'templates/email/digest\.txt\.j2:\d+: a post has no field "link" \(a post has title, '
        r"url, .*\)",
        text_problem,
    )


def line_of(templates: Path, name: str, text: str) -> int:
    """The number of the first line of template `name` that holds `text`."""
    lines = (templates / name).read_text().splitlines()
    return 1 + next(number for number, line in enumerate(lines) if text in line)


POST_FIELDS = (
    "title, url, excerpt, image, author, category, source, date, discussion_url, "
    "reply_count, categories, site_categories, image_alt, image_width, image_height, language"
)


def test_a_misspelt_field_names_what_the_template_sees(tmp_path: Path) -> None:
    # Not "'syndicate.digest.context.DigestPost object' has no attribute 'titel'".
    templates = copy_templates(tmp_path)
    edit(templates, "email/digest.html.j2", '">{{ post.title }}</a>', '">{{ post.titel }}</a>')
    edit(templates, "email/digest.txt.j2", "period=period.label", "period=period.lable")
    html_line = line_of(templates, "email/digest.html.j2", "post.titel")
    text_line = line_of(templates, "email/digest.txt.j2", "period.lable")
    assert DigestRenderer(templates, SUBJECT).check() == [
        f'templates/email/digest.html.j2:{html_line}: a post has no field "titel"; '
        f'did you mean "title"? (a post has {POST_FIELDS})',
        f'templates/email/digest.txt.j2:{text_line}: a period has no field "lable"; '
        'did you mean "label"? (a period has key, label, start, end)',
    ]
    with pytest.raises(TemplateProblem) as caught:
        DigestRenderer(templates, SUBJECT).render(context())
    assert (caught.value.template, caught.value.line) == (
        "templates/email/digest.html.j2",
        html_line,
    )
    assert "DigestPost" not in str(caught.value) and "syndicate." not in str(caught.value)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        (
            "site.ttle",
            'a site has no field "ttle"; did you mean "title"? '
            "(a site has title, url, description, language, timezone)",
        ),
        (
            "urls.archiv",
            'the urls have no field "archiv"; did you mean "archive"? (the urls have '
            "view_in_browser, archive, feeds, unsubscribe, preferences, subscribe, issues)",
        ),
        ("site.title.size", 'a text has no field "size"'),
        ("period.start.yeer", 'a date has no field "yeer"'),
        ("posts[99]", "a list has no element 99"),
        ("more.count", 'a number has no field "count"'),
        ("posts.first", 'a list has no field "first"'),
        ("site['nom']", 'a site has no field "nom"'),
        ("nothing", "'nothing' is undefined"),  # Jinja's own words, already clear
    ],
)
def test_every_kind_of_missing_field_is_named_plainly(
    tmp_path: Path, expression: str, reason: str
) -> None:
    templates = copy_templates(tmp_path)
    edit(templates, "email/digest.txt.j2", "{{ subscriber.greeting }}", f"{{{{ {expression} }}}}")
    line = line_of(templates, "email/digest.txt.j2", expression)
    [problem] = DigestRenderer(templates, SUBJECT).check()
    assert problem.startswith(f"templates/email/digest.txt.j2:{line}: {reason}")


def test_a_broken_file_the_digest_does_not_use_is_reported(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    (templates / "email" / "welcome.html.j2").write_text("<p>\n{% for x in y %}\n")
    (problem,) = DigestRenderer(templates, SUBJECT).check()
    assert problem.startswith("templates/email/welcome.html.j2:")


def test_missing_templates_and_stylesheet(tmp_path: Path) -> None:
    empty = tmp_path / "config" / "templates"
    empty.mkdir(parents=True)
    assert DigestRenderer(empty, SUBJECT).check() == [
        "templates/email/digest.html.j2: template not found",
        "templates/email/digest.txt.j2: template not found",
    ]
    templates = copy_templates(tmp_path / "other")
    (templates / "email" / "style.css").unlink()
    assert DigestRenderer(templates, SUBJECT).check() == [
        "templates/email/style.css: stylesheet not found"
    ]


def test_a_filter_on_a_personal_value_is_a_problem(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    edit(
        templates,
        "email/digest.html.j2",
        "{{ subscriber.greeting }}",
        "{{ subscriber.greeting|lower }}",
    )
    (problem,) = DigestRenderer(templates, SUBJECT).check()
    assert problem.startswith("templates/email/digest.html.j2: a personal value")


@pytest.mark.parametrize("name", ["email/base.html.j2", "email/digest.txt.j2"])
def test_the_unsubscribe_link_is_required(tmp_path: Path, name: str) -> None:
    templates = copy_templates(tmp_path)
    edit(templates, name, "{{ urls.unsubscribe }}", "{{ site.url }}")
    shown = "email/digest.html.j2" if name.endswith(".html.j2") else name
    assert DigestRenderer(templates, SUBJECT).check() == [
        f"templates/{shown}: no unsubscribe link: the email must show {{{{ urls.unsubscribe }}}}"
    ]


def test_the_sandbox_holds(tmp_path: Path) -> None:
    templates = copy_templates(tmp_path)
    edit(
        templates,
        "email/digest.html.j2",
        "{{ subscriber.greeting }}",
        "{{ subscriber.greeting }}{{ site.__class__.__init__.__globals__ }}",
    )
    (problem,) = DigestRenderer(templates, SUBJECT).check()
    assert problem.startswith("templates/email/digest.html.j2:")
    assert "unsafe" in problem or "__class__" in problem
