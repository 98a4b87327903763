"""Only http(s) links leave us: the rule (syndicate.links), and hostile feeds end to end.

Hostile RSS, Atom and JSON feeds are served by the real HTTP server on 127.0.0.1, ingested,
linked, published, shown on the home page and mailed in a digest; none of their URLs may
reach any of those. Every hostile URL carries the marker "XSS", so one search finds any that
got through. Rows stored before the rule existed are checked at the same edges.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from httpserver import HttpServer, Response
from webclient import web_client

from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.digest.build import build_issue
from syndicate.forum.linker import link_discussions
from syndicate.ingest.poll import ingest
from syndicate.links import MAX_URL_LENGTH, public_id, public_url
from syndicate.models import Enclosure, Post
from syndicate.publish.build import publish
from syndicate.store import Store
from syndicate.store.forum import Discussion
from syndicate.web.app import create_app

NOW = datetime(2016, 1, 2, 12, 0, tzinfo=UTC)  # December 2015 is a whole month by now


@pytest.mark.parametrize(
    "url",
    [
        "https://blog.example/2015/12/fish/",
        "http://blog.example:8080/a?b=c&d=e#f",
        "HTTPS://Blog.Example/",
        "https://ja.wikipedia.org/wiki/日本",
        "https://blog.example/q?family=Roboto|Open+Sans",
    ],
)
def test_public_urls(url: str) -> None:
    assert public_url(url) == url
    assert public_url(f"\n  {url}\t") == url  # a feed's indentation around a <link>


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "\x01javascript:alert(1)",
        "\x1fhttps://blog.example/",
        "java\tscript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "//evil.example/x",
        "/relative/path",
        "mailto:a@b.example",
        "https://bank.example@evil.example/",
        "https://user:secret@blog.example/",
        "https://evil.example\\@bank.example/",
        "https://blog.example/a b",
        'https://blog.example/"onmouseover="alert(1)',
        "https://blog.example/<script>",
        "https://blog.example/\u202egpj.exe",  # a right-to-left override
        "https://blog.example/\u200b",  # zero width space
        "https://blog.example/\u00a0",  # no-break space
        "http://[::1",
        "http://blog.example:99999/",
        "http:///no-host",
        "https://blog.example/" + "a" * MAX_URL_LENGTH,
        "",
        "   ",
    ],
)
def test_urls_that_may_not_leave_us(url: str) -> None:
    assert public_url(url) is None


def test_public_ids() -> None:
    for value in ("urn:uuid:1b4e28ba", "tag:blogger.com,1999:blog-1", "https://blog.example/"):
        assert public_id(value) == value
    for value in ("javascript:alert(1)", "data:,x", "42", "urn:", "urn:a b", "file:///x"):
        assert public_id(value) is None


# --- hostile feeds, end to end ------------------------------------------------------------

HOSTILE_RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>
<title>Hostile RSS</title><link>javascript:alert('XSS-channel')</link><description>d</description>
<item><title>RSS one</title><link>javascript:alert('XSS-r1')</link>
  <guid isPermaLink="false">r1</guid><pubDate>Tue, 01 Dec 2015 10:00:00 +0000</pubDate>
  <description>&lt;p&gt;Body one&lt;/p&gt;</description>
  <comments>javascript:alert('XSS-c1')</comments>
  <media:thumbnail url="javascript:alert('XSS-thumb')"/>
  <enclosure url="file:///etc/passwd?XSS" type="audio/mpeg" length="1"/></item>
<item><title>RSS two</title><link>&#106;avascript:alert('XSS-r2')</link>
  <guid isPermaLink="false">r2</guid><pubDate>Wed, 02 Dec 2015 10:00:00 +0000</pubDate>
  <description>Body two</description><comments>vbscript:msgbox('XSS')</comments></item>
<item><title>RSS three</title><link>  JaVaScRiPt:alert('XSS-r3')</link>
  <pubDate>Thu, 03 Dec 2015 10:00:00 +0000</pubDate><description>Body three</description></item>
</channel></rss>"""

HOSTILE_ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
<title>Hostile Atom</title><id>javascript:alert('XSS-feed-id')</id>
<updated>2015-12-06T10:00:00Z</updated><link href="data:text/html,XSS"/>
<author><name>A</name></author>
<entry><title>Atom one</title><id>urn:a1</id><updated>2015-12-04T10:00:00Z</updated>
  <link href="data:text/html,&lt;script&gt;alert('XSS')&lt;/script&gt;"/>
  <link rel="replies" type="text/html" href="javascript:alert('XSS-replies')"/>
  <link rel="enclosure" type="audio/mpeg" href="vbscript:XSS"/>
  <media:content url="javascript:XSS" medium="image"/>
  <content type="html">&lt;p&gt;Body four&lt;/p&gt;</content></entry>
<entry><title>Atom two</title><id>urn:a2</id><updated>2015-12-05T10:00:00Z</updated>
  <link href="&#106;avascript:alert('XSS-a2')"/><content type="text">Body five</content></entry>
