"""What readers find besides the feeds themselves: /feeds/ (every feed, and what a feed is),
/feeds/digest/ (past issues), and the XSLT stylesheet RSS and Atom carry for browsers.

End to end over the bundled examples: ingested, published, and the pages read back. Links on
the list pages are relative, so they are resolved against the page's URL on 127.0.0.1 (where
a trial serves them) and must name a file publish wrote.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import feedparser
import pytest
from feedcheck import check_atom, check_rss
from test_publish import NOW, ingested
from test_publish_pages import parse

from syndicate.clock import FrozenClock
from syndicate.digest.build import build_issue
from syndicate.publish.build import publish
from syndicate.publish.stylesheet import STYLESHEET_PATH

LOCAL = "http://127.0.0.1:8080/feeds/"
HOSTILE = "<img src=x onerror=alert(1)>"


def hostile_category(project: Path) -> None:
    """A feed whose post has a category that is markup, listed among the site's."""
    feed = project / "examples" / "riverside-news.rss"
    text = feed.read_text()
    marked = text.replace(
        "<category><![CDATA[Volunteering]]></category>",
        f"<category><![CDATA[{HOSTILE}]]></category><category><![CDATA[Volunteering]]></category>",
        1,
    )
    assert marked != text, "the example feed changed; update this test"
    feed.write_text(marked)
    # ... and one of the site's categories, so that it gets a feed of its own.
    config = project / "config.toml"
    listed = 'categories = ["Rivers", '
    assert listed in config.read_text(), "the bundled categories changed; update this test"
    config.write_text(
        config.read_text().replace(listed, f'categories = ["{HOSTILE}", "Rivers", ', 1)
    )


def local_target(page: str, href: str) -> str | None:
    """The published file `href` on `page` leads to, or None when it leaves /feeds/."""
    url = urljoin(LOCAL + page, href)
    path = urlsplit(url).path
    if not url.startswith(LOCAL):
        return None
    rel = path.removeprefix("/feeds/")
    return rel + "index.html" if rel == "" or rel.endswith("/") else rel


async def test_the_feeds_page_lists_every_feed_with_working_relative_links(
    project: Path,
) -> None:
    hostile_category(project)
    settings, store = await ingested(project)
    async with store:
        report = await publish(settings, store, FrozenClock(NOW))
    folder = settings.publish_dir
    assert "index.html" in report.written
    html = (folder / "index.html").read_bytes()
    doc = parse(html)  # well formed
    text = html.decode()
    assert "A feed is a list of the latest posts" in text
    hrefs = [a.get("href") for a in doc.find_all("a")]
    targets = {local_target("index.html", href) for href in hrefs if href}
    feeds = {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.suffix in (".rss", ".atom", ".json") and p.parts[-2] != "archive"
    }
    # The site's, each category's and each source's, in every format; nothing else missing.
    assert {"index.rss", "category/rivers.atom", "source/field-notes.json"} <= feeds
    assert feeds <= targets
    for target in targets - {None}:
        assert target is not None
        if target.startswith("digest/"):
            continue  # the issues list: published by this run too, checked below
        assert (folder / target).is_file(), f"/feeds/ links to {target}, which is not published"
    # The hostile category is shown as text, never as markup.
    assert HOSTILE not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "onerror=alert" not in re.sub(r"&lt;.*?&gt;", "", text)
    assert (folder / "digest" / "index.html").is_file()


