"""The Starlette application: built here and only here, from one module per group of routes.

    app = create_app(settings)                       # `syndicate serve` hands it to uvicorn
    app = create_app(settings, store=store, clock=clock, transport=transport)   # tests

Routes are thin: parse the request, call a service function, render a page.
What they share lives in `WebServices` (services.py), reached as `services(request)`:

    syndicate/web/services.py       WebServices: settings, store, clock, tokens, pages...
    syndicate/web/feeds.py          /feeds/...  static files with conditional GET, gzip, HEAD
    syndicate/web/home.py           /           latest posts, feeds, archive months, the form
    syndicate/web/subscription.py   /subscribe /confirm/<t> /unsubscribe/<t> /preferences/<t>
    syndicate/web/ops.py            /healthz /metrics
    syndicate/web/review.py         /digest/review/<t>  a proof's page, its approve button
    syndicate/web/admin/            /admin  the dashboard (off unless [web] admin_password_env)
    syndicate/web/security.py       security headers, body limits, error pages
    syndicate/web/render.py         pages from templates/web/ (sandboxed, autoescaped)
    syndicate/web/language.py       the language of each page, the `lang` cookie, Vary

Imports go one way: this module imports the route modules, they import services.py (and
forms.py, csrf.py), and services.py imports none of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware

from syndicate.clock import Clock, SystemClock
from syndicate.config import Settings
from syndicate.mail.transport import Transport, open_transport
from syndicate.store import Store
from syndicate.tokens import Tokens, signing_secret
from syndicate.web import feeds, home, ops, review, security, subscription
from syndicate.web.admin import views as admin
from syndicate.web.admingate import AdminGate
from syndicate.web.csrf import csrf_serializer
from syndicate.web.health import HealthCheck
from syndicate.web.language import Languages
from syndicate.web.pagecache import PerLanguage, RenderedOnce
from syndicate.web.render import WebPages
from syndicate.web.services import WebServices


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
        app_clock = clock or SystemClock()
        secret = signing_secret(settings)
        app.state.services = WebServices(
            settings=settings,
            store=opened_store,
            clock=app_clock,
            tokens=Tokens(secret, app_clock),
            transport=opened_transport,
            pages=WebPages(settings),
            csrf=csrf_serializer(secret, app_clock),
            health=HealthCheck(opened_store, app_clock),
            subscribe_limiter=subscription.subscribe_limiter(app_clock),
            home_page=PerLanguage(opened_store.content_version),
            post_categories=RenderedOnce(opened_store.content_version),
            worker_state=worker_state,
            admin=AdminGate.open(settings, secret, app_clock),
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
        routes=[
            *feeds.routes(),
            *home.routes(),
            *subscription.routes(),
            *review.routes(),
            *ops.routes(settings),
            *admin.routes(),
        ],
        middleware=middleware(settings),
        exception_handlers=security.exception_handlers(),
        lifespan=lifespan,
    )


def middleware(settings: Settings) -> list[Middleware]:
    # Outermost first. FeedFiles answers /feeds/ itself (with the security headers) before
    # any of the rest runs: feed polls are most of the traffic. Languages is before it, so
    # the published pages it chooses among get the `lang` cookie and Vary too; with one
    # language offered it only passes the request on.
    return [
        Middleware(Languages),
        Middleware(feeds.FeedFiles, settings=settings),
        Middleware(security.SecurityHeaders),
        Middleware(security.BodyLimit, limit=security.MAX_BODY),
    ]
