"""/healthz, /metrics, and `syndicate serve` as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from webclient import WEB_NOW, web_client

from syndicate.clock import FrozenClock
from syndicate.config import Settings
from syndicate.store import Store
from syndicate.web.app import create_app

Site = tuple[Settings, Store]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_healthz_reports_the_database_ingest_and_worker(web_site: Site) -> None:
    settings, store = web_site
    app = create_app(
        settings,
        store=store,
        clock=FrozenClock(WEB_NOW),
        worker_state=lambda: {"running": True, "next_ingest_at": WEB_NOW + timedelta(minutes=5)},
    )
    async with web_client(app) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "last_ingest_at": "2016-01-02T12:00:00+00:00",
        "now": "2016-01-02T12:00:00+00:00",
        "worker": {"running": True, "next_ingest_at": "2016-01-02T12:05:00+00:00"},
    }


@pytest.fixture
async def unreachable(web_site: Site) -> AsyncIterator[Store]:
    # PostgreSQL on a port where nothing listens: connecting fails at once.
    store = await Store.open(
        f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/nothing", upgrade=False
    )
    yield store
    await store.close()


async def test_healthz_is_503_when_the_database_is_unreachable(
    web_site: Site, unreachable: Store
) -> None:
    async with web_client(create_app(web_site[0], store=unreachable)) as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["database"] == "unreachable"
    assert "worker" not in body  # not run by the worker


def metrics_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_read_the_store_at_scrape_time(
    web: httpx.AsyncClient, web_site: Site
) -> None:
    _, store = web_site
    response = await web.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    values = metrics_of(response.text)
    assert values[("syndicate_database_up", ())] == 1
    counts = await store.post_counts()
    for source, count in counts.items():
        assert values[("syndicate_posts", (("source", source),))] == count
    for state in await store.source_states():
        labels = (("source", state.name),)
        assert values[("syndicate_source_consecutive_failures", labels)] == 0
        assert values[("syndicate_source_last_poll_failed", labels)] == 0
        assert (
            values[("syndicate_source_last_poll_timestamp_seconds", labels)] == WEB_NOW.timestamp()
        )
    assert values[("syndicate_deliveries_sent_total", ())] == 0
    assert values[("syndicate_send_rate_per_second", ())] == 0
    assert values[("syndicate_subscribers", (("status", "active"),))] == 0

    # A new subscriber shows up in the next scrape: nothing is cached between scrapes.
    await store.insert_subscriber(
        {
            "email": "reader@example.org",
            "status": "active",
            "categories": [],
            "consent_source": "test",
            "consented_at": WEB_NOW,
        }
    )
    again = metrics_of((await web.get("/metrics")).text)
    assert again[("syndicate_subscribers", (("status", "active"),))] == 1


async def test_metrics_say_the_database_is_down(web_site: Site, unreachable: Store) -> None:
    async with web_client(create_app(web_site[0], store=unreachable)) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert metrics_of(response.text) == {("syndicate_database_up", ()): 0}


@pytest.fixture
def served(web_site: Site) -> Iterator[str]:
    """`syndicate serve` on the bundled config, as a real process on a free port."""
    settings, _ = web_site
    port = free_port()
    options = ["--port", str(port), "--no-access-log"]
    env = {**os.environ, "SYNDICATE_SECRET": "serve-test-secret"}
    process = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(settings.path), "serve", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the socket listens
        url = f"http://127.0.0.1:{port}"
        assert line == f"serving Riverside Commons News on {url}/ (Ctrl-C to stop)\n", line
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out == "stopped\n"
    assert "Traceback" not in err


def test_syndicate_serve_serves_the_home_page_and_feeds_with_304s(served: str) -> None:
    with httpx.Client(base_url=served, timeout=10) as client:
        home = client.get("/")
        assert home.status_code == 200 and "Riverside Commons News" in home.text
        feed = client.get("/feeds/index.atom")
        assert feed.status_code == 200
        assert feed.headers["content-type"] == "application/atom+xml; charset=utf-8"
        again = client.get("/feeds/index.atom", headers={"if-none-match": feed.headers["etag"]})
        assert again.status_code == 304
        since = client.get(
            "/feeds/index.rss", headers={"if-modified-since": feed.headers["last-modified"]}
        )
        assert since.status_code == 304
        assert client.get("/healthz").json()["status"] == "ok"


def test_serve_help_has_an_example() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    )
    assert "syndicate serve --host 0.0.0.0 --port 8080" in result.stdout