async def test_past_issues_are_listed_newest_first_and_escaped(project: Path) -> None:
    settings, store = await ingested(project)
    async with store:
        await build_issue(settings, store, FrozenClock(NOW), "2015-11")
        await build_issue(settings, store, FrozenClock(NOW), "2015-12")
        # An issue whose subject is markup (a hostile site title or subject template), with
        # a web copy so that it is listed.
        await store.create_issue("2015-10", f"News {HOSTILE}", [], "x", "x", NOW)
        (settings.publish_dir / "digest" / "2015-10.html").write_text("copy")
        # An issue built elsewhere, whose web copy this folder lacks: not linked to a 404.
        await store.create_issue("2015-09", "Elsewhere", [], "x", "x", NOW)
        await publish(settings, store, FrozenClock(NOW))
    html = (settings.publish_dir / "digest" / "index.html").read_bytes()
    doc = parse(html)
    text = html.decode()
    links = [(a.get("href"), a.text()) for a in doc.find("main").find_all("a")]
    issues = [(href, label) for href, label in links if href and href.endswith(".html")]
    assert [href for href, _ in issues] == ["2015-12.html", "2015-11.html", "2015-10.html"]
    assert issues[0][1] == "Riverside Commons News: December 2015"
    for href, _ in issues:
        target = local_target("digest/index.html", href)
        assert target and (settings.publish_dir / target).is_file()
    assert HOSTILE not in text and "News &lt;img src=x onerror=alert(1)&gt;" in text
    assert "Elsewhere" not in text
    # "Subscribe" leads to the subscribe page of the host it is read on.
    subscribe = [href for href, label in links if label == "Subscribe"]
    assert subscribe and urljoin(LOCAL + "digest/index.html", subscribe[0]).endswith(
        "127.0.0.1:8080/subscribe"
    )


async def test_rss_and_atom_carry_the_stylesheet_and_read_the_same(project: Path) -> None:
    settings, store = await ingested(project)
    async with store:
        await publish(settings, store, FrozenClock(NOW))
    folder = settings.publish_dir
    xsl = (folder / STYLESHEET_PATH).read_bytes()
    assert b"http://www.w3.org/1999/XSL/Transform" in xsl
    checked = 0
    for path in sorted(folder.rglob("*")):
        if path.suffix not in (".rss", ".atom"):
            continue
        data = path.read_bytes()
        lines = data.split(b"\n")
        assert lines[0].startswith(b"<?xml version=")
        found = re.fullmatch(rb'<\?xml-stylesheet type="text/xsl" href="([^"]+)"\?>', lines[1])
        assert found, f"{path.name}: no stylesheet instruction"
        page = path.relative_to(folder).as_posix()
        assert local_target(page, found.group(1).decode()) == STYLESHEET_PATH
        # Feed readers see the same feed with and without it.
        plain = b"\n".join(lines[:1] + lines[2:])
        (check_rss if path.suffix == ".rss" else check_atom)(data)
        styled = feedparser.parse(io.BytesIO(data))
        bare = feedparser.parse(io.BytesIO(plain))
        assert not styled.bozo
        assert styled.feed == bare.feed and styled.entries == bare.entries
        checked += 1
    assert checked > 20


def test_the_stylesheet_shows_titles_as_text() -> None:
    """What the browser does with the stylesheet, done by lxml's XSLT 1.0 (libxslt, the
    engine Chromium uses): the feed's title and each post's title, as text, never markup."""
    from dataclasses import replace

    from lxml import etree
    from test_publish_formats import FISH, document

    from syndicate.publish.atom import render_atom
    from syndicate.publish.rss import render_rss
    from syndicate.publish.stylesheet import stylesheet_bytes

    transform = etree.XSLT(etree.fromstring(stylesheet_bytes()))
    hostile = replace(FISH, title=f"{HOSTILE} & more")
    doc = document(title=f"Site {HOSTILE}", posts=(hostile,))
    for render in (render_rss, render_atom):
        page = transform(etree.fromstring(render(doc)))
        html = etree.tostring(page, method="html", encoding="unicode")
        tree = parse(html.encode())
        assert not tree.find_all("img"), html
        assert tree.find("h1").text() == f"Site {HOSTILE}"
        [item] = tree.find_all("article")
        assert item.find("h2").text() == f"{HOSTILE} & more"
        assert item.find("a").get("href") == hostile.url
        assert "This is a feed" in tree.text()


async def test_a_templates_folder_without_the_list_templates_still_publishes(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An admin's templates copied before these pages existed: feeds and archives go on."""
    (project / "templates" / "web" / "feeds.html.j2").unlink()
    settings, store = await ingested(project)
    async with store:
        report = await publish(settings, store, FrozenClock(NOW))
    assert "index.rss" in report.written and "archive/index.html" in report.written
    assert "index.html" not in report.written
    assert "web/feeds.html.j2" in caplog.text
