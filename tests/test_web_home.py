"""The home page, the error pages and the hardening every response gets."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from webclient import WEB_NOW, web_client

from syndicate.config import Settings
from syndicate.store import Store
from syndicate.web.app import create_app
from syndicate.web.security import SECURITY_HEADERS, BodyLimit, exception_handlers

Site = tuple[Settings, Store]


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS:
        assert response.headers[name.decode()] == value.decode(), name


async def test_home_shows_the_latest_posts_newest_first(
    web: httpx.AsyncClient, web_site: Site
) -> None:
    _, store = web_site
    response = await web.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"  # it carries a CSRF token
    page = response.text
    assert '<html lang="en">' in page
    assert "<h1>Riverside Commons News</h1>" in page
    assert "Clean rivers, shared gardens" in page  # the site description
    latest = await store.recent_posts(10)
    positions = [page.index(f'<a href="{post.url}">') for post in latest]
    assert positions == sorted(positions) and len(latest) == 10
    older = (await store.recent_posts(11))[-1]
    assert f'<a href="{older.url}">' not in page
    # Dates in the site time zone (Europe/London), with the source credited.
    assert '<time datetime="2015-12-15T09:00:00+00:00">15 December 2015</time>' in page
    assert "Wetland Alliance (partner)</a>" in page


async def test_discussion_links_show_the_reply_count(
    web: httpx.AsyncClient, web_site: Site
) -> None:
    _, store = web_site
    posts = await store.recent_posts(2)
    assert all(post.discussion_url for post in posts)
    await store.save_reply_counts({posts[0].id: 3, posts[1].id: 1}, WEB_NOW)  # type: ignore[dict-item]
    page = (await web.get("/")).text
    assert f'<a class="discuss" href="{posts[0].discussion_url}">Discuss (3 comments)</a>' in page
    assert f'<a class="discuss" href="{posts[1].discussion_url}">Discuss (1 comment)</a>' in page


async def test_home_links_the_feeds_the_archive_and_includes_the_form(
    web: httpx.AsyncClient,
) -> None:
    page = (await web.get("/")).text
    # Relative, so the page works on the host it is served from (the bundled [site] url
    # does not exist): http://127.0.0.1:8080/ on the admin's machine, the public name later.
    base = "./feeds"
    for kind, ext in (("rss+xml", "rss"), ("atom+xml", "atom"), ("feed+json", "json")):
        assert re.search(
            rf'<link rel="alternate" type="application/{re.escape(kind)}" title="[^"]+" '
            rf'href="{base}/index.{ext}">',
            page,
        )
    for month in ("2015-06", "2015-11", "2015-12"):
        assert f'href="{base}/archive/{month}.html"' in page
    assert page.index("2015-12.html") < page.index("2015-11.html")  # newest first
    assert "December 2015</a>" in page
    assert re.search(r'<form [^>]*action="\./subscribe"', page)  # web/subscribe-form.html.j2
    # Posts link to their own sites; nothing of ours points at the public [site] url.
    assert "news.riverside-commons.example/feeds" not in page
    assert 'href="https://news.riverside-commons.example"' not in page
    assert re.search(r'name="csrf_token" value="[^"]{20,}"', page)
    # The site's categories to choose from ([site] categories), not every feed tag.
    offered = re.findall(r'name="categories"\s+value="([^"]*)"', page)
    assert offered == [
        "Rivers", "Wildlife", "Gardens", "Volunteering", "Events", "Policy", "Partners",
        "Field notes",
    ]  # fmt: skip


async def test_a_hostile_post_title_is_escaped(web: httpx.AsyncClient, web_site: Site) -> None:
    _, store = web_site
    newest = (await store.recent_posts(1))[0]
    hostile = replace(
        newest,
        id=None,
        guid="hostile",
        url="https://news.riverside-commons.example/hostile",
        title='<script>alert("x")</script> & <b>bold</b>',
        excerpt="<img src=x onerror=alert(1)>",
        published=newest.published + timedelta(days=1),
    )
    await store.upsert_posts(newest.source, [hostile], WEB_NOW)
    page = (await web.get("/")).text
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


async def test_pages_are_phone_friendly_and_accessible(web: httpx.AsyncClient) -> None:
    page = (await web.get("/")).text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "a:focus-visible" in page
    # One h1, sections with h2 headings, posts as h3 under them.
    assert page.count("<h1>") == 1
    assert '<h2 class="section" id="latest">' in page and "<h3><a href=" in page
    assert re.search(r'<label for="[^"]+"', page)  # the form's fields are labelled


async def test_unknown_pages_get_the_404_page(web: httpx.AsyncClient) -> None:
    response = await web.get("/no/such/page")
    assert response.status_code == 404
    assert "<h1>Page not found</h1>" in response.text
    assert '<a href="../../">Go to the home page</a>' in response.text  # from /no/such/
    assert_security_headers(response)


async def test_a_wrong_method_gets_the_405_page(web: httpx.AsyncClient) -> None:
    response = await web.put("/", content=b"x")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]
    assert "<h1>Method not allowed</h1>" in response.text
    assert_security_headers(response)


async def test_a_large_body_gets_the_413_page(web: httpx.AsyncClient) -> None:
    response = await web.post("/", content=b"x" * (17 * 1024))
    assert response.status_code == 413
    assert "<h1>Request too large</h1>" in response.text
    assert_security_headers(response)


async def test_a_large_streamed_body_is_cut_off() -> None:
    # No Content-Length (chunked): the limit applies while the route reads the body.
    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    app = Starlette(
        routes=[Route("/", echo, methods=["POST"])],
        middleware=[Middleware(BodyLimit, limit=1000)],
        exception_handlers=exception_handlers(),
    )

    async def chunks(n: int) -> AsyncIterator[bytes]:
        for _ in range(n):
            yield b"x" * 100

    async with web_client(app) as client:
        small = await client.post("/", content=chunks(5))
        large = await client.post("/", content=chunks(20))
    assert small.text == "500"
    assert large.status_code == 413
    assert large.text.startswith("Request too large")  # no services: the plain-text page


async def test_a_broken_template_gives_a_plain_500_and_logs_where(
    web_site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    settings, store = web_site
    home = settings.templates_dir / "web" / "home.html.j2"
    home.write_text(
        '{% extends "web/base.html.j2" %}\n'
        "{% block content %}\n{{ no_such_thing }}\n{% endblock %}\n"
    )
    caplog.set_level(logging.ERROR)
    async with web_client(create_app(settings, store=store)) as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in response.text
    for leak in ("Traceback", "no_such_thing", "home.html.j2", "jinja2"):
        assert leak not in response.text
    assert_security_headers(response)
    assert "templates/web/home.html.j2:3: 'no_such_thing' is undefined" in caplog.text


async def test_a_misspelt_field_is_logged_as_the_template_sees_it(
    web_site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    settings, store = web_site
    home = settings.templates_dir / "web" / "home.html.j2"
    home.write_text(
        '{% extends "web/base.html.j2" %}\n'
        "{% block content %}\n{% for post in posts %}\n{{ post.titel }}\n{% endfor %}\n"
        "{% endblock %}\n"
    )
    caplog.set_level(logging.ERROR)
    async with web_client(create_app(settings, store=store)) as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert 'templates/web/home.html.j2:4: a post has no field "titel"; did you mean "title"?' in (
        caplog.text
    )
    assert "syndicate.models" not in caplog.text and "has no attribute" not in caplog.text


async def test_a_broken_message_template_falls_back_to_plain_text(web_site: Site) -> None:
    settings, store = web_site
    (settings.templates_dir / "web" / "message.html.j2").write_text("{{ broken(")
    async with web_client(create_app(settings, store=store)) as client:
        response = await client.get("/missing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text.startswith("Page not found\n")
    assert_security_headers(response)


async def test_an_exception_in_a_route_gives_the_500_page_without_a_traceback(
    web_site: Site,
) -> None:
    settings, store = web_site

    async def broken(*args: object, **kwargs: object) -> list[object]:
        raise RuntimeError("secret internals: /srv/syndicate/db password=hunter2")

    store.recent_posts = broken  # type: ignore[method-assign]
    async with web_client(create_app(settings, store=store), raise_app_exceptions=False) as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in response.text
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert_security_headers(response)


async def test_security_headers_on_200_and_304(web: httpx.AsyncClient) -> None:
    page = await web.get("/")
    assert_security_headers(page)
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "style-src 'self' 'unsafe-inline'" in csp  # base.html.j2's inline <style>
    assert "<script" not in page.text  # so no script-src is needed
    feed = await web.get("/feeds/index.rss")
    not_modified = await web.get(
        "/feeds/index.rss", headers={"if-none-match": feed.headers["etag"]}
    )
    assert not_modified.status_code == 304
    assert_security_headers(not_modified)
