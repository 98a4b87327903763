"""/healthz, /metrics, and `syndicate serve` as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url
from test_web_connections import set_web
from test_worker_process import Process
from webclient import WEB_NOW, web_client

from syndicate.clock import FrozenClock
from syndicate.config import Settings, missing_secrets
from syndicate.config.settings import WebSettings
from syndicate.models import BounceEvent, BouncePolicy, InboundMail
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
    assert body["reason"] == "cannot connect to or open the database"
    assert "127.0.0.1" not in response.text  # the details are for the log, not the public
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


async def test_metrics_count_bounces_and_returned_mail(
    web: httpx.AsyncClient, web_site: Site
) -> None:
    _, store = web_site
    before = metrics_of((await web.get("/metrics")).text)
    for kind in ("hard", "soft", "complaint", "unsubscribe"):  # every series, zeros included
        assert before[("syndicate_bounce_events_total", (("kind", kind),))] == 0
    for outcome in ("applied", "ignored", "unmatched", "forged", "unreadable"):
        assert before[("syndicate_inbound_mail_total", (("outcome", outcome),))] == 0
    reader = await store.insert_subscriber(
        {
            "email": "bounced@example.org",
            "status": "active",
            "categories": [],
            "consent_source": "test",
            "consented_at": WEB_NOW,
        }
    )
    assert reader is not None
    policy = BouncePolicy(hard_limit=1, soft_limit=3, soft_window=timedelta(days=30))
    for n, outcome in enumerate(("applied", "forged", "forged")):
        mail = InboundMail(f"{n:064}", "imap", "hard", outcome, "test", WEB_NOW)
        event = BounceEvent(reader.id, None, "hard", "5.1.1", "", WEB_NOW) if n == 0 else None
        await store.record_inbound(mail, event, policy, WEB_NOW)
    after = metrics_of((await web.get("/metrics")).text)
    assert after[("syndicate_bounce_events_total", (("kind", "hard"),))] == 1
    assert after[("syndicate_inbound_mail_total", (("outcome", "applied"),))] == 1
    assert after[("syndicate_inbound_mail_total", (("outcome", "forged"),))] == 2
    assert after[("syndicate_subscribers", (("status", "bounced"),))] == 1


async def test_metrics_say_the_database_is_down(web_site: Site, unreachable: Store) -> None:
    async with web_client(create_app(web_site[0], store=unreachable)) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert metrics_of(response.text) == {("syndicate_database_up", ()): 0}


@dataclass
class Serving:
    url: str  # on 127.0.0.1
    port: int
    log: str = ""  # the process's stderr, once it has stopped


@contextlib.contextmanager
def syndicate_serve(
    settings: Settings, host: str = "127.0.0.1", *, access_log: bool = False
) -> Iterator[Serving]:
    """`syndicate serve` on `settings`, as a real process on a free port of `host`."""
    port = free_port()
    options = ["--host", host, "--port", str(port)]
    if not access_log:
        options.append("--no-access-log")
    env = {**os.environ, "SYNDICATE_SECRET": "serve-test-secret"}
    process = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(settings.path), "serve", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    serving = Serving(f"http://127.0.0.1:{port}", port)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the socket listens
        expected = f"serving Riverside Commons News on http://{host}:{port}/ (Ctrl-C to stop)\n"
        assert line == expected, line
        yield serving
    finally:
        process.send_signal(signal.SIGINT)
        out, serving.log = process.communicate(timeout=30)
    assert process.returncode == 0, serving.log
    assert out == "stopped\n"
    assert "Traceback" not in serving.log


@pytest.fixture
def served(web_site: Site) -> Iterator[str]:
    with syndicate_serve(web_site[0]) as serving:
        yield serving.url


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


# uvicorn's line through syndicate's log format: 'INFO    uvicorn.access: 127.0.0.1:5555 -
# "GET / HTTP/1.1" 200'.
ACCESS_LINE = re.compile(
    r' INFO +uvicorn\.access: 127\.0\.0\.1:\d+ - "(\w+) (\S+) HTTP/1\.1" (\d+)$'
)
TOKEN = "MQ.aGVsbG8.c2VjcmV0LXRva2VuLXRoYXQtbXVzdC1ub3QtbGVhaw"


def requests_logged(log: str) -> list[tuple[str, str, int]]:
    found = (ACCESS_LINE.search(line) for line in log.splitlines())
    return [(m.group(1), m.group(2), int(m.group(3))) for m in found if m]


def visit(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/").status_code == 200
        assert client.get("/feeds/index.atom").status_code == 200
        assert client.get("/no/such/page?q=1").status_code == 404
        assert client.get(f"/preferences/{TOKEN}").status_code == 400
        assert client.post(f"/unsubscribe/{TOKEN}").status_code == 400


VISITED = [
    ("GET", "/", 200),
    ("GET", "/feeds/index.atom", 200),
    ("GET", "/no/such/page?q=1", 404),
    ("GET", "/preferences/...", 400),  # the token of a signed link is not logged
    ("POST", "/unsubscribe/...", 400),
]


def test_syndicate_serve_logs_one_line_per_request_by_default(web_site: Site) -> None:
    with syndicate_serve(web_site[0], access_log=True) as serving:
        visit(serving.url)
    assert requests_logged(serving.log) == VISITED, serving.log
    assert TOKEN not in serving.log
    with syndicate_serve(web_site[0], access_log=False) as quiet:
        visit(quiet.url)
    assert requests_logged(quiet.log) == []


@pytest.mark.timeout(90)
async def test_syndicate_run_logs_one_line_per_request_by_default(project: Path) -> None:
    worker = await Process.start(project / "config.toml", "run", "--port", "0")
    try:
        url = (await worker.line(r"^web: (http://\S+)")).group(1)
        await worker.line(r"published to .*feeds: \d+ written")
        await asyncio.to_thread(visit, url.rstrip("/"))
        worker.signal(signal.SIGTERM)
        assert await worker.wait(within=20) == 0, "\n".join(worker.errors)
    finally:
        await worker.kill()
    log = "\n".join(worker.errors)
    assert [r for r in requests_logged(log) if r[1] != "/healthz"] == VISITED, log
    assert TOKEN not in log


def serve_failing(settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(settings.path), "serve", "--port", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "SYNDICATE_SECRET": "serve-test-secret"},
        timeout=60,
    )


async def test_syndicate_serve_names_a_database_it_cannot_open(web_site: Site) -> None:
    settings, store = web_site
    await store.close()
    database = sqlite_path(settings)
    checkpoint(database)
    damage_pages(database, {1})  # the header: not a database any more
    result = serve_failing(settings)
    assert result.returncode == 1
    assert result.stderr == (
        f"error: database {database} is damaged: file is not a database"
        " (restore it from a backup)\n"
    )


def test_syndicate_serve_says_when_the_app_itself_cannot_start(web_site: Site) -> None:
    settings, _ = web_site
    # Without the variable, the signing secret is read from var/secret: here a folder.
    settings.resolve("var/secret").mkdir(parents=True)
    set_web(settings.path, secret_env="NO_SUCH_SECRET_VARIABLE")
    result = serve_failing(settings)
    assert result.returncode == 1
    assert "error: the web app could not start (the log above says why)" in result.stderr
    assert "address in use" not in result.stderr


def test_serve_help_has_an_example() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    )
    assert "syndicate serve --host 0.0.0.0 --port 8080" in result.stdout
    text = " ".join(result.stdout.split())
    assert "/metrics then still answers only loopback clients (127.0.0.0/8, ::1)" in text


# /metrics: who may read it.


def with_web(settings: Settings, **values: Any) -> Settings:
    """`settings` with [web] keys changed, validated as if read from the file."""
    web = WebSettings.model_validate({**settings.web.model_dump(), **values})
    return settings.model_copy(update={"web": web})


@contextlib.asynccontextmanager
async def client_at(settings: Settings, store: Store, address: str) -> AsyncIterator[Any]:
    """A client of the app whose requests come from `address` (the ASGI scope's client,
    as uvicorn sets it from the socket's peer or a local proxy's X-Forwarded-For)."""
    app = create_app(settings, store=store, clock=FrozenClock(WEB_NOW))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(address, 50123))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def is_metrics(response: httpx.Response) -> bool:
    return response.status_code == 200 and "syndicate_database_up" in response.text


def is_not_found(response: httpx.Response) -> bool:
    """The site's own 404 page, saying nothing of metrics."""
    return (
        response.status_code == 404
        and response.headers["content-type"].startswith("text/html")
        and "syndicate_" not in response.text
    )


