"""/feeds/...: the published files over HTTP (tests/webclient.py builds the site)."""

from __future__ import annotations

import gzip
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest
from webclient import WEB_NOW, web_client

from syndicate.clock import FrozenClock
from syndicate.config import Settings
from syndicate.digest.build import build_issue
from syndicate.files import write_atomic
from syndicate.store import Store
from syndicate.web.app import create_app
from syndicate.web.feeds import FeedFiles
from syndicate.web.security import SECURITY_HEADERS

Site = tuple[Settings, Store]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/feeds/index.rss", "application/rss+xml; charset=utf-8"),
        ("/feeds/index.atom", "application/atom+xml; charset=utf-8"),
        ("/feeds/index.json", "application/feed+json; charset=utf-8"),
        ("/feeds/source/field-notes.atom", "application/atom+xml; charset=utf-8"),
        ("/feeds/archive/2015-12.html", "text/html; charset=utf-8"),
        ("/feeds/archive/2015-12.atom", "application/atom+xml; charset=utf-8"),
    ],
)
async def test_files_are_served_with_their_type_and_validators(
    web: httpx.AsyncClient, web_site: Site, path: str, content_type: str
) -> None:
    settings, _ = web_site
    response = await web.get(path, headers={"accept-encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    file = settings.publish_dir / path.removeprefix("/feeds/")
    assert response.content == file.read_bytes()
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert response.headers["last-modified"] == formatdate(file.stat().st_mtime, usegmt=True)
    assert response.headers["cache-control"] == "public, max-age=3600"  # [publish] ttl = 60m
    # RSS and Atom go to browsers as application/xml (their stylesheet): a type per Accept.
    styled = path.endswith((".rss", ".atom"))
    assert response.headers["vary"] == ("Accept, Accept-Encoding" if styled else "Accept-Encoding")
    assert "link" not in response.headers  # no WebSub hub in the bundled config


async def test_the_digest_view_in_browser_page_is_served(
    web: httpx.AsyncClient, web_site: Site
) -> None:
    settings, store = web_site
    await build_issue(settings, store, FrozenClock(WEB_NOW), "2015-12")
    response = await web.get("/feeds/digest/2015-12.html")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "Riverside Commons News" in response.text


@pytest.mark.parametrize(
    "if_none_match",
    ["{etag}", "W/{etag}", '"other", {etag}', '"a",W/{etag} , "b"', "*"],
)
async def test_if_none_match_gives_304(web: httpx.AsyncClient, if_none_match: str) -> None:
    plain = {"accept-encoding": "identity"}
    first = await web.get("/feeds/index.atom", headers=plain)
    header = if_none_match.format(etag=first.headers["etag"])
    second = await web.get("/feeds/index.atom", headers={**plain, "if-none-match": header})
    assert second.status_code == 304
    assert second.content == b""
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["cache-control"] == first.headers["cache-control"]
    assert "content-length" not in second.headers


async def test_a_different_etag_gets_the_document_and_wins_over_if_modified_since(
    web: httpx.AsyncClient,
) -> None:
    first = await web.get("/feeds/index.atom")
    headers = {"if-none-match": '"stale"', "if-modified-since": first.headers["last-modified"]}
    second = await web.get("/feeds/index.atom", headers=headers)
    assert second.status_code == 200 and second.content == first.content


async def test_if_modified_since(web: httpx.AsyncClient, web_site: Site) -> None:
    first = await web.get("/feeds/index.rss")
    same = await web.get(
        "/feeds/index.rss", headers={"if-modified-since": first.headers["last-modified"]}
    )
    assert same.status_code == 304
    mtime = (web_site[0].publish_dir / "index.rss").stat().st_mtime
    older = formatdate(mtime - 3600, usegmt=True)
    assert (
        await web.get("/feeds/index.rss", headers={"if-modified-since": older})
    ).status_code == 200
    bad = await web.get("/feeds/index.rss", headers={"if-modified-since": "yesterday"})
    assert bad.status_code == 200


async def test_gzip_when_accepted_with_its_own_etag(web: httpx.AsyncClient) -> None:
    plain = await web.get("/feeds/index.rss", headers={"accept-encoding": "identity"})
    # httpx decodes gzip itself; read the raw bytes to see what went over the wire.
    async with web.stream("GET", "/feeds/index.rss", headers={"accept-encoding": "gzip"}) as zipped:
        raw = b"".join([chunk async for chunk in zipped.aiter_raw()])
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept, Accept-Encoding"  # and a type per Accept
    assert int(zipped.headers["content-length"]) == len(raw) < len(plain.content)
    assert gzip.decompress(raw) == plain.content
    assert zipped.headers["etag"] == plain.headers["etag"][:-1] + '-gz"'
    assert "content-encoding" not in plain.headers
    again = await web.get(
        "/feeds/index.rss",
        headers={"accept-encoding": "gzip", "if-none-match": zipped.headers["etag"]},
    )
    assert again.status_code == 304
    refused = await web.get("/feeds/index.rss", headers={"accept-encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


async def test_head_has_the_headers_and_no_body(web: httpx.AsyncClient) -> None:
    get = await web.get("/feeds/index.json", headers={"accept-encoding": "identity"})
    head = await web.head("/feeds/index.json", headers={"accept-encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    for name in ("content-type", "content-length", "etag", "last-modified", "cache-control"):
        assert head.headers[name] == get.headers[name]


async def test_websub_links_when_a_hub_is_configured(web_site: Site) -> None:
    settings, store = web_site
    publish = settings.publish.model_copy(update={"websub_hub": "https://hub.example/"})
    with_hub = settings.model_copy(update={"publish": publish})
    async with web_client(create_app(with_hub, store=store)) as client:
        feed = await client.get("/feeds/source/field-notes.rss")
        page = await client.get("/feeds/archive/2015-12.html")
    assert feed.status_code == 200
    assert feed.headers["link"] == (
        '<https://hub.example/>; rel="hub", '
        '<https://news.riverside-commons.example/feeds/source/field-notes.rss>; rel="self"'
    )
    assert "link" not in page.headers  # WebSub is for feeds


async def test_a_republished_file_gets_a_new_etag(web: httpx.AsyncClient, web_site: Site) -> None:
    first = await web.get("/feeds/index.json")
    write_atomic(web_site[0].publish_dir / "index.json", b'{"version": "changed"}\n')
    second = await web.get("/feeds/index.json", headers={"if-none-match": first.headers["etag"]})
    assert second.status_code == 200 and second.json() == {"version": "changed"}
    assert second.headers["etag"] != first.headers["etag"]


async def test_directories_serve_their_index(web: httpx.AsyncClient, web_site: Site) -> None:
    index = await web.get("/feeds/archive/")
    assert index.status_code == 200
    assert index.content == (web_site[0].publish_dir / "archive" / "index.html").read_bytes()
    bare = await web.get("/feeds/archive")
    assert bare.status_code == 301 and bare.headers["location"] == "/feeds/archive/"


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/nothing.rss",
        "/feeds/%2e%2e/config.toml",
        "/feeds/archive/%2e%2e/%2e%2e/config.toml",
        "/feeds/%2e%2e%2fconfig.toml",
        "/feeds/%252e%252e/config.toml",
        "/feeds/index.rss%00.html",
        "/feeds/..%5cconfig.toml",
        "/feeds//etc/passwd",
        "/feeds/source/../../config.toml",
        "/feeds/outside.rss",  # a symlink out of the folder
        "/feeds/.hidden.rss",  # publish's temporaries are dot-files
    ],
)
async def test_nothing_outside_the_folder_is_served(
    web: httpx.AsyncClient, web_site: Site, path: str
) -> None:
    folder = web_site[0].publish_dir
    (folder / "outside.rss").symlink_to(web_site[0].base_dir / "config.toml")
    (folder / ".hidden.rss").write_text("temporary")
    response = await web.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "Page not found" in response.text and "[site]" not in response.text


def test_lookup_refuses_unsafe_paths_before_touching_the_disk(
    web_site: Site, tmp_path: Path
) -> None:
    files = FeedFiles(app=None, settings=web_site[0])  # type: ignore[arg-type]
    for rel in ("../config.toml", "a/../../x", "/etc/passwd", "x\0y", "..\\x", ".", ""):
        assert files.lookup(rel) is None
    assert files.lookup("index.rss") is not None
    inside = web_site[0].publish_dir / "source" / "alias.rss"
    inside.symlink_to(web_site[0].publish_dir / "index.rss")
    assert files.lookup("source/alias.rss") is not None  # symlinks inside are fine


async def test_other_methods_are_refused(web: httpx.AsyncClient) -> None:
    response = await web.post("/feeds/index.rss", content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert "Method not allowed" in response.text


@pytest.mark.parametrize("path", ["/feeds/index.rss", "/feeds/missing.rss", "/feeds/archive"])
async def test_feed_responses_carry_the_security_headers(web: httpx.AsyncClient, path: str) -> None:
    first = await web.get(path)
    responses = [first]
    if "etag" in first.headers:
        responses.append(await web.get(path, headers={"if-none-match": first.headers["etag"]}))
    for response in responses:
        for name, value in SECURITY_HEADERS:
            assert response.headers[name.decode()] == value.decode()


# What Chromium sends when a person opens a link, and what feed readers send.
BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
READER_ACCEPTS = [
    "application/rss+xml, application/rdf+xml;q=0.8, application/atom+xml;q=0.6, "
    "application/xml;q=0.4, text/xml;q=0.4",
    # feedparser's own default
    "application/atom+xml,application/rdf+xml,application/rss+xml,application/x-netcdf,"
    "application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1",
    "*/*",
    "",
    # a reader that also takes pages (to find feeds on them), naming feed types too
    "application/rss+xml, application/atom+xml, text/html;q=0.5",
]


@pytest.mark.parametrize("path", ["/feeds/index.rss", "/feeds/category/rivers.atom"])
async def test_a_browser_gets_the_feed_as_xml_it_styles(web: httpx.AsyncClient, path: str) -> None:
    """Browsers show application/rss+xml as plain text and apply no stylesheet to it; as
    application/xml the same bytes go through the feed's XSLT stylesheet."""
    reader = await web.get(path, headers={"accept": READER_ACCEPTS[0]})
    browser = await web.get(path, headers={"accept": BROWSER_ACCEPT})
    assert browser.status_code == 200
    assert browser.content == reader.content
    assert browser.headers["content-type"] == "application/xml; charset=utf-8"
    assert reader.headers["content-type"].startswith(("application/rss+xml", "application/atom"))
    assert browser.headers["etag"] != reader.headers["etag"]
    assert "Accept" in browser.headers["vary"]
    # The stylesheet loads as a script would: the feed's policy allows the site's own.
    policy = browser.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "script-src" not in reader.headers["content-security-policy"]
    again = await web.get(
        path, headers={"accept": BROWSER_ACCEPT, "if-none-match": browser.headers["etag"]}
    )
    assert again.status_code == 304


@pytest.mark.parametrize("accept", READER_ACCEPTS)
async def test_feed_readers_get_the_feed_type(web: httpx.AsyncClient, accept: str) -> None:
    response = await web.get("/feeds/index.rss", headers={"accept": accept})
    assert response.headers["content-type"] == "application/rss+xml; charset=utf-8"


async def test_the_stylesheet_is_served_as_xsl(web: httpx.AsyncClient) -> None:
    response = await web.get("/feeds/feed.xsl")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xsl; charset=utf-8"
    assert b"<xsl:stylesheet" in response.content


async def test_feeds_and_past_issues_have_their_pages(
    web: httpx.AsyncClient, web_site: Site
) -> None:
    feeds = await web.get("/feeds/")
    assert feeds.status_code == 200 and b"A feed is a list" in feeds.content
    for path in ("/digest/", "/digest"):
        moved = await web.get(path)
        assert moved.status_code == 301
        assert str(moved.url.join(moved.headers["location"])) == "http://testserver/feeds/digest/"
    issues = await web.get("/digest/", follow_redirects=True)
    assert issues.status_code == 200 and b"<h1>Past issues</h1>" in issues.content
