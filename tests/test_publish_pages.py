"""Archive pages: escaping, structure, links, a golden file, and errors that name the line.

The shipped templates (templates/web/) are what these tests render, so a change an admin
would see shows up here. Set SYNDICATE_UPDATE_GOLDEN=1 to rewrite the golden file after a
deliberate change, and read the diff.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from syndicate.models import Post
from syndicate.publish.document import ArchivePage, MonthLink, SourceInfo
from syndicate.publish.pages import PageRenderer, TemplateProblem

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "archive-2015-12.html"

SITE = "https://news.example.org/"
FEEDS = "https://news.example.org/feeds"
FORUM = "https://forum.example.org"


# --- a small DOM, so tests assert structure rather than substrings ---------------------

VOID = {"meta", "link", "img", "br", "hr", "input", "source", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return " ".join("".join(parts).split())

    def find_all(self, tag: str, **attrs: str) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag and all(child.get(k) == v for k, v in attrs.items()):
                    found.append(child)
                found.extend(child.find_all(tag, **attrs))
        return found

    def find(self, tag: str, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag} {attrs}>, found {len(found)}"
        return found[0]

    def get(self, name: str) -> str | None:
        # "class" is a keyword, so tests pass class_="post".
        return self.attrs.get(name.rstrip("_"))


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: bytes) -> Node:
    builder = TreeBuilder()
    builder.feed(html.decode("utf-8"))
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.root


# --- fixtures ----------------------------------------------------------------------------


def make_post(number: int, published: datetime, **fields: object) -> Post:
    values: dict[str, object] = {
        "source": "blog",
        "guid": f"urn:post:{number}",
        "url": f"https://news.example.org/2015/12/post-{number}/",
        "title": f"Post {number}",
        "published": published,
        "updated": published,
        "first_seen": published,
        "content_hash": f"hash-{number}",
        "id": number,
    }
    values.update(fields)
    return Post(**values)  # type: ignore[arg-type]


FISH = make_post(
    3,
    # 23:30 UTC on the 7th is already the 8th in Berlin, the site's timezone.
    datetime(2015, 12, 7, 23, 30, tzinfo=UTC),
    title="Fish & <Ships>",
    authors=("Ada Lovelace", "Grace Hopper"),
    categories=("Rivers", "Food & Drink"),
    excerpt="A tale of <b>fish</b> & ships.",
    discussion_url=f"{FORUM}/t/fish-and-ships/41",
    reply_count=12,
)
SCRIPT = make_post(
    2,
    datetime(2015, 12, 5, 9, 0, tzinfo=UTC),
    title="<script>alert('x')</script> Clean water",
    source="partner",
    excerpt="Water, filtered.",
)
NEW_THREAD = make_post(
    1,
    datetime(2015, 12, 1, 12, 0, tzinfo=UTC),
    title="Bridges",
    image_url="https://news.example.org/media/bridge.jpg",
    image_alt="A stone bridge <over> the Wend",
    image_width=800,
    image_height=533,
    discussion_url=f"{FORUM}/t/bridges/40",
)
SOURCES = {
    "blog": SourceInfo("blog", "River Blog", f"{SITE}feed/", SITE),
    "partner": SourceInfo("partner", "Partner <News>", "https://partner.example.net/feed"),
}
NOVEMBER = MonthLink("2015-11", "November 2015", 4, f"{FEEDS}/archive/2015-11.html")
DECEMBER = MonthLink("2015-12", "December 2015", 3, f"{FEEDS}/archive/2015-12.html")
JANUARY = MonthLink("2016-01", "January 2016", 1, f"{FEEDS}/archive/2016-01.html")
MONTHS = (JANUARY, DECEMBER, NOVEMBER)


def archive_page(**changes: object) -> ArchivePage:
    values: dict[str, object] = {
        "path": "archive/2015-12.html",
        "site_title": "River News",
        "site_url": SITE,
        "feeds_url": FEEDS,
        "language": "en-GB",
        "title": "Archive for December 2015",
        "posts": (FISH, SCRIPT, NEW_THREAD),
        "months": MONTHS,
        "previous": NOVEMBER,
        "next": JANUARY,
        "atom_url": f"{FEEDS}/archive/2015-12.atom",
        "sources": SOURCES,
        "timezone": "Europe/Berlin",
    }
    values.update(changes)
    return ArchivePage(**values)  # type: ignore[arg-type]


def index_page(months: tuple[MonthLink, ...] = MONTHS) -> ArchivePage:
    return ArchivePage(
        path="archive/index.html",
        site_title="River News",
        site_url=SITE,
        feeds_url=FEEDS,
        language="en-GB",
        title="Archive",
        months=months,
        sources=SOURCES,
        timezone="Europe/Berlin",
    )


@pytest.fixture(scope="module")
def renderer() -> PageRenderer:
    return PageRenderer(REPO / "templates")


@pytest.fixture(scope="module")
def december(renderer: PageRenderer) -> bytes:
    return renderer.render_archive(archive_page())


def articles(doc: Node) -> list[Node]:
    return doc.find_all("article", class_="post")


# --- the month page ----------------------------------------------------------------------


def test_month_page_frame(december: bytes) -> None:
    doc = parse(december)
    assert december.startswith(b"<!doctype html>\n")
    assert doc.find("html").get("lang") == "en-GB"
    assert doc.find("meta", charset="utf-8")
    assert "width=device-width" in (doc.find("meta", name="viewport").get("content") or "")
    assert doc.find("title").text() == "Archive for December 2015 · River News"
    assert doc.find("h1").text() == "Archive for December 2015"
    header = doc.find("header")
    assert [(a.get("href"), a.text()) for a in header.find_all("a")] == [(SITE, "River News")]
    assert b"prefers-color-scheme: dark" in december


def test_titles_are_escaped_and_nothing_runs(december: bytes) -> None:
    assert b"<script" not in december.lower()
    assert b"Fish &amp; &lt;Ships&gt;" in december
    assert b"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Clean water" in december
    assert b"A tale of &lt;b&gt;fish&lt;/b&gt; &amp; ships." in december
    assert b"Partner &lt;News&gt;" in december
    # Read back as a browser would, every title is the plain text it was.
    titles = [article.find("h2").text() for article in articles(parse(december))]
    assert titles == [FISH.title, SCRIPT.title, NEW_THREAD.title]


def test_each_post_links_to_its_original(december: bytes) -> None:
    posts = articles(parse(december))
    for article, post in zip(posts, (FISH, SCRIPT, NEW_THREAD), strict=True):
        assert article.find("h2").find("a").get("href") == post.url
        read_more = article.find("a", class_="read-more")
        assert (read_more.get("href"), read_more.text()) == (post.url, "Read more")


def test_post_details(december: bytes) -> None:
    fish, script, bridges = articles(parse(december))
    time = fish.find("time")
    assert time.text() == "8 December 2015"  # the site's timezone, not UTC
    assert time.get("datetime") == "2015-12-08T00:30:00+01:00"
    meta = fish.find("p", class_="meta").text()
    assert "by Ada Lovelace, Grace Hopper" in meta
    assert "in Rivers, Food & Drink" in meta
    assert "from River Blog" in meta
    assert fish.find("p", class_="excerpt").text() == FISH.excerpt
    assert "from Partner <News>" in script.find("p", class_="meta").text()
    assert "by" not in script.find("p", class_="meta").text()
    image = bridges.find("img")
    # The feed's alt text (not the title again) and its size, so the page does not move.
    assert (image.get("src"), image.get("alt")) == (NEW_THREAD.image_url, NEW_THREAD.image_alt)
    assert (image.get("width"), image.get("height")) == ("800", "533")
    assert not fish.find_all("img")
    assert not bridges.find_all("p", class_="excerpt")


def test_discussion_links(december: bytes) -> None:
    fish, script, bridges = articles(parse(december))
    discuss = fish.find("a", class_="discuss")
    assert discuss.get("href") == FISH.discussion_url
    assert discuss.text() == "Discuss (12 comments)"
    # No reply count known yet: the link, without a number.
    discuss = bridges.find("a", class_="discuss")
    assert (discuss.get("href"), discuss.text()) == (NEW_THREAD.discussion_url, "Discuss")
    # No discussion URL: no link at all, and nothing pointing at the forum.
    assert not script.find_all("a", class_="discuss")
    assert "Discuss" not in script.text()
    assert [a for a in script.find_all("a") if FORUM in (a.get("href") or "")] == []


@pytest.mark.parametrize(("count", "text"), [(0, "0 comments"), (1, "1 comment")])
def test_reply_count_wording(renderer: PageRenderer, count: int, text: str) -> None:
    post = make_post(
        9, datetime(2015, 12, 2, tzinfo=UTC), discussion_url=f"{FORUM}/t/9", reply_count=count
    )
    doc = parse(renderer.render_archive(archive_page(posts=(post,))))
    assert doc.find("a", class_="discuss").text() == f"Discuss ({text})"


def test_month_navigation(december: bytes) -> None:
    doc = parse(december)
    nav = doc.find("nav", class_="months-nav")
    links = [(a.get("rel"), a.get("href"), a.text()) for a in nav.find_all("a")]
    assert links == [
        ("prev", NOVEMBER.url, "← November 2015"),
        (None, f"{FEEDS}/archive/index.html", "All months"),
        ("next", JANUARY.url, "January 2016 →"),
    ]
    head = doc.find("head")
    assert head.find("link", rel="prev").get("href") == NOVEMBER.url
    assert head.find("link", rel="next").get("href") == JANUARY.url


def test_first_and_last_month_have_one_neighbour(renderer: PageRenderer) -> None:
    doc = parse(renderer.render_archive(archive_page(previous=None, next=None, atom_url=None)))
    nav = doc.find("nav", class_="months-nav")
    assert [a.text() for a in nav.find_all("a")] == ["All months"]
    head = doc.find("head")
    assert not head.find_all("link", rel="prev") and not head.find_all("link", rel="next")
    assert len(head.find_all("link", rel="alternate", type="application/atom+xml")) == 1


def test_empty_month(renderer: PageRenderer) -> None:
    doc = parse(renderer.render_archive(archive_page(posts=())))
    assert not articles(doc)
    assert doc.find("p", class_="empty").text() == "No posts this month."


def test_feed_autodiscovery(december: bytes) -> None:
    head = parse(december).find("head")
    alternates = [
        (link.get("type"), link.get("href")) for link in head.find_all("link", rel="alternate")
    ]
    assert alternates == [
        ("application/rss+xml", f"{FEEDS}/index.rss"),
        ("application/atom+xml", f"{FEEDS}/index.atom"),
        ("application/feed+json", f"{FEEDS}/index.json"),
        ("application/atom+xml", f"{FEEDS}/archive/2015-12.atom"),
    ]
    footer = parse(december).find("footer")
    hrefs = [a.get("href") for a in footer.find_all("a")]
    assert hrefs[:3] == [f"{FEEDS}/index.rss", f"{FEEDS}/index.atom", f"{FEEDS}/index.json"]


def test_only_published_formats_are_linked() -> None:
    renderer = PageRenderer(REPO / "templates", formats=["atom"])
    doc = parse(renderer.render_archive(archive_page(atom_url=None)))
    types = [link.get("type") for link in doc.find("head").find_all("link", rel="alternate")]
    assert types == ["application/atom+xml"]
    assert [a.text() for a in doc.find("footer").find_all("a")] == [
        "Atom",
        "Archive of every month",
        "All feeds",
        "Past digest issues",
    ]
    with pytest.raises(ValueError, match="xml"):
        PageRenderer(REPO / "templates", formats=["rss", "xml"])


# --- the index of months -----------------------------------------------------------------


def test_index_lists_months_newest_first(renderer: PageRenderer) -> None:
    doc = parse(renderer.render_archive_index(index_page()))
    assert doc.find("h1").text() == "Archive"
    items = doc.find("ul", class_="months").find_all("li")
    rows = [(li.find("a").get("href"), li.find("a").text(), li.find("span").text()) for li in items]
    assert rows == [
        (JANUARY.url, "January 2016", "(1 post)"),
        (DECEMBER.url, "December 2015", "(3 posts)"),
        (NOVEMBER.url, "November 2015", "(4 posts)"),
    ]


def test_index_without_months(renderer: PageRenderer) -> None:
    doc = parse(renderer.render_archive_index(index_page(months=())))
    assert not doc.find_all("ul", class_="months")
    assert doc.find("p", class_="empty").text() == "Nothing published yet."


# --- nothing external, nothing changing --------------------------------------------------

URL = re.compile(rb"""https?://[^\s"'<>)]+""")


