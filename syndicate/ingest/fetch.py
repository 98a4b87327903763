"""Downloading one feed: a conditional GET over a pooled httpx client, or a local file.

Every fetch is bounded: by size (counted while streaming, after decompression), by time
(connect, read and an overall deadline) and by redirects. Whatever goes wrong comes out as a
one-line :class:`FetchError`, never as a raw httpx or OS exception, so the caller can record
it against the source and go on with the others.

Decompression is ours (decode.py), not httpx's, so that the size cap holds for compressed
bodies too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import mimetypes
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import urlsplit

import httpx

from syndicate.config import local_path
from syndicate.errors import FetchError
from syndicate.ingest.decode import ACCEPT_ENCODING, DECODE_ERRORS, ContentDecoder
from syndicate.ingest.localfile import read_file, too_large
from syndicate.ingest.netguard import (
    AddressRefused,
    PublicOnlyBackend,
    PublicOnlyTransport,
    origin,
)

log = logging.getLogger(__name__)

_E = TypeVar("_E", bound=BaseException)

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/json;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)

REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
MAX_RETRY_AFTER = timedelta(days=7)
MAX_CONNECTIONS = 100

_REDIRECT_BODY = 64 * 1024  # redirect bodies up to this size are read so the connection is reused


@dataclass(frozen=True, slots=True)
class Validators:
    """What we remember from the last successful fetch of a source."""

    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None  # sha256 hex of the last body we parsed


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One fetch's outcome. ``body`` is None when there is nothing new to parse."""

    url: str  # the URL finally fetched (after redirects); for files a file: URL
    status: int  # HTTP status (200/304); 200 or 304 for files
    body: bytes | None  # None when not modified
    content_type: str | None
    etag: str | None
    last_modified: str | None
    content_hash: str  # sha256 hex of body (the stored one when not modified)
    permanent_url: str | None = None  # set when every hop to the final URL was 301/308

    @property
    def not_modified(self) -> bool:
        return self.body is None

    @property
    def validators(self) -> Validators:
        """What to pass to the next fetch of the same source."""
        return Validators(self.etag, self.last_modified, self.content_hash)


