"""Fetching stays on the public web: redirects to private addresses are refused.

Real HTTP servers and listening sockets on loopback addresses (127.0.0.0/8 and ::1), and a
real database for the ingest job. Two things cannot run here and are stood in for, through
PublicOnlyBackend's ``resolver`` and ``judge``: public servers (played by servers on
127.0.0.3 and 127.0.0.4, judged public by the stand-in judge) and a DNS server that answers
differently from one lookup to the next (a resolver function).

Private and link-local addresses other than loopback are only ever refused here, never
connected to: nothing of ours listens there.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpcore
import pytest
from httpserver import HttpServer, Response

from syndicate.clock import FrozenClock
from syndicate.config.settings import Settings
from syndicate.errors import FetchError
from syndicate.ingest.fetch import Fetcher, Validators
from syndicate.ingest.netguard import (
    AddressRefused,
    IPAddress,
    PublicOnlyBackend,
    httpx_errors,
    origin,
    refusal,
    resolve,
)
from syndicate.ingest.poll import ingest
from syndicate.store import Store

USER_AGENT = "syndicate-tests/1.0 (+https://example.org/)"
FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    b"<link>https://blog.example/</link><description>d</description>"
    b"<item><title>One</title><link>https://blog.example/1/</link>"
    b"<guid>https://blog.example/?p=1</guid></item></channel></rss>"
)
HINT = "(set [ingest] allow_private = true to allow it)"
METADATA = "a link-local address (the cloud metadata service)"
NOW = datetime(2015, 12, 20, 12, 0, tzinfo=UTC)


# The classifier


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.255.254", "a loopback address"),
        ("::1", "a loopback address"),
        ("0.0.0.0", "an unspecified address"),  # connecting to it reaches this machine
        ("::", "an unspecified address"),
        ("10.0.0.1", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("169.254.169.254", METADATA),
        ("169.254.0.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("100.127.255.255", "a shared (carrier-grade NAT) address"),
        ("224.0.0.1", "a multicast address"),  # is_global says True on Python 3.11
        ("ff02::1", "a multicast address"),
        ("fec0::1", "a site-local address"),  # is_global says True
        ("0.1.2.3", "a reserved address"),
        ("192.0.0.1", "a reserved address"),
        ("192.0.2.1", "a reserved address"),
        ("198.18.0.1", "a reserved address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("2001:db8::1", "a reserved address"),
        ("2001::1", "a reserved address"),  # Teredo
        ("100::1", "a reserved address"),  # discard-only
        # IPv6 forms that carry an IPv4 address are judged by it.
        ("::ffff:127.0.0.1", "a loopback address"),  # IPv4-mapped
        ("::ffff:7f00:2", "a loopback address"),
        ("::ffff:10.1.2.3", "a private address"),
        ("::ffff:169.254.169.254", METADATA),
        ("::ffff:0.0.0.0", "an unspecified address"),
        ("2002:7f00:1::", "a loopback address"),  # 6to4
        ("2002:a00:1::1", "a private address"),
        ("64:ff9b::a9fe:a9fe", METADATA),  # NAT64
        ("64:ff9b::7f00:1", "a loopback address"),
        ("::127.0.0.1", "a reserved address"),  # IPv4-compatible (deprecated): is_global True
        ("64:ff9b:1::1", "a reserved address"),  # local-use NAT64: is_global True
        # Public
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("172.15.255.255", None),
        ("172.32.0.1", None),
        ("100.63.255.255", None),
        ("100.128.0.1", None),
        ("2606:4700::1111", None),
        ("2001:4860:4860::8888", None),
        ("::ffff:8.8.8.8", None),
        ("2002:808:808::", None),
        ("64:ff9b::808:808", None),
    ],
)
def test_refusal(address: str, reason: str | None):
    assert refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    ("host", "address", "reason"),
    [
        # The URL parser passes these on as host names; the resolver reads them as numbers.
        ("2130706433", "127.0.0.1", "a loopback address"),
        ("0x7f000001", "127.0.0.1", "a loopback address"),
        ("0x7f.1", "127.0.0.1", "a loopback address"),
        ("127.1", "127.0.0.1", "a loopback address"),
        ("0177.0.0.1", "127.0.0.1", "a loopback address"),  # octal
        ("017700000001", "127.0.0.1", "a loopback address"),
        ("0", "0.0.0.0", "an unspecified address"),
        ("2852039166", "169.254.169.254", METADATA),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254", METADATA),
        ("10.1", "10.0.0.1", "a private address"),
        ("::1", "::1", "a loopback address"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1", "a loopback address"),
    ],
)
async def test_numeric_host_forms_are_judged_by_the_address_they_resolve_to(
    host: str, address: str, reason: str
):
    with pytest.raises(AddressRefused) as caught:
        await PublicOnlyBackend().addresses(host, 80)
    assert caught.value.address == ipaddress.ip_address(address)
    assert caught.value.reason == reason
    assert str(caught.value) == f"{caught.value.address} is {reason}"


async def test_localhost_resolves_to_loopback_and_is_refused():
    with pytest.raises(AddressRefused) as caught:
        await PublicOnlyBackend().addresses("localhost", 80)
    assert caught.value.reason == "a loopback address"


async def test_public_numeric_hosts_pass():
    # Numbers only: the resolver answers them without asking DNS.
    backend = PublicOnlyBackend()
    assert await backend.addresses("134744072", 443) == [ipaddress.ip_address("8.8.8.8")]
    assert await resolve("2606:4700::1111", 443) == [ipaddress.ip_address("2606:4700::1111")]


async def test_a_name_with_one_private_address_among_public_ones_is_refused():
    async def mixed(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("10.0.0.7")]

    with pytest.raises(AddressRefused) as caught:
        await PublicOnlyBackend(resolver=mixed).addresses("mixed.test", 80)
    assert str(caught.value) == "10.0.0.7 is a private address"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://Example.ORG/feed", ("example.org", 80)),
        ("https://example.org/feed", ("example.org", 443)),
        ("https://example.org:8443/", ("example.org", 8443)),
        ("http://127.0.0.1:80/", ("127.0.0.1", 80)),
        ("http://[::1]:8080/", ("::1", 8080)),
        ("http://user:pw@example.org/", ("example.org", 80)),
        ("examples/feed.xml", None),
        ("http://[::1/", None),
    ],
)
def test_origin(url: str, expected: tuple[str, int] | None):
    assert origin(url) == expected


# Fetching: real servers on loopback


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(
        user_agent=USER_AGENT, connect_timeout=1, read_timeout=1, total_timeout=3
    ) as opened:
        yield opened


@pytest.fixture
def internal() -> Iterator[HttpServer]:
    """An internal service on 127.0.0.1, on another port than the source's server."""
    with HttpServer() as server:
        server.route("/admin", Response(body=b"internal secrets", headers={"X-Internal": "1"}))
        yield server


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket on 127.0.0.1 that nobody should connect to."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.setblocking(False)
        yield sock


