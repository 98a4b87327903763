"""Running the web app under uvicorn, inside an asyncio loop someone else may own.

    await serve(settings)                                   # `syndicate serve`
    await serve(settings, store=store, worker_state=state, stop=event)  # inside the worker

uvicorn.Server.serve() rather than uvicorn.run(): run() owns the loop, and the worker
(`syndicate run`) needs the scheduler and the web app in one loop. Alone, uvicorn handles
SIGINT and SIGTERM itself: it stops accepting, lets requests in flight finish, runs the app's
shutdown and returns; serve() then closes the store if it opened it. Given `stop`, it leaves
the signals to the caller (the worker has more to stop than the web app) and shuts down the
same way once `stop` is set.

Every connection goes through a ConnectionGuard (syndicate/web/connections.py): a client has
`[web] request_timeout` seconds to send its request, at most `[web] max_connections` are
open, and accept() failing for want of file descriptors is one log line, not a traceback per
attempt. `[web] keepalive_timeout` is uvicorn's own.

Each request is one access line (uvicorn's, logger "uvicorn.access", at INFO) unless
`access_log=False` (`--no-access-log`): syndicate's logging (syndicate/logs.py) stops other
libraries at WARNING, so the access logger is set to INFO here. The signed token in a
/confirm/, /unsubscribe/ or /preferences/ path is the key to someone's subscription; the
line shows "..." instead, since logs are kept and shipped further than the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import uvicorn

from syndicate.config import Settings
from syndicate.errors import SyndicateError
from syndicate.store import Store
from syndicate.web.app import create_app
from syndicate.web.connections import (
    ConnectionGuard,
    ConnectionLimits,
    Http,
    connection_limit,
    descriptor_limit,
)
from syndicate.web.services import WebServices

log = logging.getLogger(__name__)
ACCESS_LOGGER = "uvicorn.access"
# The paths that carry a signed link's token: /confirm/<token> and the like.
_TOKEN_PATH = re.compile(r"^(/(?:confirm|unsubscribe|preferences)/)[^/?#\s]+")


class HideTokens(logging.Filter):
    """Writes uvicorn's access line with the token of a signed link left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn logs '%s - "%s %s HTTP/%s" %d' with (client, method, path, version, status).
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            hidden = _TOKEN_PATH.sub(r"\1...", args[2])
            record.args = (*args[:2], hidden, *args[3:])
        return True


def _access_log(enabled: bool) -> None:
    access = logging.getLogger(ACCESS_LOGGER)
    if not enabled:
        return  # uvicorn.Config took it off (no handlers, no propagation)
    access.setLevel(logging.INFO)
    access.propagate = True  # an earlier serve(access_log=False) in this process cut it off
    if not any(isinstance(f, HideTokens) for f in access.filters):
        access.addFilter(HideTokens())


class ServeError(SyndicateError):
    """The server could not start (the address is in use, the host does not exist)."""


async def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    store: Store | None = None,
    worker_state: Callable[[], Mapping[str, Any]] | None = None,
    access_log: bool = True,
    http: Http = "auto",
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    graceful_timeout: float = 10,
    on_started: Callable[[WebServices], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, or until `stop` is set when one is given. `on_ready(url)`
    is called once the socket listens (port 0 picks a free port; the URL names the real
    one). Requests still running `graceful_timeout` seconds after the stop are cut off.
    Without a `store`, one is opened first: a database that cannot be opened is a
    StoreError saying why, not a failed start."""
    async with contextlib.AsyncExitStack() as stack:
        if store is None:
            store = await stack.enter_async_context(await Store.open(settings.database_url))
        guard = ConnectionGuard(_limits(settings))
        app = create_app(settings, store=store, worker_state=worker_state, on_started=on_started)
        config = uvicorn.Config(
            app,
            host=host or settings.web.host,
            port=settings.web.port if port is None else port,
            http=guard.protocol(http),  # type: ignore[arg-type]  (a factory: uvicorn calls it)
            backlog=guard.backlog,
            timeout_keep_alive=settings.web.keepalive_timeout,  # type: ignore[arg-type]
            lifespan="on",
            access_log=access_log,
            log_config=None,  # keep syndicate's logging setup (syndicate/logs.py)
            server_header=False,
            # Behind a reverse proxy on the same machine, trust its X-Forwarded-For.
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
            timeout_graceful_shutdown=graceful_timeout,
        )
        _access_log(access_log)
        server = _Server(config, own_signals=stop is None)
        stack.enter_context(guard.quiet_accept_errors(asyncio.get_running_loop()))
        watcher = asyncio.create_task(_exit_on(stop, server)) if stop is not None else None
        task = asyncio.create_task(server.serve())
        listening = asyncio.create_task(server.listening.wait())
        await asyncio.wait([task, listening], return_when=asyncio.FIRST_COMPLETED)
        listening.cancel()
        if server.started and on_ready is not None:
            on_ready(bound_url(server))
        try:
            await task
        finally:
            if watcher is not None:
                watcher.cancel()
    if not server.started:
        if server.app_failed:
            raise ServeError("the web app could not start (the log above says why)")
        raise ServeError(f"cannot serve on {config.host}:{config.port} (address in use?)")


def _limits(settings: Settings) -> ConnectionLimits:
    descriptors = descriptor_limit()
    limit = connection_limit(settings.web.max_connections, descriptors)
    if limit < settings.web.max_connections:
        log.warning(
            "web: at most %d connections at once, not [web] max_connections = %d: the "
            "process may open only %d files (ulimit -n; LimitNOFILE= under systemd)",
            limit,
            settings.web.max_connections,
            descriptors,
        )
    return ConnectionLimits(request_timeout=settings.web.request_timeout, max_connections=limit)


async def _exit_on(stop: asyncio.Event, server: uvicorn.Server) -> None:
    await stop.wait()
    server.should_exit = True


class _Server(uvicorn.Server):
    # uvicorn has no "started" event to await; this sets one once the sockets listen.
    def __init__(self, config: uvicorn.Config, *, own_signals: bool) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()
        self.own_signals = own_signals
        self.app_failed = False  # the app's start-up failed (rather than the bind)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's own handlers would also re-raise the signal once it has stopped.
        if self.own_signals:
            with super().capture_signals():
                yield
        else:
            yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        except SystemExit:
            # uvicorn exits when it cannot bind. Raised in a task, SystemExit would escape
            # the event loop and take down whatever else runs in it (the worker's jobs).
            self.should_exit = True
            self.app_failed = self.lifespan.should_exit
            return
        if self.started:
            self.listening.set()


def bound_url(server: uvicorn.Server) -> str:
    for listener in server.servers:
        for sock in listener.sockets:
            host, port = sock.getsockname()[:2]
            if ":" in host:
                host = f"[{host}]"
            return f"http://{host}:{port}/"
    return f"http://{server.config.host}:{server.config.port}/"