LOOPBACK = ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]
ELSEWHERE = ["203.0.113.7", "10.1.2.3", "192.168.0.9", "::ffff:203.0.113.7", "fd00::5", "unknown"]


async def test_metrics_answer_loopback_clients_and_404_everyone_else(web_site: Site) -> None:
    settings, store = web_site
    for address in LOOPBACK:
        async with client_at(settings, store, address) as client:
            assert is_metrics(await client.get("/metrics")), address
    for address in ELSEWHERE:
        async with client_at(settings, store, address) as client:
            assert is_not_found(await client.get("/metrics")), address
            assert (await client.head("/metrics")).status_code == 404
            assert (await client.get("/healthz")).status_code == 200  # health stays public


async def test_metrics_allow_lists_the_networks_that_may_scrape(web_site: Site) -> None:
    settings, store = web_site
    monitoring = with_web(settings, metrics_allow=["203.0.113.0/24", "2001:db8::/32"])
    for address in ("203.0.113.7", "203.0.113.250", "2001:db8::9", "::ffff:203.0.113.7"):
        async with client_at(monitoring, store, address) as client:
            assert is_metrics(await client.get("/metrics")), address
    # The list replaces the default: loopback is allowed only when listed.
    for address in ("127.0.0.1", "::1", "203.0.114.1", "198.51.100.7"):
        async with client_at(monitoring, store, address) as client:
            assert is_not_found(await client.get("/metrics")), address


