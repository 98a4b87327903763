"""Running the web app under uvicorn, inside an asyncio loop someone else may own.

    await serve(settings)                                   # `syndicate serve`
    await serve(settings, store=store, worker_state=state)  # the worker, in its own loop

uvicorn.Server.serve() rather than uvicorn.run(): run() owns the loop, and the worker
(`syndicate run`) needs the scheduler and the web app in one loop. uvicorn handles SIGINT and
SIGTERM itself: it stops accepting, lets requests in flight finish, runs the app's shutdown
(closing the store) and returns.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any, Literal

import uvicorn

from syndicate.config import Settings
from syndicate.errors import SyndicateError
from syndicate.store import Store
from syndicate.web.app import create_app

log = logging.getLogger(__name__)

Http = Literal["auto", "h11", "httptools"]


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
) -> None:
    """Serve until SIGINT/SIGTERM. `on_ready(url)` is called once the socket listens
    (port 0 picks a free port; the URL names the real one)."""
    app = create_app(settings, store=store, worker_state=worker_state)
    config = uvicorn.Config(
        app,
        host=host or settings.web.host,
        port=settings.web.port if port is None else port,
        http=http,
        lifespan="on",
        access_log=access_log,
        log_config=None,  # keep syndicate's logging setup (syndicate/logs.py)
        server_header=False,
        # Behind a reverse proxy on the same machine, trust its X-Forwarded-For.
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        timeout_graceful_shutdown=10,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    listening = asyncio.create_task(server.listening.wait())
    await asyncio.wait([task, listening], return_when=asyncio.FIRST_COMPLETED)
    listening.cancel()
    if server.started and on_ready is not None:
        on_ready(bound_url(server))
    try:
        await task
    except SystemExit as exit_:
        # uvicorn exits the process when it cannot bind; an edge error reads better.
        where = f"{config.host}:{config.port}"
        raise ServeError(f"cannot serve on {where} (address in use?)") from exit_
    if not server.started:
        raise ServeError(f"cannot serve on {config.host}:{config.port}")


class _Server(uvicorn.Server):
    # uvicorn has no "started" event to await; this sets one once the sockets listen.
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
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
