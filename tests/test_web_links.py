"""The local trial works as is (issue 16): the bundled config's `[site] url` is a public name
that does not exist, and the admin opens http://127.0.0.1:8080/ as the README says. Every
link and form action on the pages the web app serves (its own pages and the archive pages
published into feeds/) must lead somewhere on the host the page came from, at whatever
depth the page is; feeds and emails keep the absolute `[site] url`.

The crawl follows every same-origin href, src and form action from the home page (and the
subscription pages, reached through signed links), resolving each against the URL it was
found on, as a browser does, and requires an answer below 400 from the app for each link
and a route that takes POST for each form.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
import pytest
from webclient import WEB_NOW, web_client

from syndicate.clock import FrozenClock
from syndicate.config import Settings
from syndicate.store import Store
from syndicate.subscribers import add
from syndicate.tokens import Tokens, signing_secret
from syndicate.web.app import create_app

LOCAL = "http://127.0.0.1:8080"
PUBLIC = "https://news.riverside-commons.example"  # the bundled [site] url


class Links(HTMLParser):
    """Every href and src (a, link, img) and every form's action, as written."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.forms: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.forms.append(values.get("action") or "")
        for name in ("href", "src"):
            if values.get(name):
                self.links.append(values[name] or "")


def parse(page: str) -> Links:
    links = Links()
    links.feed(page)
    return links


@pytest.fixture
async def local(web_site: tuple[Settings, Store]) -> AsyncIterator[httpx.AsyncClient]:
    settings, store = web_site
    app = create_app(settings, store=store, clock=FrozenClock(WEB_NOW))
    async with web_client(app, base_url=LOCAL) as client:
        yield client


def ours_on_public(url: str) -> bool:
    """A page of the web app or a published file, at the public `[site] url`. Posts of the
    bundled blog live on that name too, and its feed names it as its home page (a source's
    credit links to it): those are the feed's links, not ours."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != PUBLIC:
        return False
    first = parts.path.strip("/").split("/")[0]
    return first in ("feeds", "subscribe", "confirm", "unsubscribe", "preferences")


async def crawl(client: httpx.AsyncClient, start: list[str]) -> dict[str, str]:
    """Each same-origin URL reached from the pages `start` -> the page that linked it. The
    start pages may be error pages (a 404's links count too); every URL reached must not."""
    seen: dict[str, str] = {url: "(start)" for url in start}
    posted: set[str] = set()
    queue = list(start)
    while queue:
        url = queue.pop()
        response = await client.get(url)
        if url not in start:
            assert response.status_code < 400, f"{url} (from {seen[url]}): {response.status_code}"
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        found = parse(response.text)
        for action in found.forms:
            target = urljoin(url, action)
            assert target.startswith(f"{LOCAL}/"), f"form on {url} posts to {target}"
            if target not in posted:
                # A route that takes a POST: 403 (no CSRF token here) is fine, 404/405 not.
                posted.add(target)
                probe = await client.post(target, data={})
                assert probe.status_code not in (404, 405), (url, target, probe.status_code)
        for link in found.links:
            target = urldefrag(urljoin(url, link)).url
            assert not ours_on_public(target), f"{url} links to the public {target}"
            if target.startswith(f"{LOCAL}/") and target not in seen:
                seen[target] = url
                queue.append(target)
    return seen


async def test_every_link_and_form_works_on_the_host_serving_the_page(
    local: httpx.AsyncClient, web_site: tuple[Settings, Store]
) -> None:
    settings, store = web_site
    subscriber, _ = await add(store, "ann@example.org", WEB_NOW, confirmed=True)
    pending, _ = await add(store, "bob@example.org", WEB_NOW)
    tokens = Tokens(signing_secret(settings), FrozenClock(WEB_NOW))
    seen = await crawl(
        local,
        [
            f"{LOCAL}/",
            f"{LOCAL}/subscribe",
            f"{LOCAL}/no/such/page",  # the 404 page's links, two folders down
            tokens.link(LOCAL, "preferences", subscriber),
            tokens.link(LOCAL, "confirm", pending),
            tokens.link(LOCAL, "unsubscribe", subscriber),  # last: its form unsubscribes
        ],
    )
    paths = {urlsplit(url).path for url in seen}
    # The crawl went through the published archive pages and the feeds they link to.
    assert "/feeds/archive/index.html" in paths
    assert "/feeds/archive/2015-12.html" in paths and "/feeds/archive/2015-11.html" in paths
    assert "/feeds/archive/2015-12.atom" in paths
    assert {"/feeds/index.rss", "/feeds/index.atom", "/feeds/index.json"} <= paths
    assert {"/feeds/", "/feeds/digest/"} <= paths  # the list of feeds, the past issues


async def test_feeds_keep_the_public_url(local: httpx.AsyncClient) -> None:
    # Feed readers fetch feeds from elsewhere: their links stay absolute.
    feed = await local.get("/feeds/index.atom")
    assert feed.status_code == 200
    assert f'href="{PUBLIC}/feeds/index.atom"' in feed.text


def test_the_relative_root_is_only_dots() -> None:
    from syndicate.publish.pages import root_from  # here: the other tests run without it

    assert root_from("/") == "."
    assert root_from("/subscribe") == "."
    assert root_from("/confirm/MQ.abc") == ".."
    assert root_from("/feeds/archive/2015-12.html") == "../.."
    assert root_from("/a/b/") == "../.."
    # Whatever the request path holds, nothing of it reaches the page.
    assert root_from("//evil.example/x") == "../.."
    assert re.fullmatch(r"\.|\.\.(/\.\.)*", root_from("/" + "x/" * 30 + "y"))


def test_published_pages_link_relative_to_their_folder(
    web_site: tuple[Settings, Store],
) -> None:
    settings, _ = web_site
    folder: Path = settings.publish_dir
    for page in (*folder.glob("archive/*.html"), folder / "digest" / "index.html"):
        text = page.read_text()
        assert f"{PUBLIC}/feeds" not in text, page.name
        links = parse(text).links
        assert 'href="../.."' in text, page.name  # the site's title, to the home page
        for link in links:
            if "://" not in link and not link.endswith(".html"):
                assert link.startswith("../.."), (page.name, link)
    feeds_page = (folder / "index.html").read_text()
    assert f"{PUBLIC}/feeds" not in feeds_page
    assert 'href=".."' in feeds_page
