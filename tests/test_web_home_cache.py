"""The home page is rendered once per change of what it shows, not once per request (issue
18): the store's content counter, the months counted on the index, and RenderedOnce."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import httpx
import pytest
from test_store_posts import post
from webclient import WEB_NOW

from syndicate.config import Settings
from syndicate.models import PostKey
from syndicate.store import Store
from syndicate.web import pagecache
from syndicate.web.home import TOKEN_SLOT, archive_months, stored_months
from syndicate.web.pagecache import RenderedOnce

Site = tuple[Settings, Store]


def _token(page: str) -> str:
    start = page.index('name="csrf_token" value="') + len('name="csrf_token" value="')
    return page[start : page.index('"', start)]


async def test_the_home_page_is_rendered_once_until_the_posts_change(
    web: httpx.AsyncClient, web_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, store = web_site
    renders = 0
    recent_posts = store.recent_posts

    async def counted(*args: object, **kwargs: object) -> object:
        nonlocal renders
        renders += 1
        return await recent_posts(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "recent_posts", counted)
    first, second = (await web.get("/")).text, (await web.get("/")).text
    assert renders == 1
    # Each visitor still gets a token of their own, never the stand-in.
    assert _token(first) != _token(second)
    assert TOKEN_SLOT.decode() not in first + second

    newest = post("fresh", source="riverside-news", title="Otters seen at the mill")
    newest = replace(newest, published=WEB_NOW, updated=WEB_NOW, first_seen=WEB_NOW)
    await store.upsert_posts("riverside-news", [newest], WEB_NOW)
    page = (await web.get("/")).text
    assert renders == 2
    assert "Otters seen at the mill" in page

    # Polling again without a change changes nothing, so nothing is rendered again.
    await store.upsert_posts("riverside-news", [newest], WEB_NOW)
    await web.get("/")
    assert renders == 2


async def test_the_content_version_moves_with_what_pages_show(store: Store) -> None:
    start = await store.content_version()
    await store.upsert_posts("blog", [post("1")], WEB_NOW)
    after_new = await store.content_version()
    assert after_new > start
    await store.upsert_posts("blog", [post("1")], WEB_NOW)  # unchanged
    assert await store.content_version() == after_new
    [stored] = await store.recent_posts(1)
    await store.save_reply_counts({stored.id: 4}, WEB_NOW)  # type: ignore[dict-item]
    assert await store.content_version() > after_new


@pytest.mark.parametrize("zone", ["Europe/Paris", "Pacific/Auckland", "America/St_Johns"])
async def test_months_counted_in_the_store_match_the_months_of_every_post(
    store: Store, zone: str
) -> None:
    tz = ZoneInfo(zone)
    # Posts either side of month ends in UTC, so the site's zone moves some of them.
    moments = [
        datetime(2015, 11, 30, 23, 30, tzinfo=UTC),
        datetime(2015, 12, 1, 0, 30, tzinfo=UTC),
        datetime(2015, 12, 31, 12, 0, tzinfo=UTC),
        datetime(2015, 12, 31, 23, 59, tzinfo=UTC),
        datetime(2016, 1, 1, 2, 0, tzinfo=UTC),
        datetime(2016, 3, 31, 22, 0, tzinfo=UTC),
        datetime(2014, 6, 15, 12, 0, tzinfo=UTC),
    ]
    batch = [
        post(str(n), published=moment, updated=moment, first_seen=moment)
        for n, moment in enumerate(moments)
    ]
    await store.upsert_posts("blog", batch, WEB_NOW)
    settings = SimpleNamespace(site=SimpleNamespace(tz=tz, url="https://example.org"))
    keys = [PostKey(0, "blog", (), m, m, "", None, None) for m in moments]
    expected = archive_months(settings, keys, feeds_url="./feeds")  # type: ignore[arg-type]
    found = await stored_months(settings, store, feeds_url="./feeds")  # type: ignore[arg-type]
    assert found == expected
    assert sum(month.count for month in found) == len(moments)


async def test_an_empty_store_has_no_months(store: Store) -> None:
    assert await store.month_counts(lambda moment: moment) == []


async def test_concurrent_requests_share_one_read_and_one_render(tmp_path: Path) -> None:
    reads = renders = 0
    version = 1

    async def read() -> int:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)
        return version

    async def render() -> bytes:
        nonlocal renders
        renders += 1
        await asyncio.sleep(0.01)
        return f"page {version}".encode()

    cache = RenderedOnce(read)
    owner = object()
    pages = await asyncio.gather(*(cache.get(owner, tmp_path, render) for _ in range(50)))
    assert set(pages) == {b"page 1"} and (reads, renders) == (1, 1)
    assert await cache.get(owner, tmp_path, render) == b"page 1" and renders == 1
    version = 2
    assert await cache.get(owner, tmp_path, render) == b"page 2" and renders == 2
    # Another owner (a reloaded config's pages) renders afresh.
    assert await cache.get(object(), tmp_path, render) == b"page 2" and renders == 3


async def test_a_template_edit_is_seen_without_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pagecache, "TEMPLATE_CHECK_SECONDS", 0.0)
    template = tmp_path / "web" / "home.html.j2"
    template.parent.mkdir()
    template.write_text("one")
    renders = 0

    async def render() -> bytes:
        nonlocal renders
        renders += 1
        return template.read_bytes()

    async def version() -> int:
        return 7

    cache = RenderedOnce(version)
    owner = object()
    assert await cache.get(owner, tmp_path, render) == b"one"
    assert await cache.get(owner, tmp_path, render) == b"one" and renders == 1
    template.write_text("two, longer")
    assert await cache.get(owner, tmp_path, render) == b"two, longer" and renders == 2


async def test_a_failed_render_is_not_kept(tmp_path: Path) -> None:
    attempts = 0

    async def render() -> bytes:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("template broken")
        return b"fixed"

    async def version() -> int:
        return 1

    cache = RenderedOnce(version)
    with pytest.raises(RuntimeError):
        await cache.get(None, tmp_path, render)
    assert await cache.get(None, tmp_path, render) == b"fixed"


async def test_the_categories_of_stored_posts_come_back_once_each(store: Store) -> None:
    assert await store.post_categories() == []
    await store.upsert_posts(
        "blog",
        [
            post("1", categories=("Rivers", "Events")),
            post("2", categories=("Rivers", "Otters & Voles")),
            post("3", categories=()),
        ],
        WEB_NOW,
    )
    assert sorted(await store.post_categories()) == ["Events", "Otters & Voles", "Rivers"]


async def test_post_keys_decode_each_list_of_categories_once(store: Store) -> None:
    await store.upsert_posts(
        "blog",
        [
            post("1", categories=("Rivers", "Events")),
            post("2", categories=("Rivers", "Events")),
            post("3", categories=()),
        ],
        WEB_NOW,
    )
    keys = {key.id: key for key in await store.post_keys()}
    by_guid = {p.guid: p.id for p in await store.recent_posts(10)}
    one, two, three = (keys[by_guid[guid]] for guid in ("1", "2", "3"))  # type: ignore[index]
    assert one.categories == ("Rivers", "Events") and three.categories == ()
    assert one.categories is two.categories
