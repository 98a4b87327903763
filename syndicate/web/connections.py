"""Keeping the web server's connections few and brief, whoever is on the other end.

uvicorn (0.54) closes a kept-alive connection once it has been idle `timeout_keep_alive`
seconds, and that is all: a client may take forever to send a request (slowloris), may open
connections until the process runs out of file descriptors, and then asyncio logs a
traceback for every accept() that fails, thousands a second. A ConnectionGuard adds, per
server:

- **A request deadline.** From connecting, or from the first byte of a further request on a
  kept-alive connection, a client has `[web] request_timeout` seconds to send the whole
  request, headers and body; then the connection is closed. How long the app takes to
  answer is not limited.
- **A header limit.** More than MAX_HEADER_BYTES before the headers end is a 431 and a
  close (httptools would buffer headers without limit until the deadline).
- **A connection limit.** With `[web] max_connections` open, a new connection closes the
  oldest one without a request in progress (idle, or still sending its request), so a
  flood of half-sent requests cannot lock out real ones; when every connection has a
  request in progress, the newcomer gets a 503 and is closed. The limit is
  held to half the process's file descriptors (ulimit -n) so the database, fetches and
  mail keep theirs.
- **One line per accept() episode.** accept() failing for want of resources (EMFILE,
  ENFILE, ENOBUFS, ENOMEM) is logged once when it starts and once when it ends, instead of a
  traceback per attempt; asyncio itself retries every second.

    guard = ConnectionGuard(limits)
    config = uvicorn.Config(app, http=guard.protocol("httptools"), backlog=guard.backlog, ...)
    with guard.quiet_accept_errors(asyncio.get_running_loop()):
        ...serve...
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import resource
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

# Request line and headers together. nginx allows 4 x 8 KiB by default; this leaves room for
# large cookies set by other apps on the same domain.
MAX_HEADER_BYTES = 64 * 1024

# Connections waiting in the kernel to be accepted, which is also how many asyncio accepts in
# one go before any of them reaches the guard. Kept small next to the connection limit so a
# burst cannot run the process out of descriptors before the guard closes the extra ones.
BACKLOG = 128

# asyncio's context["message"] when accept() fails for want of resources (see the standard
# library's asyncio/selector_events.py).
ACCEPT_FAILED = "socket.accept() out of system resource"

# A refused connection's 503 is followed by end of file, and what the client still sends is
# read and dropped for at most this long: closing at once with its request unread would
# reset the connection, and the client might never see the answer.
LINGER = 1.0

HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: 33\r\n"
    b"\r\nRequest header fields too large.\n"
)
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\nretry-after: 1\r\n"
    b"content-length: 40\r\n\r\nToo many connections; try again shortly.\n"
)

Http = Literal["auto", "h11", "httptools"]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    request_timeout: float
    max_connections: int


def descriptor_limit() -> int | None:
    """The process's soft limit on open files (ulimit -n), None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def connection_limit(configured: int, descriptors: int | None) -> int:
    """`configured`, held to half of `descriptors`: the rest is for everything else the
    process opens (database, feed fetches, SMTP, parser processes, files)."""
    if descriptors is None:
        return configured
    return max(1, min(configured, descriptors // 2))


class ConnectionGuard:
    """The connections of one server, and its accept() failures. Nothing here runs per
    request: only per connection, and when the limit is reached."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open: dict[GuardedConnection, None] = {}  # oldest first
        self.backlog = max(8, min(BACKLOG, limits.max_connections // 4))
        self._at_limit = False
        self._closed_at_limit = 0
        self._refused_at_limit = 0
        self._accept_failures = 0

    def protocol(self, http: Http) -> Callable[..., asyncio.Protocol]:
        """The protocol factory to give uvicorn.Config(http=...)."""
        # "auto" is httptools, as in uvicorn: it is one of syndicate's dependencies.
        cls: type[GuardedConnection] = GuardedH11 if http == "h11" else GuardedHttpTools
        return functools.partial(cls, guard=self)

    def opened(self, connection: GuardedConnection) -> bool:
        """Admit a new connection, making room if needed; False when it must be refused."""
        self._accepting_again()
        if len(self.open) >= self.limits.max_connections:
            # The oldest that has no request in progress. Under a flood of half-sent
            # requests those are at the front, so the search stops early.
            victim = next((c for c in self.open if not c.in_request()), None)
            if victim is None:
                self._limit_reached(refused=True)
                return False
            self._limit_reached(refused=False)
            victim.drop()
        self.open[connection] = None
        return True

    def closed(self, connection: GuardedConnection) -> None:
        self.open.pop(connection, None)
        if self._at_limit and len(self.open) <= self.limits.max_connections // 2:
            self._at_limit = False
            log.warning(
                "web: %d connections open again; at the limit, %d waiting ones were closed "
                "and %d new ones refused",
                len(self.open),
                self._closed_at_limit,
                self._refused_at_limit,
            )
            self._closed_at_limit = self._refused_at_limit = 0

    def _limit_reached(self, *, refused: bool) -> None:
        if refused:
            self._refused_at_limit += 1
        else:
            self._closed_at_limit += 1
        if not self._at_limit:
            self._at_limit = True
            log.warning(
                "web: %d connections open, the limit ([web] max_connections): closing the "
                "oldest idle ones, refusing new ones while all are busy",
                len(self.open),
            )

    @contextlib.contextmanager
    def quiet_accept_errors(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        """While serving, asyncio's traceback per failed accept() becomes one line per
        episode; everything else goes to the loop's handler as before."""
        previous = loop.get_exception_handler()

        def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if context.get("message") == ACCEPT_FAILED:
                self._accept_failed(context.get("exception"))
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handle)
        try:
            yield
        finally:
            loop.set_exception_handler(previous)

    def _accept_failed(self, error: object) -> None:
        self._accept_failures += 1
        if self._accept_failures == 1:
            reason = error.strerror if isinstance(error, OSError) else error
            limit = descriptor_limit()
            log.error(
                "web: cannot accept connections: %s (%d connections open, ulimit -n %s); "
                "retrying every second",
                reason,
                len(self.open),
                "unlimited" if limit is None else limit,
            )

    def _accepting_again(self) -> None:
        if self._accept_failures:
            log.warning(
                "web: accepting connections again, after %d failed accept() calls",
                self._accept_failures,
            )
            self._accept_failures = 0


class GuardedConnection:
    """Mixed into a uvicorn HTTP protocol (one instance per connection).

    uvicorn's protocols keep `cycle`, the request in progress or last handled: its
    `more_body` is False once the request has been received in full, its
    `response_complete` True once answered. A new request's headers complete when `cycle`
    becomes a new object.
    """

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any
    guard: ConnectionGuard

    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0  # of the request now arriving
        self._last_cycle: Any = None
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if not self.guard.opened(self):
            self._refused = True
            self.transport.write(BUSY)
            self.transport.write_eof()
            self._deadline = self.loop.call_later(LINGER, self.transport.close)
            return
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self.guard.closed(self)
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        # Every request passes here: kept to a few attribute reads (no timer, no call) for
        # one that arrives whole, as nearly all do.
        if self._refused:
            return
        cycle = self.cycle
        if cycle is None or not cycle.more_body:  # no request yet, or the last one is in:
            self._header_bytes += len(data)  # these bytes are the next one's headers
        super().data_received(data)  # type: ignore[misc]
        cycle = self.cycle
        if cycle is not self._last_cycle:  # a new request's headers are complete
            self._last_cycle = cycle
            self._header_bytes = 0
        if cycle is not None and not cycle.more_body and not self._header_bytes:
            # Received in full. Bytes of a pipelined next request in the same read are
            # covered by uvicorn's keep-alive timer once this response is sent.
            if self._deadline is not None:
                self._cancel_deadline()
        elif self._header_bytes > MAX_HEADER_BYTES:
            if not self.transport.is_closing():
                self.transport.write(HEADERS_TOO_LARGE)
            self.drop()
        elif self._deadline is None:
            self._arm_deadline()

    def in_request(self) -> bool:
        """A request's headers are in and it is not answered yet."""
        return self.cycle is not None and not self.cycle.response_complete

    def drop(self) -> None:
        self._cancel_deadline()
        self.guard.closed(self)
        if not self.transport.is_closing():
            self.transport.close()

    def _receiving(self) -> bool:
        """A request is still arriving: no headers yet, part of a body, or part of the
        next request's headers."""
        return self.cycle is None or self.cycle.more_body or self._header_bytes > 0

    def _arm_deadline(self) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(self.guard.limits.request_timeout, self._expired)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self._receiving():
            log.debug("web: closing a connection that did not send its request in time")
            self.drop()


class GuardedHttpTools(GuardedConnection, HttpToolsProtocol):
    pass


class GuardedH11(GuardedConnection, H11Protocol):
    pass
