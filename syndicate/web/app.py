"""The Starlette application: one object holding the services, routes from one module each.

    app = create_app(settings)                       # `syndicate serve` hands it to uvicorn
    app = create_app(settings, store=store, clock=clock, transport=transport)   # tests

Routes are thin (principle 8): parse the request, call a service function, render a page.
What they share lives in `WebServices`, reached as `services(request)`:

    syndicate/web/feeds.py          /feeds/...  static files with conditional GET, gzip, HEAD
    syndicate/web/home.py           /           latest posts, feeds, archive months, the form
    syndicate/web/subscription.py   /subscribe /confirm/<t> /unsubscribe/<t> /preferences/<t>
    syndicate/web/ops.py            /healthz /metrics
    syndicate/web/security.py       security headers, body limits, error pages
    syndicate/web/render.py         pages from templates/web/ (sandboxed, autoescaped)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request

from syndicate.clock import Clock, SystemClock
from syndicate.config import Settings
from syndicate.mail.transport import Transport, open_transport
from syndicate.store import Store
from syndicate.tokens import Tokens, signing_secret
from syndicate.web import feeds, home, ops, security, subscription
from syndicate.web.render import WebPages


@dataclass
class WebServices:
    """Everything a route may use. Built once per app; tests build it with their own parts."""

    settings: Settings
    store: Store
    clock: Clock
    tokens: Tokens
    transport: Transport
    pages: WebPages
    # When the worker runs the app (`syndicate run`), what /healthz reports about it.
    worker_state: Callable[[], Mapping[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # per-module state (rate limits...)
    own_transport: bool = False  # opened for the app (so reopened when [mail] changes)
    _closing: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    def reconfigure(self, settings: Settings) -> None:
        """Use a reloaded config from the next request on (the worker calls this)."""
        old, self.settings = self.settings, settings
        self.pages = WebPages(settings)
        if self.own_transport and old.mail != settings.mail:
            retired, self.transport = self.transport, open_transport(settings)
            task = asyncio.get_running_loop().create_task(retired.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close what the app opened for itself: its transport, and any a reload replaced."""
        if self.own_transport:
            await self.transport.close()
        await asyncio.gather(*self._closing)


def services(request: Request) -> WebServices:
    return request.app.state.services  # type: ignore[no-any-return]


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    transport: Transport | None = None,
    worker_state: Callable[[], Mapping[str, Any]] | None = None,
    on_started: Callable[[WebServices], None] | None = None,
) -> Starlette:
    """The app for `settings`. Parts not given are opened at start-up and closed at exit;
    `on_started` gets the services once they are (the worker, to pass on config reloads)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_store = store is None
        own_transport = transport is None
        opened_store = store or await Store.open(settings.database_url)
        opened_transport = transport or open_transport(settings)
        app.state.services = WebServices(
            settings=settings,
            store=opened_store,
            clock=clock or SystemClock(),
            tokens=Tokens(signing_secret(settings), clock or SystemClock()),
            transport=opened_transport,
            pages=WebPages(settings),
            worker_state=worker_state,
            own_transport=own_transport,
        )
        if on_started is not None:
            on_started(app.state.services)
        try:
            yield
        finally:
            await app.state.services.close()
            if own_store:
                await opened_store.close()

    return Starlette(
        routes=[*feeds.routes(), *home.routes(), *subscription.routes(), *ops.routes(settings)],
        middleware=security.middleware(settings),
        exception_handlers=security.exception_handlers(),
        lifespan=lifespan,
    )
