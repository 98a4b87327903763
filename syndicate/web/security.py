"""Hardening shared by every response: security headers, a request body limit, error pages.

The middlewares are plain ASGI (no BaseHTTPMiddleware): they sit in front of every feed
poll and must cost next to nothing; app.py puts them in front of the routes. Errors reach
visitors as the site's own message page (templates/web/message.html.j2), or plain text if
that template is broken; never a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syndicate.web.language import negotiate
from syndicate.web.render import plain_error

log = logging.getLogger(__name__)

# Forms on this site are a few fields; 16 KiB leaves plenty of room and caps what an abuser
# can make the server buffer and parse.
MAX_BODY = 16 * 1024

# base.html.j2 carries its stylesheet inline (pages must be self-contained as static files),
# hence 'unsafe-inline' for styles only; no scripts at all. Post images are hot-linked.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# A digest issue's copy shown to an admin or a reviewer before it is sent (review.py, the
# dashboard): framed by this site only, sandboxed so that no script in it could run, with
# the inline styles of an email and the posts' images.
SANDBOXED_COPY_POLICY = (
    "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'self'; base-uri 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"DENY"),
]
_SECURITY_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(message.get("headers", []))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def with_security_headers(headers: Any) -> list[tuple[bytes, bytes]]:
    present = {name.lower() for name, _ in headers}
    missing = [(n, v) for n, v in SECURITY_HEADERS if n not in present]
    return [*headers, *missing]


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413)


class BodyLimit:
    """413 for a request body over `limit` bytes, declared (Content-Length) or streamed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.limit:
                    status = 400 if declared < 0 else 413
                    response = error_response(scope, status)
                    await response(scope, receive, send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Raised into whoever reads the body (request.form()); the exception
                    # handlers below turn it into the 413 page.
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited_receive, send)


def error_response(scope: Scope, status: int) -> Response:
    """The site's error page for `status`; plain text when the app has no services yet."""
    state = getattr(scope.get("app"), "state", None)
    services = getattr(state, "services", None)
    if services is None:
        return plain_error(status)
    path = scope.get("path")
    language = negotiate(scope, services.settings.site.offered_languages)
    response: Response = services.pages.error_page(
        status, path=path if isinstance(path, str) else "/", language=language
    )
    return response


def exception_handlers() -> dict[Any, Any]:
    return {HTTPException: _http_error, ClientDisconnect: _client_gone, Exception: _server_error}


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client left while its request body was being read (or was cut off for sending it
    # too slowly, syndicate/web/connections.py): nobody to answer, nothing went wrong here.
    log.debug("client %s left before its request was read", request.client)
    return Response(status_code=400)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    response = error_response(request.scope, status)
    if isinstance(exc, HTTPException) and exc.headers:  # Allow: on a 405
        response.headers.update(exc.headers)
    return response


async def _server_error(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware calls this outside the other middlewares (and logs
    # the traceback afterwards), so the security headers are added here.
    try:
        response = error_response(request.scope, 500)
    except Exception:  # the error page itself failing must not hide the first error
        log.exception("cannot render the 500 page")
        response = plain_error(500)
    for name, value in SECURITY_HEADERS:
        response.headers[name.decode()] = value.decode()
    return response
