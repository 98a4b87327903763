"""Web app test helpers: an httpx client over the ASGI app, with the app's lifespan run.

    async with web_client(create_app(settings, store=store, clock=clock)) as client:
        response = await client.get("/")

    async def test_home(web: httpx.AsyncClient) -> None:       # the fixture: bundled config,
        assert (await web.get("/")).status_code == 200         # ingested and published

`web_site` is the bundled config (the `project` fixture) with its examples ingested, forum
links made and the feeds published, as (settings, store); `web` is a client over its app.
Requests go to http://testserver/ (no network). Pass raise_app_exceptions=False to see the
500 page a visitor would get instead of the exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from conftest import english_only
from starlette.applications import Starlette

from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.forum.linker import link_discussions
from syndicate.ingest.poll import ingest
from syndicate.publish.build import publish
from syndicate.store import Store
from syndicate.web.app import create_app

REPO = Path(__file__).resolve().parent.parent

# After the bundled examples' newest post (December 2015), as tests/test_digest.py uses.
WEB_NOW = datetime(2016, 1, 2, 12, 0, tzinfo=UTC)


@contextlib.asynccontextmanager
async def web_client(
    app: Starlette, *, raise_app_exceptions: bool = True, base_url: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    """A client for `app`, inside its lifespan (so services(request) works)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


async def prepare_site(project: Path, clock: FrozenClock | None = None) -> tuple[Settings, Store]:
    """The bundled config in `project`, ingested, linked to the forum and published."""
    clock = clock or FrozenClock(WEB_NOW)
    settings = load_settings(project / "config.toml")
    store = await Store.open(settings.database_url)
    await ingest(settings, store, clock)
    await link_discussions(settings, store, clock)
    await publish(settings, store, clock)
    return settings, store


@pytest.fixture(scope="session")
def prepared_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled project ingested and published once per session (ingest takes seconds);
    each test gets a copy of its database and feeds."""
    folder = tmp_path_factory.mktemp("prepared-site")
    shutil.copy(REPO / "config.toml", folder / "config.toml")
    for name in ("examples", "templates", "locales"):
        shutil.copytree(REPO / name, folder / name)
    english_only(folder / "config.toml")  # as the `project` fixture, which the tests pair it with

    async def prepare() -> None:
        _, store = await prepare_site(folder)
        await store.close()

    asyncio.run(prepare())
    return folder


@pytest.fixture
async def web_site(
    project: Path, prepared_site: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Settings, Store]]:
    monkeypatch.setenv("SYNDICATE_SECRET", "test-secret-for-the-web-app")
    for name in ("var", "feeds"):
        shutil.copytree(prepared_site / name, project / name, symlinks=True)
    settings = load_settings(project / "config.toml")
    store = await Store.open(settings.database_url)
    try:
        yield settings, store
    finally:
        await store.close()


@pytest.fixture
async def web(web_site: tuple[Settings, Store]) -> AsyncIterator[httpx.AsyncClient]:
    settings, store = web_site
    app = create_app(settings, store=store, clock=FrozenClock(WEB_NOW))
    async with web_client(app) as client:
        yield client
