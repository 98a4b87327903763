"""Keeping fetches on the public internet: no redirect into the machine's own network.

A feed server may redirect us anywhere, and what we fetch is stored and published. A
redirect to ``http://127.0.0.1:8080/`` would publish an internal service's page, one to the
cloud metadata service at 169.254.169.254 could publish credentials, and one to port 5432
opens a connection to the database. So only the host and port an admin configured for a
source may be private (an intranet blog is a fair source, and tests serve feeds on
127.0.0.1); every other hop connects only to public addresses.

The check is made on the address actually connected to, in httpcore's network backend: the
host is resolved here, every address it resolves to is checked, and the connection goes to a
checked address (TLS still verifies the name). Checking a name before the request and
connecting afterwards would let DNS rebinding through: a name that resolves to a public
address for the check and to a private one for the connection. Numeric forms of an address
that the URL parser leaves to the resolver (``2130706433``, ``0x7f.1``, ``127.1``) are
caught the same way, since they are only resolved here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
Judge = Callable[[IPAddress], str | None]  # why an address is refused, None if it is not

_PRIVATE = tuple(
    ipaddress.ip_network(network)
    for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")  # deprecated, but still routed inside sites
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address in the last 32 bits
_METADATA = ipaddress.ip_address("169.254.169.254")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class AddressRefused(Exception):
    """A connection to a non-public address was not made. The message is one line."""

    def __init__(self, host: str, address: IPAddress, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        super().__init__(f"{address} is {reason}")


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not public ("a loopback address"), or None when it is public.

    ``is_global`` alone is not enough on Python 3.11: it calls multicast, IPv4-compatible
    (``::127.0.0.1``), 6to4 and NAT64 forms of private addresses global, so addresses that
    carry an IPv4 address are judged by that address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return refusal(embedded)
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address == _METADATA:
        return "a link-local address (the cloud metadata service)"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if any(address in network for network in _PRIVATE):
        return "a private address"
    if address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if address in _SITE_LOCAL:
        return "a site-local address"
    # Documentation, benchmarking, 240/4, broadcast, ::/8 (IPv4-compatible), Teredo...
    if not address.is_global or address.is_reserved:
        return "a reserved address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d, how dual-stack sockets show IPv4
        return address.ipv4_mapped
    if address.sixtofour is not None:  # 2002:aabb:ccdd::
        return address.sixtofour
    if address in _NAT64:  # 64:ff9b::a.b.c.d
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def origin(url: httpx.URL | str) -> tuple[str, int] | None:
    """The (host, port) an http(s) URL connects to, the port filled in; None if invalid.

    Read with httpx's own parser: another parser could read a hostile URL differently
    from the one that connects.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    port = parsed.port or _DEFAULT_PORTS.get(parsed.scheme)
    if not parsed.host or port is None:
        return None
    return parsed.host, port


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to, in the resolver's order; socket.gaierror if none."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to public addresses (see the module).

    ``resolver`` and ``judge`` are the system's resolver and :func:`refusal`; tests replace
    them to stand in for public servers and rebinding DNS, which cannot run here.
    """

    def __init__(self, *, resolver: Resolver = resolve, judge: Judge = refusal) -> None:
        self._backend = httpcore.AnyIOBackend()
        self._resolve = resolver
        self._judge = judge

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """Every address ``host`` resolves to, when all of them are public.

        Raises AddressRefused naming the first that is not (a name with one private address
        among public ones is refused whole: which one is used is the resolver's choice), and
        OSError (socket.gaierror) when the name cannot be resolved.
        """
        addresses = await self._resolve(host, port)
        for address in addresses:
            reason = self._judge(address)
            if reason is not None:
                raise AddressRefused(host, address, reason)
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.addresses(host, port)
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from error
        except OSError as error:
            raise httpcore.ConnectError(str(error)) from error
        failure = httpcore.ConnectError(f"{host} resolved to no address")
        for address in addresses:
            remaining = None if deadline is None else max(deadline - loop.time(), 0.0)
            try:
                # The checked address, not the name: resolving again could give another.
                return await self._backend.connect_tcp(
                    str(address),
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as error:
                failure = error  # refused or unreachable: the next address may answer
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class PublicOnlyTransport(httpx.AsyncBaseTransport):
    """An httpx transport over httpcore's connection pool, connecting only to public addresses.

    httpx's AsyncHTTPTransport (0.28) cannot be handed a network backend, so this is the part
    of it a fetch needs, over a pool we build with ours: HTTP/1.1, this TLS context, these
    limits, and httpcore's errors raised as httpx's (tests/test_netguard.py checks the mapping
    against httpx's own for every httpcore error).
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        tls: ssl.SSLContext | None = None,
        network: PublicOnlyBackend | None = None,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls or httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=network or PublicOnlyBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,  # the client's timeouts travel here
        )
        with httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _ResponseStream(httpx.AsyncByteStream):
    """A response body from the pool, its errors raised as httpx's."""

    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


# httpcore's errors and the httpx errors they are raised as, most specific first (the
# callers catch httpx's: httpx.TimeoutException, httpx.TransportError and the like).
_HTTPX_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def httpx_errors() -> Iterator[None]:
    """Raise an httpcore error as the httpx error that httpx's own transport raises."""
    try:
        yield
    except Exception as error:
        for core_error, httpx_error in _HTTPX_ERRORS:
            if isinstance(error, core_error):
                raise httpx_error(str(error)) from error
        raise  # AddressRefused, and anything else not httpcore's, as it is
