"""Which language a page is in, and the `lang` cookie that remembers a reader's choice.

    language = request_language(request)                       # any page
    language = request_language(request, stored=subscriber.language)   # a signed-link page
    language.tag -> "th"; language.source -> "query" | "cookie" | "subscriber" | ...

The order, first that names one of `[site] languages` (settings.site.offered_languages):

1. `?lang=th` in the URL: the visible switch's links (base.html.j2). The response sets the
   `lang` cookie, so the choice holds on the next pages.
2. On a page reached through a signed link (confirm, unsubscribe, preferences): the
   subscriber's stored language, which they chose for the digest.
3. The `lang` cookie.
4. `Accept-Language`, matched with languages.best_match.
5. The site's default (the first offered).

Only a tag the site offers is ever taken, spelt as the config spells it, so nothing a
request sends reaches a page, a header or the cookie. With one language offered there is
nothing to choose: no cookie, no Vary, the page is in that language.

`Languages` (the outermost middleware, app.py) sets the cookie on a `?lang=` request and adds
`Vary: Accept-Language, Cookie` to every HTML response, so a shared cache keeps one copy per
language rather than handing a Thai page to an English reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Literal
from urllib.parse import unquote

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syndicate.languages import MAX_TAG, best_match, language_tag

PARAMETER = "lang"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600  # a year: a reader's language rarely changes
# Longer than any Accept-Language a browser sends (Chrome's is under 100 bytes); the rest of
# an oversized header is not read.
MAX_ACCEPT_LANGUAGE = 512
MAX_COOKIE_HEADER = 4096
MAX_QUERY = 2048
VARY = b"Accept-Language, Cookie"

Source = Literal["query", "subscriber", "cookie", "header", "default"]


@dataclass(frozen=True, slots=True)
class PageLanguage:
    """The language of one page, how it was chosen, and the languages offered."""

    tag: str
    offered: tuple[str, ...]
    source: Source = "default"

    @property
    def multilingual(self) -> bool:
        return len(self.offered) > 1

    @property
    def explicit(self) -> bool:
        """Chosen with the switch (`?lang=`) on this very request."""
        return self.source == "query"

    @property
    def chosen(self) -> str | None:
        """The language the reader asked for in some way (None: the site's default by
        default), e.g. to store with a new subscriber."""
        return None if self.source == "default" else self.tag


def default_language(offered: Sequence[str]) -> PageLanguage:
    return PageLanguage(offered[0], tuple(offered))


def offered_tag(value: str | None, offered: Sequence[str]) -> str | None:
    """`value` when it is one of `offered` (any case, "_" for "-"), spelt as offered."""
    if not value or len(value) > MAX_TAG:
        return None
    tag = language_tag(value)
    if tag is None:
        return None
    return next((choice for choice in offered if choice.lower() == tag.lower()), None)


def query_language(query_string: bytes, offered: Sequence[str]) -> str | None:
    """The offered language named by the first `lang=` parameter of a query string."""
    if len(offered) < 2 or not query_string or len(query_string) > MAX_QUERY:
        return None
    for pair in query_string.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == PARAMETER.encode():
            text = unquote(value.decode("latin-1").replace("+", " "), errors="replace")
            return offered_tag(text, offered)
    return None


def cookie_language(header: str | None, offered: Sequence[str]) -> str | None:
    """The offered language the `lang` cookie names."""
    if not header or len(header) > MAX_COOKIE_HEADER:
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return None
    morsel = cookies.get(COOKIE)
    return offered_tag(morsel.value, offered) if morsel is not None else None


def negotiate(scope: Scope, offered: Sequence[str], stored: str | None = None) -> PageLanguage:
    """The language of the page answering the request `scope` (see the module docstring)."""
    kept = tuple(offered)
    if len(kept) < 2:
        return default_language(kept)
    if tag := query_language(scope.get("query_string", b""), kept):
        return PageLanguage(tag, kept, "query")
    if tag := offered_tag(stored, kept):
        return PageLanguage(tag, kept, "subscriber")
    headers = _headers(scope)
    if tag := cookie_language(headers.get(b"cookie"), kept):
        return PageLanguage(tag, kept, "cookie")
    accept = headers.get(b"accept-language")
    if accept and (tag := best_match(accept[:MAX_ACCEPT_LANGUAGE], kept)):
        return PageLanguage(tag, kept, "header")
    return default_language(kept)


def request_language(request: Request, stored: str | None = None) -> PageLanguage:
    """negotiate() for a route, with the site's languages."""
    return negotiate(request.scope, site_languages(request.scope) or ["en"], stored)


def site_languages(scope: Scope) -> list[str] | None:
    """The languages the app's current settings offer; None before the app has started."""
    services = getattr(getattr(scope.get("app"), "state", None), "services", None)
    if services is None:
        return None
    return list(services.settings.site.offered_languages)


def _headers(scope: Scope) -> dict[bytes, str]:
    # Headers a page reads here; the first of each, as latin-1 (what HTTP carries).
    found: dict[bytes, str] = {}
    for name, value in scope.get("headers", []):
        if name in (b"cookie", b"accept-language") and name not in found:
            found[name] = value.decode("latin-1")
    return found


class Languages:
    """Sets the `lang` cookie when a request chose a language with `?lang=`, and adds
    `Vary: Accept-Language, Cookie` to HTML responses, when the site offers several."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        offered = site_languages(scope) if scope["type"] == "http" else None
        if not offered or len(offered) < 2:
            await self.app(scope, receive, send)
            return
        chosen = query_language(scope.get("query_string", b""), offered)
        secure = scope.get("scheme") == "https"

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_language_headers(
                    list(message.get("headers", [])), chosen, secure=secure
                )
            await send(message)

        await self.app(scope, receive, send_with_language)


def with_language_headers(
    headers: list[tuple[bytes, bytes]], chosen: str | None, *, secure: bool
) -> list[tuple[bytes, bytes]]:
    """`headers` with Vary on an HTML response, and the cookie for a `?lang=` choice."""
    html = any(n.lower() == b"content-type" and v.startswith(b"text/html") for n, v in headers)
    if html:
        headers = _with_vary(headers)
    if chosen is not None:
        cookie = f"{COOKIE}={chosen}; Path=/; Max-Age={COOKIE_MAX_AGE}; SameSite=Lax; HttpOnly"
        headers.append((b"set-cookie", (cookie + ("; Secure" if secure else "")).encode()))
        # A response that sets a cookie is one reader's: no shared cache may keep it.
        headers = [(n, v) for n, v in headers if n.lower() != b"cache-control" or b"no-store" in v]
        if not any(n.lower() == b"cache-control" for n, _ in headers):
            headers.append((b"cache-control", b"private, no-cache"))
    return headers


def _with_vary(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            present = {part.strip().lower() for part in value.split(b",")}
            missing = [p for p in (b"Accept-Language", b"Cookie") if p.lower() not in present]
            if missing:
                headers[index] = (name, b", ".join([value, *missing]))
            return headers
    return [*headers, (b"vary", VARY)]