def test_empty_page_loads_nothing_external(renderer: PageRenderer) -> None:
    html = renderer.render_archive_index(index_page(months=()))
    urls = {url.decode() for url in URL.findall(html)}
    assert urls, "the site and feed links should be there"
    assert all(url.startswith((SITE, FEEDS)) for url in urls), urls
    doc = parse(html)
    assert not doc.find_all("script") and not doc.find_all("img") and not doc.find_all("iframe")
    assert not doc.find_all("link", rel="stylesheet") and not doc.find_all("link", rel="preconnect")
    assert b"@import" not in html and b"url(" not in html and b"@font-face" not in html


def test_month_page_links_only_its_own_urls(december: bytes) -> None:
    own = (SITE, FEEDS, FORUM, "https://partner.example.net/")
    urls = {url.decode() for url in URL.findall(december)}
    assert all(url.startswith(own) for url in urls), urls


def test_golden_file_and_determinism(renderer: PageRenderer, december: bytes) -> None:
    assert renderer.render_archive(archive_page()) == december
    assert PageRenderer(REPO / "templates").render_archive(archive_page()) == december
    if not GOLDEN.exists() or os.environ.get("SYNDICATE_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_bytes(december)
    assert december == GOLDEN.read_bytes(), (
        "archive page changed; if on purpose, rerun with SYNDICATE_UPDATE_GOLDEN=1"
    )


def test_fingerprint_follows_the_templates(tmp_path: Path) -> None:
    web = tmp_path / "templates" / "web"
    web.mkdir(parents=True)
    (web / "archive.html.j2").write_text("{{ title }}\n")
    renderer = PageRenderer(tmp_path / "templates")
    before = renderer.fingerprint()
    assert PageRenderer(tmp_path / "templates").fingerprint() == before
    (web / "archive.html.j2").write_text("<h1>{{ title }}</h1>\n")
    assert renderer.fingerprint() != before


# --- mistakes in templates name the file and line ----------------------------------------


def renderer_with(tmp_path: Path, files: dict[str, str]) -> PageRenderer:
    folder = tmp_path / "config" / "templates"
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return PageRenderer(folder)


def problem(renderer: PageRenderer) -> TemplateProblem:
    with pytest.raises(TemplateProblem) as caught:
        renderer.render_archive(archive_page())
    return caught.value


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    renderer = renderer_with(
        tmp_path, {"web/archive.html.j2": "<h1>{{ page.title }}</h1>\n\n{% if page.posts }\n"}
    )
    error = problem(renderer)
    assert str(error) == "templates/web/archive.html.j2:3: unexpected '}'"
    assert (error.template, error.line) == ("templates/web/archive.html.j2", 3)


def test_syntax_error_in_the_base_names_the_base(tmp_path: Path) -> None:
    renderer = renderer_with(
        tmp_path,
        {
            "web/base.html.j2": "<html>\n<title>{{ title }</title>\n",
            "web/archive.html.j2": '{% extends "web/base.html.j2" %}\n',
        },
    )
    assert str(problem(renderer)).startswith("templates/web/base.html.j2:2: ")


def test_undefined_variable_names_file_and_line(tmp_path: Path) -> None:
    renderer = renderer_with(
        tmp_path,
        {
            "web/base.html.j2": "<main>\n{% block content %}{% endblock %}\n</main>\n",
            "web/archive.html.j2": (
                '{% extends "web/base.html.j2" %}\n'
                "{% block content %}\n"
                "<h1>{{ page.title }}</h1>\n"
                "{% for post in page.posts %}\n"
                "<p>{{ post.titel }}</p>\n"
                "{% endfor %}\n"
                "{% endblock %}\n"
            ),
        },
    )
    error = problem(renderer)
    # What the template calls it, not "'syndicate.models.Post object' has no attribute".
    assert str(error).startswith(
        'templates/web/archive.html.j2:5: a post has no field "titel"; did you mean "title"? '
        "(a post has source, guid, url, title, published, "
    )
    assert str(error).endswith(", reply_count, forum_checked_at, id)")


def test_undefined_top_level_variable(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, {"web/archive.html.j2": "<p>\n{{ site_name }}\n</p>\n"})
    assert str(problem(renderer)) == "templates/web/archive.html.j2:2: 'site_name' is undefined"


def test_missing_templates(tmp_path: Path) -> None:
    error = problem(renderer_with(tmp_path, {}))
    assert str(error) == "templates/web/archive.html.j2: template not found"
    assert error.line is None
    renderer = renderer_with(tmp_path, {"web/archive.html.j2": '\n{% extends "web/nope.j2" %}\n'})
    assert (
        str(problem(renderer))
        == "templates/web/archive.html.j2:2: template 'web/nope.j2' not found"
    )


def test_sandbox_refuses_internals(tmp_path: Path) -> None:
    renderer = renderer_with(
        tmp_path, {"web/archive.html.j2": "{{ page.__class__.__init__.__globals__ }}\n"}
    )
    error = problem(renderer)
    assert str(error).startswith("templates/web/archive.html.j2:1: ")
    assert "unsafe" in str(error)


def test_filter_misuse_names_the_line(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, {"web/archive.html.j2": "\n\n{{ page.title|date }}\n"})
    assert str(problem(renderer)) == (
        "templates/web/archive.html.j2:3: the date filter needs a datetime, not str"
    )


def test_a_broken_template_is_one_line_and_exit_2(project: Path) -> None:
    from click.testing import CliRunner

    from syndicate.cli import cli

    template = project / "templates" / "web" / "archive-index.html.j2"
    text = template.read_text()
    cut = text.rindex("{% endblock %}")  # inside the block: outside it a child renders nothing
    template.write_text(text[:cut] + "{{ page.no_such_field }}\n" + text[cut:])
    config = str(project / "config.toml")
    result = CliRunner().invoke(cli, ["--config", config, "ingest", "--no-publish"])
    assert result.exit_code == 0
    result = CliRunner().invoke(cli, ["--config", config, "publish"])
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: templates/web/archive-index.html.j2:")
    assert "no_such_field" in line
    check = CliRunner().invoke(cli, ["--config", config, "check"])
    assert check.exit_code == 2
    assert check.stderr.startswith("error: templates/web/archive-index.html.j2:")
