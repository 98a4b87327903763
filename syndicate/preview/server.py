"""`syndicate digest preview --serve`: the upcoming issue on a local page that reloads itself.

    GET /                    the page: the copy (desktop or phone width, or the text part),
                             who it is for, and the problems found in rendering it
    GET /copy                the HTML copy, shown in the page's frame (sandboxed: no script)
    GET /checks              the slow checks as a piece of the page: links, SpamAssassin
    GET /changes?seen=G      answers when the watched files moved past generation G (long poll)
    GET /static/preview.js   reloads the page on a change, and fills in the slow checks

The page keeps what it shows in its address (?view=phone&email=...&lang=th), so a reload
after an edit shows the same reader at the same width. A config.toml that no longer loads
is a problem at the top of the page, and the last one that loaded stays in use; the
database is the one opened at the start.

Only this machine: the server listens on 127.0.0.1 unless told otherwise with
--allow-remote, and answers only requests addressed to 127.0.0.1 or localhost (a web page
elsewhere cannot reach it through a DNS name it rebinds to 127.0.0.1). The page shows a
subscriber's name and copy; nothing on it changes anything, so it has no forms to forge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import uvicorn
from jinja2 import Template
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from syndicate.clock import Clock
from syndicate.config import Settings, load_settings
from syndicate.errors import ConfigError, SyndicateError
from syndicate.preview.links import check_links, links_in
from syndicate.preview.problem import Problem
from syndicate.preview.problems import template_problem
from syndicate.preview.render import Preview, Reader, render_preview
from syndicate.preview.spam import spam_score
from syndicate.preview.watch import Changes, watched_paths
from syndicate.store import Store
from syndicate.templating import page_environment

log = logging.getLogger(__name__)

LOCAL_HOSTS = ("127.0.0.1", "localhost")
VIEWS = ("desktop", "phone", "text")
LONG_POLL = 20.0  # seconds a /changes request waits before answering "no change"
REUSE_RENDERED = 10.0  # seconds a rendered copy serves the page's own requests
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "frame-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
# The copy is the email as subscribers get it: its own inline styles, remote images (http:
# too, for a site still on a development server), no script and no form, and only in the
# page's frame.
COPY_POLICY = (
    "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "style-src 'unsafe-inline'; img-src http: https: data:; frame-ancestors 'self'; "
    "base-uri 'none'"
)
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


class PreviewServeError(SyndicateError):
    """The preview server could not start (the address is in use, not this machine's)."""


@dataclass
class PreviewState:
    """What the routes share: the settings as last loaded, the store, the watcher."""

    settings: Settings
    store: Store
    clock: Clock
    period: str
    check_links: bool = True
    boot: str = field(default_factory=lambda: secrets.token_hex(4))
    config_problem: Problem | None = None
    changes: Changes = field(init=False)
    _previews: dict[Reader, tuple[float, Preview]] = field(default_factory=dict)
    _link_problems: dict[tuple[str, ...], list[Problem]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.changes = Changes(lambda: watched_paths(self.settings))

    @property
    def generation(self) -> str:
        # The boot id too: a page from before a restart of the server reloads as well.
        return f"{self.boot}-{self.changes.generation}"

    @property
    def watched(self) -> list[str]:
        """The watched files and folders, relative to the config's folder when inside it."""
        return _watched_names(self.settings)

    def reload(self) -> None:
        """A watched file changed: read the config again, forget what was rendered."""
        self._previews.clear()
        try:
            self.settings = load_settings(self.settings.path)
        except ConfigError as error:
            self.config_problem = template_problem(error, self.settings.templates_dir)
            log.warning("preview: %s", self.config_problem.message)
        else:
            self.config_problem = None

    async def preview(self, reader: Reader, *, fresh: bool = False) -> Preview:
        """The copy for `reader`: rendered `fresh` for each page, then reused by the
        requests the page makes at once (its frame, its checks), not longer, since posts
        change without any file changing (the worker ingests meanwhile)."""
        now = time.monotonic()
        rendered = self._previews.get(reader)
        if fresh or rendered is None or now - rendered[0] > REUSE_RENDERED:
            self._previews = {
                r: p for r, p in self._previews.items() if now - p[0] <= REUSE_RENDERED
            }
            preview = await render_preview(
                self.settings, self.store, self.clock, self.period, reader
            )
            rendered = self._previews[reader] = (now, preview)
        return rendered[1]

    async def slow_checks(self, preview: Preview) -> list[Problem]:
        """The links' problems (remembered per set of links, so a template edit does not
        ask every server again) and SpamAssassin's verdict."""
        if preview.html is None or preview.message is None:
            return []
        spam = asyncio.create_task(asyncio.to_thread(spam_score, preview.message))
        problems: list[Problem] = []
        if self.check_links:
            links = tuple(links_in(preview.html))
            if links not in self._link_problems:
                if len(self._link_problems) >= 32:  # one set per copy and edit: bounded
                    self._link_problems.clear()
                self._link_problems[links] = await check_links(links)
            problems += self._link_problems[links]
        if (scored := await spam) is not None:
            problems.append(scored)
        return problems


def create_app(state: PreviewState, *, allow_remote: bool = False) -> Starlette:
    routes = [
        Route("/", _page),
        Route("/copy", _copy),
        Route("/checks", _checks),
        Route("/changes", _changes),
        Route("/static/{name}", _static),
        Route("/favicon.ico", lambda request: Response(status_code=204, headers=HEADERS)),
    ]
    hosts = ["*"] if allow_remote else list(LOCAL_HOSTS)
    app = Starlette(
        routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)]
    )
    app.state.preview = state
    return app