class Fetcher:
    """Fetches feeds for many sources through one pooled HTTP client.

    Use one Fetcher for a whole ingest run (connections are pooled and reused) and close it
    afterwards, with ``await fetcher.aclose()`` or ``async with Fetcher(...) as fetcher:``.

    Only a source's configured host and port may be a private address: every other hop
    connects only to public ones (netguard.py), unless ``allow_private``. ``transport``
    replaces the network, for tests (no address is checked then); ``public_network``
    replaces the resolver and the address check of those other hops, also for tests.
    """

    def __init__(
        self,
        *,
        user_agent: str,
        connect_timeout: float = 10,
        read_timeout: float = 30,
        total_timeout: float = 120,
        max_size: int = 10_000_000,
        max_redirects: int = 5,
        max_connections: int = MAX_CONNECTIONS,
        allow_private: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        public_network: PublicOnlyBackend | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout
        self.max_size = max_size
        self.max_redirects = max_redirects
        # Sized to the caller's concurrency: httpcore scans every pooled connection on each
        # request, so a pool much bigger than the work costs time for nothing.
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=min(max_connections, 20),
        )
        # One TLS context for both pools below: each costs tens of milliseconds to build.
        tls = httpx.create_ssl_context()
        self._client = self._http_client(user_agent, limits, tls, transport)
        # Hops to anywhere but the source's configured host and port go through a pool of
        # their own that connects only to public addresses. Not a check in the shared pool: a
        # pooled connection is reused without connecting again, so one opened to a source's
        # configured intranet host must never serve another source's redirect there.
        self._public_client = (
            self._client
            if allow_private or transport is not None
            else self._http_client(
                user_agent,
                limits,
                tls,
                PublicOnlyTransport(limits=limits, tls=tls, network=public_network),
            )
        )

    def _http_client(
        self,
        user_agent: str,
        limits: httpx.Limits,
        tls: ssl.SSLContext,
        transport: httpx.AsyncBaseTransport | None,
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            headers={
                "User-Agent": user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            timeout=httpx.Timeout(
                connect=self.connect_timeout,
                read=self.read_timeout,
                write=self.read_timeout,
                # Waiting for a free pooled connection counts against the overall deadline.
                pool=self.total_timeout,
            ),
            limits=limits,
            verify=tls,
            # Followed by hand, to know whether every hop was permanent.
            follow_redirects=False,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._public_client is not self._client:
            await self._public_client.aclose()

    async def fetch(
        self,
        source: str,
        url: str,
        validators: Validators,
        *,
        configured_url: str | None = None,
    ) -> FetchResult:
        """Fetch ``url`` for ``source`` unless it is unchanged since ``validators``.

        ``url`` is an http(s) URL, a file: URL or an absolute path (the caller resolves
        relative ones). Over HTTP, ``If-None-Match``/``If-Modified-Since`` are sent when we
        hold the body they describe (``validators.content_hash`` is set), and a 304 comes
        back with ``body=None``, ``status=304``. A 200 whose body hashes to
        ``validators.content_hash`` is also returned with ``body=None`` (status 200), so a
        server without ETags costs a download but not a parse. A local file is not read at
        all when its mtime matches ``validators.last_modified``.

        Redirects are followed up to ``max_redirects``; when all of them were permanent
        (301/308) ``permanent_url`` names the final URL, for the caller to use next time.
        Only the host and port of ``configured_url`` (the source's URL in the config, when
        ``url`` is a remembered move; by default ``url``) may be a private address: any other
        hop to one is refused before connecting, unless ``allow_private``.

        Raises FetchError (one line) for HTTP errors (410 sets ``gone``, 429/503 set
        ``retry_after``), network errors, bodies over ``max_size`` and fetches taking longer
        than ``total_timeout`` seconds.
        """
        started = time.monotonic()
        try:
            path = _local_path(source, url)
            if path is not None:
                result = await self._fetch_file(source, path, validators)
            else:
                try:
                    async with asyncio.timeout(self.total_timeout):
                        result = await self._fetch_http(
                            source, url, validators, configured_url or url
                        )
                except TimeoutError:
                    raise FetchError(
                        source, f"took longer than {self.total_timeout:g} s (fetching {url})"
                    ) from None
        except FetchError as error:
            log.debug("fetch %s failed: %s", url, error, extra={"source": source})
            raise
        log.debug(
            "fetched %s: %s in %.0f ms",
            result.url,
            _outcome(result),
            (time.monotonic() - started) * 1000,
            extra={"source": source},
        )
        return result

    async def _fetch_http(
        self, source: str, url: str, validators: Validators, configured_url: str
    ) -> FetchResult:
        headers = _conditional_headers(validators)
        current: httpx.URL | str = url
        permanent = True
        hop = 0
        try:
            # Parsed once, by httpx: the origin check reads exactly the URL the request uses.
            current = httpx.URL(url)
            configured = origin(current) if configured_url == url else origin(configured_url)
            for hop in range(self.max_redirects + 1):
                trusted = configured is not None and origin(current) == configured
                client = self._client if trusted else self._public_client
                async with client.stream("GET", current, headers=headers) as response:
                    if response.status_code not in REDIRECTS:
                        return await self._result(
                            source, response, validators, redirected=hop > 0, permanent=permanent
                        )
                    current = _redirect_target(source, response)
                    permanent = permanent and response.status_code in PERMANENT_REDIRECTS
                    await _discard(response)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise FetchError(source, self._network_message(str(current), error)) from None
        except AddressRefused as refused:
            step = "redirect to" if hop else "fetching"
            raise FetchError(
                source,
                _one_line(
                    f"{step} {_without_userinfo(str(current))} refused: {refused} "
                    "(set [ingest] allow_private = true to allow it)"
                ),
            ) from None
        raise FetchError(
            source, f"too many redirects (more than {self.max_redirects}), the last to {current}"
        )

    async def _result(
        self,
        source: str,
        response: httpx.Response,
        validators: Validators,
        *,
        redirected: bool,
        permanent: bool,
    ) -> FetchResult:
        status = response.status_code
        final_url = str(response.url)
        permanent_url = final_url if redirected and permanent else None
        etag = response.headers.get("etag")
        last_modified = response.headers.get("last-modified")
        content_type = response.headers.get("content-type")
        if status == 304:
            # A 304 has no body, but reading its end lets httpcore keep the connection alive;
            # unread, the connection is closed and the next poll pays for a new one.
            await response.aread()
            if validators.content_hash is None:
                # We only ask conditionally when we hold the body, so this server is confused.
                raise FetchError(source, "HTTP 304 Not Modified to an unconditional request")
            return FetchResult(
                url=final_url,
                status=304,
                body=None,
                content_type=content_type,
                etag=etag or validators.etag,
                last_modified=last_modified or validators.last_modified,
                content_hash=validators.content_hash,
                permanent_url=permanent_url,
            )
        if not 200 <= status < 300:
            raise _status_error(source, response, redirected=redirected)
        body = await self._read(source, response)
        content_hash = hashlib.sha256(body).hexdigest()
        return FetchResult(
            url=final_url,
            status=status,
            body=None if content_hash == validators.content_hash else body,
            content_type=content_type,
            etag=etag,
            last_modified=last_modified,
            content_hash=content_hash,
            permanent_url=permanent_url,
        )

    async def _read(self, source: str, response: httpx.Response) -> bytes:
        """The decoded body, failing as soon as it (or the raw stream) passes max_size."""
        length = response.headers.get("content-length", "").strip()
        if length.isascii() and length.isdigit() and int(length) > self.max_size:
            raise self._too_large(source, response.status_code)
        encoding = response.headers.get("content-encoding")
        try:
            decoder = ContentDecoder.for_encoding(encoding)
        except ValueError as error:
            raise FetchError(source, str(error), status=response.status_code) from None
        body = bytearray()
        received = 0
        try:
            async for chunk in response.aiter_raw():
                # The raw count matters too: a compressed stream can grow forever empty.
                received += len(chunk)
                if received > self.max_size:
                    raise self._too_large(source, response.status_code)
                for piece in decoder.decode(chunk):
                    body += piece
                    if len(body) > self.max_size:
                        raise self._too_large(source, response.status_code)
            for piece in decoder.flush():
                body += piece
                if len(body) > self.max_size:
                    raise self._too_large(source, response.status_code)
        except DECODE_ERRORS as error:
            raise FetchError(
                source,
                _one_line(f"cannot decompress the body (Content-Encoding {encoding}): {error}"),
                status=response.status_code,
            ) from None
        return bytes(body)

    def _too_large(self, source: str, status: int | None = None) -> FetchError:
        return too_large(source, self.max_size, status=status)

    def _network_message(self, url: str, error: Exception) -> str:
        where = _where(url)
        causes = list(_causes(error))
        if isinstance(error, httpx.ConnectTimeout):
            message = f"connecting to {where} timed out after {self.connect_timeout:g} s"
        elif isinstance(error, httpx.ReadTimeout):
            message = f"{where} sent nothing for {self.read_timeout:g} s (read timeout)"
        elif isinstance(error, httpx.WriteTimeout):
            message = f"sending the request to {where} timed out after {self.read_timeout:g} s"
        elif isinstance(error, httpx.PoolTimeout):
            message = f"no free connection for {where} within {self.total_timeout:g} s"
        elif _first(causes, ConnectionRefusedError):
            message = f"connection refused by {where}"
        elif gaierror := _first(causes, socket.gaierror):
            message = f"cannot resolve {where}: {gaierror.strerror or gaierror}"
        elif tls := _first(causes, ssl.SSLError):
            reason = getattr(tls, "verify_message", None) or tls.reason or str(tls)
            message = f"TLS error with {where}: {reason}"
        elif isinstance(error, httpx.ConnectError):
            message = f"cannot connect to {where}: {error}"
        elif isinstance(error, httpx.ProtocolError):
            message = f"HTTP protocol error from {where}: {error}"
        elif isinstance(error, httpx.NetworkError):
            message = f"connection to {where} lost: {error or type(error).__name__}"
        elif isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL):
            message = f"invalid URL {url!r}: {error}"
        else:
            message = f"{type(error).__name__} fetching {url}: {error}"
        return _one_line(message)

    async def _fetch_file(self, source: str, path: Path, validators: Validators) -> FetchResult:
        # Reading happens in a thread: a large file must not stall every other fetch.
        # The mtime counts only when the body it stood for was stored (its hash is known).
        known = validators.last_modified if validators.content_hash is not None else None
        body, last_modified = await asyncio.to_thread(read_file, source, path, known, self.max_size)
        content_type = mimetypes.guess_type(path.name)[0]
        url = path.as_uri()
        if body is None:
            assert validators.content_hash is not None
            return FetchResult(
                url, 304, None, content_type, None, last_modified, validators.content_hash
            )
        content_hash = hashlib.sha256(body).hexdigest()
        if content_hash == validators.content_hash:
            return FetchResult(url, 200, None, content_type, None, last_modified, content_hash)
        return FetchResult(url, 200, body, content_type, None, last_modified, content_hash)


def _local_path(source: str, url: str) -> Path | None:
    """The file ``url`` names (a file: URL or an absolute path), None for http(s)."""
    try:
        return local_path(url)
    except ValueError as error:
        raise FetchError(source, _one_line(str(error))) from None


def _conditional_headers(validators: Validators) -> dict[str, str]:
    # A 304 means "the body you hold"; without its hash we hold nothing, so ask for it all.
    if validators.content_hash is None:
        return {}
    headers = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def _redirect_target(source: str, response: httpx.Response) -> httpx.URL:
    status = response.status_code
    location = response.headers.get("location", "").strip()
    if not location:
        raise FetchError(source, f"HTTP {status} redirect without a Location", status=status)
    try:
        target = response.url.join(location)
    except httpx.InvalidURL:
        raise FetchError(
            source,
            _one_line(f"HTTP {status} redirect to an invalid URL {location!r}"),
            status=status,
        ) from None
    if target.scheme not in ("http", "https"):
        # Never let a server point us at file: or anything else we would not fetch.
        raise FetchError(
            source, _one_line(f"HTTP {status} redirect to unsupported {location}"), status=status
        )
    return target


async def _discard(response: httpx.Response) -> None:
    # Reading a short redirect body lets its connection be reused; anything longer or of
    # unknown length is dropped with the connection when the stream closes.
    length = response.headers.get("content-length", "").strip()
    if length.isascii() and length.isdigit() and int(length) <= _REDIRECT_BODY:
        async for _ in response.aiter_raw():
            pass


def _status_error(source: str, response: httpx.Response, *, redirected: bool) -> FetchError:
    status = response.status_code
    message = f"HTTP {status} {_reason(response)}".rstrip()
    if redirected:
        message += f" at {response.url}"
    if status == 410:
        return FetchError(source, f"{message} (the feed was removed)", status=status, gone=True)
    retry_after = None
    if status in (429, 503):
        retry_after = _retry_after(response.headers)
        if retry_after is not None:
            message += f" (retry after {_duration(retry_after)})"
    return FetchError(source, message, status=status, retry_after=retry_after)


def _reason(response: httpx.Response) -> str:
    # The standard phrase where there is one: a server's own can be anything.
    return httpx.codes.get_reason_phrase(response.status_code) or _one_line(response.reason_phrase)


def _retry_after(headers: httpx.Headers) -> timedelta | None:
    """Retry-After as a delay (seconds or an HTTP-date), capped at a week; None if unusable."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        seconds = min(int(value), int(MAX_RETRY_AFTER.total_seconds()))
        return timedelta(seconds=seconds)
    when = _http_date(value)
    if when is None:
        return None
    # Measured against the server's own clock when it sent one: immune to clock skew.
    now = _http_date(headers.get("date", "")) or datetime.now(UTC)
    return min(max(when - now, timedelta(0)), MAX_RETRY_AFTER)


def _http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    # HTTP-dates are GMT; "-0000" parses as naive.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _first(errors: list[BaseException], kind: type[_E]) -> _E | None:
    return next((error for error in errors if isinstance(error, kind)), None)


def _without_userinfo(url: str) -> str:
    try:
        return str(httpx.URL(url).copy_with(userinfo=b""))
    except httpx.InvalidURL:
        return url


def _where(url: str) -> str:
    """host[:port] of a URL, without any credentials in it."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # a bad port or bracket: the URL itself is the best description
        return url
    if not host:
        return url
    return f"{host}:{port}" if port else host


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _duration(delay: timedelta) -> str:
    seconds = int(delay.total_seconds())
    if seconds < 600:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def _outcome(result: FetchResult) -> str:
    if result.status == 304:
        return "304 not modified"
    if result.body is None:
        return f"{result.status}, unchanged (same content hash)"
    return f"{result.status}, {len(result.body)} bytes"