<entry><title>Atom three</title><id>urn:a3</id><updated>2015-12-06T10:00:00Z</updated>
  <link href="//evil.example/a3"/><content type="text">Body six</content></entry>
</feed>"""

HOSTILE_JSON = r"""{
  "version": "https://jsonfeed.org/version/1.1", "title": "Hostile JSON",
  "home_page_url": "javascript:alert('XSS-home')", "feed_url": "javascript:XSS",
  "items": [
    {"id": "j1", "url": "javascript:alert('XSS-j1')", "content_html": "<p>Body seven</p>",
     "date_published": "2015-12-07T10:00:00Z", "image": "data:image/svg+xml,XSS",
     "attachments": [{"url": "javascript:XSS", "mime_type": "audio/mpeg"}],
     "_syndicate": {"discussion_url": "javascript:alert('XSS-discuss')"}},
    {"id": "j2", "url": "\u0001javascript:alert('XSS-j2')", "content_text": "Body eight",
     "date_published": "2015-12-08T10:00:00Z"},
    {"id": "j3", "url": "java\tscript:alert('XSS-j3')", "content_text": "Body nine",
     "date_published": "2015-12-09T10:00:00Z"},
    {"url": "JaVaScRiPt:alert('XSS-j4')", "content_text": "Body ten",
     "date_published": "2015-12-10T10:00:00Z"}
  ]
}"""


def configure(project: Path, database_url: str, sources: str) -> Settings:
    """The bundled config in `project` with these [[sources]], on the test's database."""
    config = project / "config.toml"
    text = config.read_text()
    start = re.search(r"(?m)^\[\[sources\]\]", text).start()  # type: ignore[union-attr]
    end = re.search(r"(?m)^\[forum\]", text).start()  # type: ignore[union-attr]
    text = text[:start] + sources + "\n" + text[end:]
    text = re.sub(r'(?m)^database = ".*"$', f'database = "{database_url}"', text)
    text = re.sub(r"(?m)^workers = \d+", "workers = 1", text)  # parse in-process: quicker
    config.write_text(text)
    return load_settings(config)


def sources_table(**urls: str) -> str:
    return "".join(
        f'[[sources]]\nname = "{name}"\nurl = "{url}"\nevery = "30m"\n\n'
        for name, url in urls.items()
    )