async def test_metrics_bearer_token_from_the_named_variable(
    web_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, store = web_site
    token_only = with_web(settings, metrics_allow=[], metrics_token_env="METRICS_TOKEN")
    monkeypatch.setenv("METRICS_TOKEN", "k7-Qp2xVr9-token")
    async with client_at(token_only, store, "203.0.113.7") as client:
        for good in ("Bearer k7-Qp2xVr9-token", "bearer k7-Qp2xVr9-token"):
            assert is_metrics(await client.get("/metrics", headers={"authorization": good}))
        for bad in (
            "Bearer k7-Qp2xVr9-tokeN",
            "Bearer k7-Qp2xVr9",
            "Bearer k7-Qp2xVr9-token-and-more",
            "Bearer",
            "Basic azctUXAyeFZyOS10b2tlbg==",
            "k7-Qp2xVr9-token",
        ):
            response = await client.get("/metrics", headers={"authorization": bad})
            assert is_not_found(response), bad
        assert is_not_found(await client.get("/metrics"))
    async with client_at(token_only, store, "127.0.0.1") as client:  # loopback not listed
        assert is_not_found(await client.get("/metrics"))

    # An empty or unset variable is no token at all: an empty bearer does not get in.
    monkeypatch.setenv("METRICS_TOKEN", "")
    async with client_at(token_only, store, "203.0.113.7") as client:
        response = await client.get("/metrics", headers={"authorization": "Bearer "})
        assert is_not_found(response)
    assert "web.metrics_token_env: environment variable METRICS_TOKEN is not set" in (
        missing_secrets(token_only)
    )


def test_metrics_allow_refuses_what_is_not_a_network(project: Path) -> None:
    config = project / "config.toml"
    set_web(config, metrics_allow=["10.0.0.0/8", "10.0.0.1/8", "localhost"])
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(config), "check"],
        capture_output=True,
        text=True,
        env={**os.environ, "SYNDICATE_SECRET": "x"},
    )
    assert result.returncode == 2
    assert "web.metrics_allow[1]: not an IP network: '10.0.0.1/8'" in result.stderr
    assert "web.metrics_allow[2]: not an IP network: 'localhost'" in result.stderr
    # Parsed networks validate again as themselves (settings copied with changes).
    assert WebSettings.model_validate(WebSettings().model_dump()) == WebSettings()


def test_syndicate_serve_keeps_metrics_from_proxied_visitors(served: str) -> None:
    """Behind a proxy on the same machine (nginx, as docs/deploy.md sets it up), the app
    sees the visitor's address in X-Forwarded-For; only a local scraper gets the metrics."""
    with httpx.Client(base_url=served, timeout=10) as client:
        assert is_metrics(client.get("/metrics"))
        proxied = {"x-forwarded-for": "203.0.113.7"}
        assert is_not_found(client.get("/metrics", headers=proxied))
        # A visitor claiming to be local, in front of what the proxy appends.
        spoofed = {"x-forwarded-for": "127.0.0.1, 203.0.113.7"}
        assert is_not_found(client.get("/metrics", headers=spoofed))


