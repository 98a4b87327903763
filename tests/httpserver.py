"""A real HTTP/1.1 server on 127.0.0.1 for tests, answering from a route table.

    def test_feed(http_server):
        http_server.route("/feed.xml", Response(body=b"<rss/>", headers={"ETag": '"v1"'}))
        http_server.route("/dynamic", lambda request: Response(304))
        http_server.route("/forever", never_ending())
        url = http_server.url + "/feed.xml"
        ...
        assert http_server.requests[-1].headers["If-None-Match"] == '"v1"'

A route is a Response (sent as is), a Raw (writes the bytes itself, for hostile servers) or
a function of the Request returning either. Unknown paths get a 404. Every request is
recorded in ``server.requests``. Normal responses carry Content-Length (or are chunked when
asked), so HTTP/1.1 keep-alive works; Raw responses close the connection afterwards.

The ``http_server`` fixture below starts one per test and shuts it down afterwards, cutting
off any response still being written. Register it for all tests in tests/conftest.py with
``from httpserver import http_server``.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import traceback
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

import brotli
import pytest


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as sent, query string included
    headers: HTTPMessage  # case-insensitive: request.headers["if-none-match"]
    body: bytes = b""
    client: tuple[str, int] = ("", 0)  # the client's address: same port, same connection


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False  # Transfer-Encoding: chunked instead of Content-Length
    delay: float = 0.0  # seconds to wait before answering (a slow server)

    @classmethod
    def compressed(
        cls,
        body: bytes,
        encoding: str = "gzip",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """``body`` sent with Content-Encoding gzip, deflate or br."""
        encoders: dict[str, Callable[[bytes], bytes]] = {
            "gzip": gzip.compress,
            "deflate": zlib.compress,
            "br": brotli.compress,
        }
        return cls(
            status, encoders[encoding](body), {**(headers or {}), "Content-Encoding": encoding}
        )

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Response:
        return cls(status, headers={"Location": location})


class Connection:
    """What a Raw response writes to: the client's socket, and the server's stop signal."""

    def __init__(self, handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        self._handler = handler
        self._stopping = stopping

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def send(self, data: bytes) -> bool:
        """Write and flush; False once the client has gone away."""
        try:
            self._handler.wfile.write(data)
            self._handler.wfile.flush()
        except OSError:
            return False
        return True

    def wait(self, seconds: float) -> bool:
        """Sleep; False if the server is shutting down meanwhile."""
        return not self._stopping.wait(seconds)


@dataclass(frozen=True)
class Raw:
    """A response written byte by byte by ``write``; the connection is closed afterwards."""

    write: Callable[[Connection], None]


Answer = Response | Raw
Route = Answer | Callable[[Request], Answer]


def never_ending(
    chunk: bytes = b"<item><title>more</title></item>\n",
    interval: float = 0.2,
    content_type: str = "application/rss+xml",
) -> Raw:
    """A chunked 200 whose body never ends: a chunk every ``interval`` s until the client goes."""

    def write(connection: Connection) -> None:
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        if not connection.send(head.encode() + _chunk(b"<rss><channel>\n")):
            return
        while connection.wait(interval) and connection.send(_chunk(chunk)):
            pass

    return Raw(write)


def streamed(
    total: int, piece: int = 16_384, interval: float = 0.0, content_length: bool = False
) -> Raw:
    """A 200 of ``total`` bytes of b"x", sent ``piece`` bytes at a time every ``interval`` s,
    chunked or with a Content-Length. Stops early when the client goes away."""

    def write(connection: Connection) -> None:
        framing = f"Content-Length: {total}" if content_length else "Transfer-Encoding: chunked"
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n{framing}\r\n\r\n"
        if not connection.send(head.encode()):
            return
        sent = 0
        while sent < total:
            data = b"x" * min(piece, total - sent)
            if not connection.send(data if content_length else _chunk(data)):
                return
            sent += len(data)
            if interval and not connection.wait(interval):
                return
        if not content_length:
            connection.send(b"0\r\n\r\n")

    return Raw(write)


class HttpServer:
    """A threaded HTTP server on an OS-assigned port; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[Request] = []
        self.errors: list[str] = []  # tracebacks of route functions that raised
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._server = _Server((host, 0), _Handler, owner=self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="test-http-server",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url_for(self, path: str) -> str:
        return self.url + path

    def route(self, path: str, route: Route) -> None:
        """Answer requests for ``path`` (query string ignored) with ``route``."""
        with self._lock:
            self._routes[path] = route

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if urlsplit(r.path).path == path]

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, cut off connections still open, wait for their threads."""
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for connection in connections:
            # Wakes a handler blocked reading the next keep-alive request or writing a body.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _answer(self, request: Request) -> Answer:
        with self._lock:
            self.requests.append(request)
            route = self._routes.get(urlsplit(request.path).path)
        if route is None:
            return Response(404, b"no such route\n", {"Content-Type": "text/plain"})
        if isinstance(route, Response | Raw):
            return route
        try:
            return route(request)
        except Exception:
            # Shown to the test as a 500 and kept in server.errors, not lost in a thread.
            text = traceback.format_exc()
            with self._lock:
                self.errors.append(text)
            return Response(500, text.encode(), {"Content-Type": "text/plain"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # HttpServer.close joins the threads itself, with a time limit

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        owner: HttpServer,
    ) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self.owner._lock:
            self.owner._connections.add(request)
            self.owner._threads.append(thread)
        thread.start()

    def shutdown_request(self, request: socket.socket) -> None:
        with self.owner._lock:
            self.owner._connections.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    timeout = 10  # a connection left idle by a client ends on its own
    # Headers and body go out in separate writes; with Nagle on, the body waits for the
    # client's delayed ACK, adding 40 ms to every response.
    disable_nagle_algorithm = True
    server: _Server

    def _dispatch(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, self.headers, body, self.client_address[:2])
        answer = owner._answer(request)
        try:
            if isinstance(answer, Raw):
                self.close_connection = True
                answer.write(Connection(self, owner._stopping))
            else:
                self._send(answer, owner._stopping)
        except OSError:
            # The client went away mid-response (as a fetcher over its size cap does).
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def _send(self, response: Response, stopping: threading.Event) -> None:
        if response.delay and stopping.wait(response.delay):
            self.close_connection = True
            return
        headers = response.headers
        given = {name.lower() for name in headers}
        self.send_response_only(response.status)
        self.send_header("Server", "syndicate-tests")
        if "date" not in given:
            self.send_header("Date", formatdate(usegmt=True))
        for name, value in headers.items():
            self.send_header(name, value)  # also sets close_connection on "Connection: close"
        has_body = response.status >= 200 and response.status not in (204, 304)
        if response.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif has_body and "content-length" not in given:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if not has_body or self.command == "HEAD":
            return
        if response.chunked:
            for start in range(0, len(response.body), 16_384):
                self.wfile.write(_chunk(response.body[start : start + 16_384]))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(response.body)
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass  # the recorded requests say more, and stderr stays clean


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def unused_url(path: str = "/") -> str:
    """An http URL on a local port nobody listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """A running HttpServer for one test; ``http_server.url`` is its base URL."""
    with HttpServer() as server:
        yield server