@pytest.fixture
def listener6() -> Iterator[socket.socket]:
    """The same on ::1."""
    with socket.create_server(("::1", 0), family=socket.AF_INET6) as sock:
        sock.setblocking(False)
        yield sock


def connections(listener: socket.socket) -> int:
    """How many connections reached ``listener``: the kernel queues each one once its
    handshake is done, accepted or not, so this counts every connect that was made."""
    count = 0
    while True:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


async def fetch_error(
    fetcher: Fetcher, url: str, *, configured_url: str | None = None, source: str = "blog"
) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(source, url, Validators(), configured_url=configured_url)
    error = caught.value
    assert error.source == source
    assert error.status is None and error.retry_after is None and not error.gone
    assert "\n" not in str(error)
    return error


async def test_redirect_to_another_port_on_the_same_host_is_refused(
    http_server: HttpServer, internal: HttpServer, fetcher: Fetcher
):
    target = internal.url_for("/admin")
    http_server.route("/feed", Response.redirect(target))
    error = await fetch_error(fetcher, http_server.url_for("/feed"), source="riverside")
    assert str(error) == (
        f"riverside: redirect to {target} refused: 127.0.0.1 is a loopback address {HINT}"
    )
    assert internal.requests == []
    assert len(http_server.requests) == 1