def _state(request: Request) -> PreviewState:
    state: PreviewState = request.app.state.preview
    return state


def _reader(request: Request) -> Reader:
    email = request.query_params.get("email", "").strip()[:320] or None
    language = request.query_params.get("lang", "").strip()[:35] or None
    return Reader(email, language)


def _query(reader: Reader, **more: str) -> str:
    """The query string of a reader's links, "?email=...&lang=...", or "" for nobody."""
    pairs = {"email": reader.email or "", "lang": reader.language or "", **more}
    query = urlencode({key: value for key, value in pairs.items() if value})
    return f"?{query}" if query else ""


async def _page(request: Request) -> Response:
    state = _state(request)
    reader = _reader(request)
    view = request.query_params.get("view", "desktop")
    if view not in VIEWS:
        view = "desktop"
    preview = await state.preview(reader, fresh=True)
    problems = [*([state.config_problem] if state.config_problem else []), *preview.problems]
    problems.sort(key=lambda problem: _SEVERITY_ORDER[problem.severity])
    settings = state.settings
    html = _template().render(
        preview=preview,
        problems=problems,
        view=view,
        views=[(name, "/" + _query(reader, view=name)) for name in VIEWS],
        reader=reader,
        languages=settings.site.offered_languages,
        copy_url="/copy" + _query(reader),
        checks_url="/checks" + _query(reader),
        generation=state.generation,
        watched=state.watched,
        link_check=state.check_links,
    )
    policy = {"Content-Security-Policy": PAGE_POLICY, "X-Frame-Options": "DENY"}
    return HTMLResponse(html, headers={**HEADERS, **policy, "Referrer-Policy": "no-referrer"})


async def _copy(request: Request) -> Response:
    preview = await _state(request).preview(_reader(request))
    if preview.html is None:
        return Response("No copy: see the problems on the page.", 409, headers=HEADERS)
    headers = {**HEADERS, "Content-Security-Policy": COPY_POLICY, "X-Frame-Options": "SAMEORIGIN"}
    return HTMLResponse(preview.html, headers=headers)


async def _checks(request: Request) -> Response:
    state = _state(request)
    preview = await state.preview(_reader(request))
    problems = await state.slow_checks(preview)
    problems.sort(key=lambda problem: _SEVERITY_ORDER[problem.severity])
    checks: Any = _template("problems.html.j2").module.checks  # type: ignore[attr-defined]
    return HTMLResponse(str(checks(problems, state.check_links)), headers=HEADERS)


async def _changes(request: Request) -> Response:
    state = _state(request)
    seen = request.query_params.get("seen", "")
    boot, _, count = seen.partition("-")
    if boot == state.boot and count.isdigit() and len(count) < 10:
        await state.changes.wait(int(count), LONG_POLL)
    return JSONResponse({"generation": state.generation}, headers=HEADERS)


_STATIC = {"preview.js": "text/javascript", "preview.css": "text/css"}


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _STATIC:
        return Response("Not found", 404, headers=HEADERS)
    body = resources.files("syndicate.preview").joinpath("static", name).read_bytes()
    return Response(body, media_type=_STATIC[name], headers=HEADERS)


# The page's own templates ship with syndicate, apart from the site's templates/: the
# preview has to show a page while those are being edited, and broken.
_environment = page_environment(Path(__file__).parent)


def _template(name: str = "page.html.j2") -> Template:
    return _environment.get_template(name)


def _watched_names(settings: Settings) -> list[str]:
    base = settings.base_dir
    names = []
    for path in watched_paths(settings):
        with contextlib.suppress(ValueError):
            path = path.relative_to(base)
        names.append(f"{path}/" if not path.suffix else str(path))
    return names


def listening_socket(host: str, port: int, allow_remote: bool) -> socket.socket:
    """A socket bound to host:port; PreviewServeError naming the address when it cannot be,
    or when `host` is not this machine's loopback and `allow_remote` is not given."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise PreviewServeError(f"--host {host!r}: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    if not allow_remote and not _loopback(address[0]):
        raise PreviewServeError(
            f"--host {host!r} is reachable from other machines, and the page shows "
            "subscribers' copies; pass --allow-remote to serve it there anyway"
        )
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise PreviewServeError(
            f"cannot listen on {host}:{port}: {error.strerror or error} "
            "(another program has it? pass --port)"
        ) from None
    sock.listen(64)
    sock.setblocking(False)
    return sock


def _loopback(address: str) -> bool:
    return address.startswith("127.") or address == "::1"


def served_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/"


@contextlib.asynccontextmanager
async def running(state: PreviewState) -> AsyncIterator[None]:
    """The watcher, running while the server does."""
    watcher = asyncio.create_task(state.changes.run(state.reload))
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def serve_preview(
    state: PreviewState,
    sock: socket.socket,
    *,
    allow_remote: bool = False,
    started: Callable[[], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the preview on `sock` until Ctrl+C (or until `stop` is set)."""
    config = uvicorn.Config(
        create_app(state, allow_remote=allow_remote),
        log_level="warning",
        lifespan="off",
        # A page's /changes request waits up to LONG_POLL; stopping should not.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config) if stop is None else _LeavesSignals(config)
    stopping = asyncio.create_task(_stop_on(stop, server)) if stop is not None else None
    async with running(state):
        if started is not None:
            started()
        try:
            await server.serve(sockets=[sock])
        finally:
            if stopping is not None:
                stopping.cancel()


class _LeavesSignals(uvicorn.Server):
    """A server that leaves SIGINT and SIGTERM to its caller (who sets `stop`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _stop_on(stop: asyncio.Event, server: uvicorn.Server) -> None:
    await stop.wait()
    server.should_exit = True
