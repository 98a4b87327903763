"""What the web app's routes share: one `WebServices` per app, reached as `services(request)`.

    web = services(request)
    posts = await web.store.recent_posts(10)
    return web.pages.render("web/home.html.j2", {...}, path=request.url.path)

This module is the floor of web/: it imports no route module, and app.py (the only module
that knows them all) builds the services at start-up and puts them on `app.state`. So the
imports in web/ go one way: app -> routes -> forms, csrf -> services. State a route needs
for the life of the app (the subscribe rate limit, the health check's memory) is a typed
field here, built by app.py with the rest, rather than made on first use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import URLSafeTimedSerializer
from starlette.requests import Request

from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.mail.transport import Transport, open_transport
from syndicate.store import Store
from syndicate.tokens import Tokens
from syndicate.web.admingate import AdminGate
from syndicate.web.health import HealthCheck
from syndicate.web.pagecache import PerLanguage, RenderedOnce
from syndicate.web.ratelimit import RateLimiter
from syndicate.web.render import WebPages


@dataclass
class WebServices:
    """Everything a route may use. Built once per app (app.create_app)."""

    settings: Settings
    store: Store
    clock: Clock
    tokens: Tokens
    transport: Transport
    pages: WebPages
    # Signs and checks the forms' CSRF tokens (csrf.py): the signing secret, its own salt.
    csrf: URLSafeTimedSerializer
    # /healthz's view of the database, remembered between polls (health.py).
    health: HealthCheck
    # POST /subscribe per client address (subscription.py).
    subscribe_limiter: RateLimiter
    # The home page as last rendered in each language, and when to render it again (home.py,
    # pagecache.py).
    home_page: PerLanguage[bytes]
    # The categories stored posts have (without [site] categories), per change (forms.py).
    post_categories: RenderedOnce[list[str]]
    # When the worker runs the app (`syndicate run`), what /healthz reports about it.
    worker_state: Callable[[], Mapping[str, Any]] | None = None
    # The /admin dashboard's password check, sessions and lock-out; None: it is off
    # (admingate.py, admin/views.py).
    admin: AdminGate | None = None
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