LOOPBACK = "a loopback address"


@pytest.mark.parametrize(
    ("location", "address", "reason"),
    [
        ("http://127.0.0.1:{port}/", "127.0.0.1", LOOPBACK),
        ("http://127.0.0.1:{port}/admin?x=1", "127.0.0.1", LOOPBACK),
        ("http://localhost:{port}/", None, LOOPBACK),  # whichever address localhost has here
        ("http://2130706433:{port}/", "127.0.0.1", LOOPBACK),
        ("http://0x7f.1:{port}/", "127.0.0.1", LOOPBACK),
        ("http://127.1:{port}/", "127.0.0.1", LOOPBACK),
        ("http://0.0.0.0:{port}/", "0.0.0.0", "an unspecified address"),  # Linux: this machine
        ("http://[::ffff:127.0.0.1]:{port}/", None, LOOPBACK),  # printed ::ffff:7f00:1 on 3.11
        ("http://[::1]:{port6}/", "::1", LOOPBACK),
        ("http://user:secret@127.0.0.1:{port}/", "127.0.0.1", LOOPBACK),
    ],
)
async def test_redirect_to_loopback_opens_no_connection(
    http_server: HttpServer,
    fetcher: Fetcher,
    listener: socket.socket,
    listener6: socket.socket,
    location: str,
    address: str | None,
    reason: str,
):
    target = location.format(port=listener.getsockname()[1], port6=listener6.getsockname()[1])
    http_server.route("/feed", Response.redirect(target, 301))
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch("blog", http_server.url_for("/feed"), Validators())
    assert connections(listener) == 0
    assert connections(listener6) == 0
    error = str(caught.value)
    assert error.startswith("blog: redirect to http://")
    assert error.endswith(f" is {reason} {HINT}")
    if address is not None:
        assert f" refused: {address} is {reason}" in error
    assert "secret" not in error


async def test_the_refused_url_is_shown_safely(
    http_server: HttpServer, fetcher: Fetcher, listener: socket.socket
):
    # Credentials, a right-to-left override and odd bytes in the Location: the line names
    # the address in printable ASCII, without the password.
    port = listener.getsockname()[1]
    location = f"http://admin:hunter2@127.0.0.1:{port}/\u202egnp.exe%0a?q=<b>"
    http_server.route("/feed", Response.redirect(location.encode("utf-8").decode("latin-1")))
    error = str(await fetch_error(fetcher, http_server.url_for("/feed")))
    assert error.isascii() and error.isprintable()
    assert "hunter2" not in error and "admin" not in error
    shown = f"http://127.0.0.1:{port}/%E2%80%AEgnp.exe%0a?q=%3Cb%3E"
    assert error.startswith(f"blog: redirect to {shown} refused: 127.0.0.1 is a loopback")
    assert connections(listener) == 0


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://127.0.0.1:5432/", "127.0.0.1 is a loopback address"),  # PostgreSQL
        (
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            f"169.254.169.254 is {METADATA}",
        ),
        (
            "http://0xa9fea9fe/latest/meta-data/",
            f"169.254.169.254 is {METADATA}",
        ),
    ],
)
async def test_redirect_to_postgres_or_the_metadata_service_is_refused(
    http_server: HttpServer, fetcher: Fetcher, location: str, reason: str
):
    http_server.route("/feed", Response.redirect(location, 307))
    error = await fetch_error(fetcher, http_server.url_for("/feed"), source="riverside")
    assert str(error) == f"riverside: redirect to {location} refused: {reason} {HINT}"


async def test_redirect_back_to_the_configured_host_and_port_is_followed(
    http_server: HttpServer, fetcher: Fetcher
):
    http_server.route("/old", Response.redirect(http_server.url_for("/moving"), 301))
    http_server.route("/moving", Response.redirect("/feed", 308))
    http_server.route("/feed", Response(body=FEED))
    result = await fetcher.fetch("blog", http_server.url_for("/old"), Validators())
    assert result.body == FEED
    assert result.permanent_url == http_server.url_for("/feed")
    # The same when the URL fetched is a remembered move on the configured host and port.
    again = await fetcher.fetch(
        "blog", result.url, Validators(), configured_url=http_server.url_for("/old")
    )
    assert again.body == FEED