async def everything_published(
    settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Link, publish, build December's digest and fetch the home page: every output we make
    of posts, by name."""
    clock = FrozenClock(NOW)
    await link_discussions(settings, store, clock)
    await publish(settings, store, clock)
    result = await build_issue(settings, store, clock, "2015-12")
    assert result.issue is not None
    monkeypatch.setenv("SYNDICATE_SECRET", "test-secret-for-the-web-app")
    async with web_client(create_app(settings, store=store, clock=clock)) as client:
        home = await client.get("/")
    assert home.status_code == 200
    outputs = {
        str(path.relative_to(settings.publish_dir)): path.read_text()
        for path in sorted(settings.publish_dir.rglob("*"))
        if path.is_file()
    }
    assert {"index.rss", "index.atom", "index.json", "archive/2015-12.html"} <= set(outputs)
    assert "digest/2015-12.html" in outputs  # the web copy of the issue
    return {**outputs, "home page": home.text, "digest html": result.issue.html,
            "digest text": result.issue.text}  # fmt: skip


# A form's random signed token may spell "xss" by chance (about one page in 400).
_CSRF_TOKEN = re.compile(r'name="csrf_token" value="[^"]*"')


def leaks(outputs: dict[str, str]) -> list[str]:
    found = []
    for name, text in outputs.items():
        ours = _CSRF_TOKEN.sub("", text).lower()
        for marker in ("xss", "javascript", "vbscript", "data:", "file:", 'href="//'):
            if marker in ours:
                found.append(f"{name}: {marker}")
    return found


@pytest.fixture
async def hostile_site(
    project: Path, database_url: str, http_server: HttpServer
) -> AsyncIterator[tuple[Settings, Store]]:
    http_server.route("/rss", Response(body=HOSTILE_RSS.encode()))
    http_server.route("/atom", Response(body=HOSTILE_ATOM.encode()))
    feed_type = {"Content-Type": "application/feed+json"}
    http_server.route("/json", Response(body=HOSTILE_JSON.encode(), headers=feed_type))
    table = sources_table(
        **{
            "hostile-rss": http_server.url_for("/rss"),
            "hostile-atom": http_server.url_for("/atom"),
            "hostile-json": http_server.url_for("/json"),
        }
    )
    settings = configure(project, database_url, table)
    async with await Store.open(settings.database_url) as store:
        yield settings, store


async def test_hostile_feeds_leave_no_link_behind(
    hostile_site: tuple[Settings, Store],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, store = hostile_site
    with caplog.at_level(logging.WARNING, logger="syndicate"):
        report = await ingest(settings, store, FrozenClock(NOW))
    assert [(s.name, s.status, s.new) for s in report.sources] == [
        ("hostile-rss", "ok", 3),
        ("hostile-atom", "ok", 3),
        ("hostile-json", "ok", 4),
    ]
    posts = {post.title: post for post in await store.recent_posts(20)}
    # Every post is kept, with its id and content; only the URLs went.
    assert posts["RSS one"].guid == "r1" and "Body one" in posts["RSS one"].content_html
    assert posts["Atom one"].guid == "urn:a1" and posts["Atom one"].url == ""
    # Protocol-relative resolves against the feed's URL, as a browser would: an absolute link.
    assert posts["Atom three"].url == "http://evil.example/a3"

    outputs = await everything_published(settings, store, monkeypatch)
    assert leaks(outputs) == []
    # The posts are there all the same, without links.
    for name in ("index.rss", "index.atom", "index.json", "home page", "digest text"):
        assert "RSS one" in outputs[name] and "Atom two" in outputs[name], name
    assert "<h2>RSS one</h2>" in outputs["archive/2015-12.html"]

    # One warning per entry that lost a URL, naming the source and the entry.
    dropped = [(r.source, r.getMessage()) for r in caplog.records if "dropped" in r.getMessage()]
    for source, entry in [
        ("hostile-rss", "'r1'"),
        ("hostile-rss", "'r2'"),
        ("hostile-atom", "'urn:a1'"),
        ("hostile-json", "'j1'"),
        ("hostile-json", "'j3'"),
    ]:
        [line] = [m for s, m in dropped if s == source and m.startswith(f"entry {entry}:")]
        assert "only absolute http(s) URLs are published" in line
    rss_one = next(m for s, m in dropped if m.startswith("entry 'r1'"))
    for kind in ("link", "enclosure", "image", "comments link"):
        assert f" {kind} " in rss_one
    assert any(s == "hostile-rss" and "the feed's link" in m for s, m in dropped)
    assert all("\x01" not in m and "\t" not in m for _, m in dropped)  # shown escaped


async def test_links_stored_before_the_rule_do_not_leave_either(
    project: Path, database_url: str, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A database written by an older syndicate may hold any of these; every edge checks."""
    settings = configure(project, database_url, sources_table(blog="examples/field-notes.json"))
    async with await Store.open(settings.database_url) as store:
        await ingest(settings, store, FrozenClock(NOW))
        stored = Post(
            source="blog",
            guid="javascript:alert('XSS-guid')",
            url="javascript:alert('XSS-url')",
            title="Stored long ago",
            published=datetime(2015, 12, 11, 10, 0, tzinfo=UTC),
            updated=datetime(2015, 12, 11, 10, 0, tzinfo=UTC),
            first_seen=datetime(2015, 12, 11, 10, 0, tzinfo=UTC),
            content_hash="old",
            content_html="<p>Old body</p>",
            excerpt="Old body",
            image_url="data:image/svg+xml,XSS",
            enclosure=Enclosure("vbscript:XSS", "audio/mpeg", 1),
            comments_url="javascript:alert('XSS-comments')",
        )
        await store.upsert_posts("blog", [stored], NOW)
        with caplog.at_level(logging.WARNING, logger="syndicate"):
            await link_discussions(settings, store, FrozenClock(NOW))
        [old] = [post for post in await store.recent_posts(50) if post.title == "Stored long ago"]
        assert old.discussion_url is None  # the stored comments link was not taken
        assert any(
            r.source == "blog" and "discussion URL" in r.getMessage() for r in caplog.records
        )
        # And a discussion link stored by an older linker, and a feed's home page link.
        await store.save_discussions([Discussion(old.id or 0, "data:,XSS", "feed", NOW)])
        state = await store.source_state("blog")
        assert state is not None and state.feed_link  # credited on pages and in feeds
        await store.save_source_states([replace(state, feed_link="javascript:alert('XSS')")])

        outputs = await everything_published(settings, store, monkeypatch)
    assert leaks(outputs) == []
    assert "Stored long ago" in outputs["index.atom"] and "Stored long ago" in outputs["home page"]


async def test_a_feed_full_of_bad_links_does_not_flood_the_log(
    project: Path, database_url: str, http_server: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    items = "".join(
        f"<item><title>T{n}</title><link>javascript:alert({n})</link><guid>g{n}</guid></item>"
        for n in range(15)
    )
    feed = f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    http_server.route("/rss", Response(body=feed.encode()))
    settings = configure(project, database_url, sources_table(blog=http_server.url_for("/rss")))
    async with await Store.open(settings.database_url) as store:
        with caplog.at_level(logging.WARNING, logger="syndicate"):
            await ingest(settings, store, FrozenClock(NOW))
    lines = [r.getMessage() for r in caplog.records if getattr(r, "source", None) == "blog"]
    assert len(lines) == 11
    assert lines[:10] == [
        f"entry 'g{n}': dropped link 'javascript:alert({n})': only absolute http(s) URLs are "
        "published"
        for n in range(10)
    ]
    assert lines[10] == "5 more entries with URLs dropped"