def non_loopback_address() -> str | None:
    """This machine's own address on its outgoing network interface, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # UDP: picks a route and a source, sends nothing
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if ipaddress.ip_address(address).is_loopback else address


def test_syndicate_serve_on_every_interface_keeps_metrics_local(web_site: Site) -> None:
    """`serve --host 0.0.0.0`, reached through this machine's non-loopback address: a real
    client that is not local, without any header trickery."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    with syndicate_serve(web_site[0], host="0.0.0.0") as serving:
        with httpx.Client(base_url=serving.url, timeout=10) as local:
            assert is_metrics(local.get("/metrics"))
        with httpx.Client(base_url=f"http://{address}:{serving.port}", timeout=10) as remote:
            assert remote.get("/healthz").status_code == 200
            assert is_not_found(remote.get("/metrics"))


# /healthz and a damaged database.


def checkpoint(database: Path) -> None:
    """Move the WAL's pages into the database file, so that damaging the file is damage."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def damage_pages(database: Path, pages: set[int]) -> None:
    """Overwrite whole pages (numbered from 1, as SQLite does) with garbage."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    garbage = random.Random(15).randbytes(size)
    with database.open("r+b") as file:
        for page in pages:
            file.seek((page - 1) * size)
            file.write(garbage)


def pages_holding(database: Path, needle: bytes) -> set[int]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    data = database.read_bytes()
    return {offset // size + 1 for offset in range(len(data)) if data.startswith(needle, offset)}


def sqlite_path(settings: Settings) -> Path:
    return Path(settings.database_url.removeprefix("sqlite:///"))


async def test_syndicate_serve_reports_a_damaged_sqlite_file_and_keeps_serving(
    web_site: Site,
) -> None:
    settings, store = web_site
    newest = (await store.recent_posts(1))[0]
    await store.close()
    database = sqlite_path(settings)
    checkpoint(database)
    # The newest post's rows (the table's and its URL index's): deep in the file, not the
    # first page of any table, so only reading that post or SQLite's quick_check finds it.
    damaged = pages_holding(database, newest.url.encode())
    assert damaged
    damage_pages(database, damaged)

    with syndicate_serve(settings) as serving:
        async with httpx.AsyncClient(base_url=serving.url) as client:
            for _ in range(3):  # a load balancer asking again and again
                response = await client.get("/healthz")
                assert response.status_code == 503
                body = response.json()
                assert body["status"] == "unavailable"
                assert body["database"] == "damaged"
                assert body["reason"] == "the database file is damaged (SQLite quick_check)"
            # The server keeps running: the published feeds do not need the database.
            assert (await client.get("/feeds/index.atom")).status_code == 200
    errors = [line for line in serving.log.splitlines() if "healthz:" in line]
    assert len(errors) == 1, serving.log  # logged when it changed, not at every request
    assert "the database file is damaged" in errors[0]


async def test_healthz_is_503_when_a_table_cannot_be_read(
    web_site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    settings, store = web_site
    await store.close()
    database = sqlite_path(settings)
    checkpoint(database)
    with contextlib.closing(sqlite3.connect(database)) as conn:
        roots = {
            page
            for (page,) in conn.execute(
                "SELECT rootpage FROM sqlite_master WHERE tbl_name = 'posts' AND rootpage > 0"
            )
        }
    damage_pages(database, roots)  # the posts table and its indexes, from their first page
    async with (
        await Store.open(settings.database_url) as damaged,
        web_client(create_app(settings, store=damaged)) as client,
    ):
        first = await client.get("/healthz")
        again = await client.get("/healthz")
    for response in (first, again):
        assert response.status_code == 503
        assert response.json()["database"] == "unreadable"
        assert response.json()["reason"] == "a table of the database cannot be read"
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("healthz:")]
    assert logged == [
        "healthz: a table of the database cannot be read: database disk image is malformed"
    ]


async def test_healthz_reads_every_table_on_both_backends(web_site: Site, store: Store) -> None:
    async with web_client(create_app(web_site[0], store=store)) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    assert (await store.health(integrity=True)).ok


@pytest.mark.postgresql
async def test_healthz_is_503_once_the_postgresql_database_is_dropped(
    web_site: Site, postgres_url: str
) -> None:
    url = make_url(postgres_url)
    admin_dsn = url.set(drivername="postgresql", database="postgres")
    async with (
        await Store.open(postgres_url) as store,
        web_client(create_app(web_site[0], store=store)) as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
        async with await psycopg.AsyncConnection.connect(
            admin_dsn.render_as_string(hide_password=False), autocommit=True
        ) as admin:
            await admin.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