async def test_the_configured_host_is_taken_as_written(http_server: HttpServer, fetcher: Fetcher):
    # Configured as localhost: localhost on the same port is its own host, 127.0.0.1 is not.
    port = http_server.url.rsplit(":", 1)[1]
    http_server.route("/feed", Response(body=FEED))
    http_server.route("/by-name", Response.redirect(f"http://localhost:{port}/feed"))
    http_server.route("/by-number", Response.redirect(f"http://127.0.0.1:{port}/feed"))
    result = await fetcher.fetch("blog", f"http://localhost:{port}/by-name", Validators())
    assert result.body == FEED
    error = await fetch_error(fetcher, f"http://localhost:{port}/by-number")
    assert f"redirect to http://127.0.0.1:{port}/feed refused" in str(error)
    assert len(http_server.requests_to("/feed")) == 1


async def test_allow_private_follows_the_redirect(http_server: HttpServer, internal: HttpServer):
    internal.route("/feed", Response(body=FEED))
    http_server.route("/feed", Response.redirect(internal.url_for("/feed"), 302))
    async with Fetcher(user_agent=USER_AGENT, allow_private=True) as fetcher:
        result = await fetcher.fetch("blog", http_server.url_for("/feed"), Validators())
    assert result.body == FEED
    assert result.url == internal.url_for("/feed")
    assert len(internal.requests) == 1


async def test_a_remembered_move_is_no_way_around(
    http_server: HttpServer, internal: HttpServer, fetcher: Fetcher
):
    # The stored moved URL is fetched first; only the configured URL's host and port are exempt.
    internal.route("/feed", Response(body=FEED))
    moved = internal.url_for("/feed")
    error = await fetch_error(fetcher, moved, configured_url=http_server.url_for("/feed"))
    assert str(error) == f"blog: fetching {moved} refused: 127.0.0.1 is a loopback address {HINT}"
    assert internal.requests == []


async def test_one_fetchers_connection_to_a_configured_host_serves_no_other_sources_redirect(
    http_server: HttpServer, internal: HttpServer, fetcher: Fetcher
):
    # "intranet" is configured on the internal server, so the fetcher holds a kept-alive
    # connection to it; "blog" then redirects there and must not reuse that connection.
    internal.route("/feed", Response(body=FEED))
    assert (await fetcher.fetch("intranet", internal.url_for("/feed"), Validators())).body == FEED
    http_server.route("/feed", Response.redirect(internal.url_for("/admin")))
    error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert "refused: 127.0.0.1 is a loopback address" in str(error)
    assert internal.requests_to("/admin") == []


# Public servers and DNS, stood in for (see the module docstring)


STAND_INS = {ipaddress.ip_address("127.0.0.3"), ipaddress.ip_address("127.0.0.4")}


def stand_in_judge(address: IPAddress) -> str | None:
    return None if address in STAND_INS else refusal(address)


class FakeDns:
    """Answers from a table; a name with several answers gives the next one each lookup.
    Numeric hosts go to the real resolver."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        if host not in self.table:
            return await resolve(host, port)
        answers = self.table[host]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return [ipaddress.ip_address(answer)]


@pytest.fixture
def public_one() -> Iterator[HttpServer]:
    with HttpServer("127.0.0.3") as server:
        yield server


@pytest.fixture
def public_two() -> Iterator[HttpServer]:
    with HttpServer("127.0.0.4") as server:
        yield server


def port_of(server: HttpServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


async def test_a_chain_public_public_private_is_refused_at_the_private_hop(
    http_server: HttpServer, public_one: HttpServer, public_two: HttpServer, internal: HttpServer
):
    one, two = f"http://one.test:{port_of(public_one)}", f"http://two.test:{port_of(public_two)}"
    dns = FakeDns({"one.test": ["127.0.0.3"], "two.test": ["127.0.0.4"]})
    http_server.route("/feed", Response.redirect(one + "/a", 301))
    public_one.route("/a", Response.redirect(two + "/b", 301))
    public_two.route("/b", Response.redirect(internal.url_for("/admin"), 301))
    network = PublicOnlyBackend(resolver=dns, judge=stand_in_judge)
    async with Fetcher(user_agent=USER_AGENT, public_network=network) as fetcher:
        error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert str(error) == (
        f"blog: redirect to {internal.url_for('/admin')} refused: "
        f"127.0.0.1 is a loopback address {HINT}"
    )
    # The public hops were followed, by name.
    assert [r.headers["Host"] for r in public_one.requests] == [one.removeprefix("http://")]
    assert [r.headers["Host"] for r in public_two.requests] == [two.removeprefix("http://")]
    assert internal.requests == []
    assert dns.lookups == ["one.test", "two.test", "127.0.0.1"]


async def test_dns_rebinding_connects_to_the_address_that_was_checked(
    http_server: HttpServer, public_one: HttpServer, listener: socket.socket
):
    # rebind.test answers a public address to the first lookup and 127.0.0.1 afterwards. A
    # check that looked the name up and then let the connection look it up again would
    # connect to 127.0.0.1.
    port = port_of(public_one)
    dns = FakeDns({"rebind.test": ["127.0.0.3", "127.0.0.1"]})
    public_one.route("/feed", Response(body=FEED, headers={"Connection": "close"}))
    http_server.route("/feed", Response.redirect(f"http://rebind.test:{port}/feed"))
    network = PublicOnlyBackend(resolver=dns, judge=stand_in_judge)
    async with Fetcher(user_agent=USER_AGENT, public_network=network) as fetcher:
        first = await fetcher.fetch("blog", http_server.url_for("/feed"), Validators())
        assert first.body == FEED
        assert dns.lookups == ["rebind.test"]
        assert public_one.requests[0].headers["Host"] == f"rebind.test:{port}"
        # The server closed the connection: the next one looks the name up again and is
        # refused before connecting.
        error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert f"redirect to http://rebind.test:{port}/feed refused: 127.0.0.1 is a loopback" in str(
        error
    )
    assert dns.lookups == ["rebind.test", "rebind.test"]
    assert len(public_one.requests) == 1
    assert connections(listener) == 0


async def test_the_next_checked_address_is_tried_when_one_refuses(
    http_server: HttpServer, public_one: HttpServer
):
    # Nothing listens on 127.0.0.4 at public_one's port: refused, then 127.0.0.3 answers.
    port = port_of(public_one)

    async def two_addresses(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("127.0.0.4"), ipaddress.ip_address("127.0.0.3")]

    async def none(host: str, port: int) -> list[IPAddress]:
        return []

    public_one.route("/feed", Response(body=FEED))
    http_server.route("/feed", Response.redirect(f"http://twice.test:{port}/feed"))
    network = PublicOnlyBackend(resolver=two_addresses, judge=stand_in_judge)
    async with Fetcher(user_agent=USER_AGENT, public_network=network) as fetcher:
        result = await fetcher.fetch("blog", http_server.url_for("/feed"), Validators())
    assert result.body == FEED
    assert public_one.requests[0].headers["Host"] == f"twice.test:{port}"

    async with Fetcher(
        user_agent=USER_AGENT, public_network=PublicOnlyBackend(resolver=none)
    ) as fetcher:
        error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert (
        str(error)
        == f"blog: cannot connect to twice.test:{port}: twice.test resolved to no address"
    )


async def test_a_name_that_cannot_be_resolved_is_a_network_error(http_server: HttpServer):
    async def nothing(host: str, port: int) -> list[IPAddress]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    http_server.route("/feed", Response.redirect("http://nowhere.test/feed"))
    network = PublicOnlyBackend(resolver=nothing)
    async with Fetcher(user_agent=USER_AGENT, public_network=network) as fetcher:
        error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert str(error) == "blog: cannot resolve nowhere.test: Name or service not known"


# The transport of our own raises httpcore's errors as httpx's own transport does

HTTPCORE_ERRORS = [
    value
    for name in httpcore.__all__
    if isinstance(value := getattr(httpcore, name), type) and issubclass(value, Exception)
]


@pytest.mark.parametrize("core_error", HTTPCORE_ERRORS, ids=lambda error: error.__name__)
def test_httpcore_errors_are_raised_as_httpx_raises_them(core_error: type[Exception]):
    # httpx's private helper, read here only: PublicOnlyTransport mirrors what it does, and a
    # later httpx that maps an error otherwise (or an httpcore with a new error) fails here.
    from httpx._transports.default import map_httpcore_exceptions

    def raised(context: Callable[[], ContextManager[None]]) -> tuple[type, str]:
        try:
            with context():
                raise core_error("the details")
        except Exception as error:
            return type(error), str(error)
        raise AssertionError("nothing raised")

    assert raised(httpx_errors) == raised(map_httpcore_exceptions)
    assert HTTPCORE_ERRORS  # httpcore still lists its errors in __all__


# The ingest job: one source fails with one line, nothing of it is stored, the others go on


def settings_for(tmp_path: Path, database_url: str, allow_private: bool, **urls: str) -> Settings:
    data = {
        "site": {"title": "T", "url": "https://site.example"},
        "storage": {"database": database_url},
        "ingest": {"total_timeout": 3, "read_timeout": 1, "allow_private": allow_private},
        "sources": [{"name": name, "url": url, "every": "30m"} for name, url in urls.items()],
    }
    return Settings.model_validate(data, context={"base_dir": tmp_path})


async def test_ingest_fails_only_the_redirected_source_and_stores_nothing_of_it(
    http_server: HttpServer, internal: HttpServer, tmp_path: Path, store: Store
):
    internal.route("/admin", Response(body=FEED))  # what would be published
    http_server.route("/riverside", Response.redirect(internal.url_for("/admin")))
    http_server.route("/other", Response(body=FEED.replace(b"blog.example", b"other.example")))
    settings = settings_for(
        tmp_path,
        store.url,
        False,
        riverside=http_server.url_for("/riverside"),
        other=http_server.url_for("/other"),
    )
    report = await ingest(settings, store, FrozenClock(NOW))
    reports = {r.name: r for r in report.sources}
    expected = (
        f"redirect to {internal.url_for('/admin')} refused: 127.0.0.1 is a loopback address {HINT}"
    )
    assert (reports["riverside"].status, reports["riverside"].error) == ("failed", expected)
    assert (reports["other"].status, reports["other"].new) == ("ok", 1)
    assert await store.count_posts("riverside") == 0
    assert internal.requests == []
    state = await store.source_state("riverside")
    assert state.consecutive_failures == 1
    assert state.last_error == expected
    assert state.next_poll_at == NOW + timedelta(minutes=30)  # backs off like any failure

    allowed = settings_for(tmp_path, store.url, True, riverside=http_server.url_for("/riverside"))
    report = await ingest(allowed, store, FrozenClock(NOW + timedelta(hours=1)))
    assert (report.sources[0].status, report.sources[0].new) == ("ok", 1)
    assert len(internal.requests) == 1


async def test_ingest_refuses_a_remembered_move_to_a_private_address(
    http_server: HttpServer, internal: HttpServer, tmp_path: Path, store: Store
):
    # Moved permanently while allow_private was on; the move is remembered. With the check
    # back on, the remembered URL is refused: only the configured URL's host is exempt.
    internal.route("/feed", Response(body=FEED))
    http_server.route("/old", Response.redirect(internal.url_for("/feed"), 301))
    url = http_server.url_for("/old")
    await ingest(settings_for(tmp_path, store.url, True, blog=url), store, FrozenClock(NOW))
    assert (await store.source_state("blog")).permanent_url == internal.url_for("/feed")
    assert len(internal.requests) == 1

    later = FrozenClock(NOW + timedelta(hours=1))
    report = await ingest(settings_for(tmp_path, store.url, False, blog=url), store, later)
    assert report.sources[0].status == "failed"
    assert report.sources[0].error == (
        f"fetching {internal.url_for('/feed')} refused: 127.0.0.1 is a loopback address {HINT}"
    )
    assert len(internal.requests) == 1
