"""The issue's links, and whether each one still leads somewhere.

    urls = links_in(html)
    problems = await check_links(urls, timeout=5, total=20)

Each link is asked for with HEAD, and with GET when a server refuses HEAD (405, 501, 403)
or breaks on it; redirects are followed by hand, up to five, so a problem can name the hop
that failed. A 2xx at the end is fine; a 4xx or 5xx, a name that does not resolve, a refused
connection, a TLS error or no answer in time is a problem naming the status or the error.
The whole check is bounded: links not checked within ``total`` seconds are counted in one
"info" problem rather than waited for.

The links come from feeds, so from anyone: one may point at the machine's own network
(``http://127.0.0.1:8080/admin``, the cloud metadata service) to see what it answers. So,
unless ``allow_private``, every connection goes through ingest's guard
(syndicate.ingest.netguard), which resolves the host, refuses loopback, private and
link-local addresses, and connects to the address it checked; a redirect there is refused
the same way. Only absolute http(s) links are asked for at all (syndicate.links decides, as
for everything we publish); a ``javascript:`` or ``data:`` link is a problem, not a request.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

from syndicate import __version__
from syndicate.ingest.netguard import AddressRefused, PublicOnlyBackend, PublicOnlyTransport
from syndicate.links import MAX_URL_LENGTH, public_url
from syndicate.preview.problem import Problem, url_shown

_E = TypeVar("_E", bound=BaseException)

USER_AGENT = f"syndicate/{__version__} (digest link check)"
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Servers that answer HEAD with these often answer GET properly.
HEAD_REFUSED = frozenset({403, 405, 501})
# The server is there but would not answer a robot: the link may well work in a browser.
UNSURE = frozenset({401, 403, 429})
# Schemes that are not links to check: a mail or phone link, a fragment of the issue itself.
_NOT_WEB = ("mailto:", "tel:", "sms:")
_BAD_LOCATION = "Invalid URL in location header: "  # httpx's RemoteProtocolError
_TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")  # browsers drop them from URLs (WHATWG)


def links_in(html: str) -> list[str]:
    """Every distinct link (``<a href>``, ``<area href>``) of ``html``, in order.

    mailto:, tel: and fragment-only (``#top``) links are left out; everything else is kept,
    http(s) or not: a ``javascript:`` or relative link in an issue is itself a problem, and
    check_links() says so without requesting it.
    """
    parser = _LinkParser()
    parser.feed(html)
    parser.close()
    return list(dict.fromkeys(parser.links))


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("a", "area"):
            return
        for name, value in attrs:
            if name == "href" and value is not None:
                href = value.strip(" \t\n\r\f")  # as a browser reads the attribute
                plain = href.translate(_TAB_OR_NEWLINE).lower()
                if href and not plain.startswith("#") and not plain.startswith(_NOT_WEB):
                    self.links.append(href)
                return


async def check_links(
    urls: Sequence[str],
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 (a bound per link, not one on the call)
    total: float = 20.0,
    concurrency: int = 8,
    allow_private: bool = False,
    user_agent: str = USER_AGENT,
    network: PublicOnlyBackend | None = None,
) -> list[Problem]:
    """The problems of ``urls`` (duplicates checked once), in the order of the links.

    Each link takes at most ``timeout`` seconds per request (HEAD, then maybe GET), and the
    whole check at most about ``total``; ``concurrency`` links are asked for at once.
    Unless ``allow_private``, only public addresses are connected to (see the module).
    ``network`` replaces the guard's resolver and address check, for tests only.
    """
    distinct = list(dict.fromkeys(urls))
    found: dict[str, Problem | None] = {}
    wanted: list[str] = []
    for url in distinct:
        refusal = _not_checkable(url)
        if refusal is not None:
            found[url] = refusal
        else:
            wanted.append(url)
    unchecked = 0
    if wanted:
        async with _client(user_agent, timeout, concurrency, allow_private, network) as client:
            checked, unchecked = await _check_all(client, wanted, timeout, total, concurrency)
        found.update(checked)
    problems = [problem for url in distinct if (problem := found.get(url)) is not None]
    if unchecked:
        links = "link was" if unchecked == 1 else "links were"
        problems.append(
            Problem(
                "link",
                f"{unchecked} of {len(wanted)} links",
                f"{unchecked} {links} not checked: the check stops after {total:g} s.",
                "info",
            )
        )
    return problems


async def _check_all(
    client: httpx.AsyncClient, urls: list[str], per_request: float, total: float, concurrency: int
) -> tuple[dict[str, Problem | None], int]:
    """Each URL's problem (None when it is fine), and how many were not checked in time."""
    gate = asyncio.Semaphore(max(concurrency, 1))

    async def one(url: str) -> Problem | None:
        async with gate:
            return await _check(client, url, per_request)

    tasks = {url: asyncio.create_task(one(url)) for url in urls}
    _, pending = await asyncio.wait(tasks.values(), timeout=total)
    for task in pending:
        task.cancel()
    if pending:
        # A cancelled request closes its connection; nothing here should take long, but the
        # bound holds even if it did.
        await asyncio.wait(pending, timeout=1.0)
    checked = {
        url: task.result()
        for url, task in tasks.items()
        if task.done() and not task.cancelled() and task.exception() is None
    }
    for url, task in tasks.items():
        if task.done() and not task.cancelled() and (error := task.exception()) is not None:
            # A bug of ours must not hide the other links: the link says what happened.
            checked[url] = Problem("link", url, f"Could not be checked: {_describe(error)}.")
    return checked, len(urls) - len(checked)


def _client(
    user_agent: str,
    timeout: float,
    concurrency: int,
    allow_private: bool,
    network: PublicOnlyBackend | None,
) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=max(concurrency, 1), max_keepalive_connections=0)
    transport = None if allow_private else PublicOnlyTransport(limits=limits, network=network)
    return httpx.AsyncClient(
        headers={"User-Agent": user_agent, "Accept": "*/*"},
        timeout=httpx.Timeout(timeout),
        limits=limits,
        follow_redirects=False,  # by hand: each hop is checked and named
        transport=transport,
    )


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    url: str  # where the last redirect led
    redirected: bool


class _Failed(Exception):
    """A request that got no status to judge; ``message`` is the problem's sentence."""

    def __init__(self, message: str, *, worth_a_get: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.worth_a_get = worth_a_get


async def _check(client: httpx.AsyncClient, url: str, per_request: float) -> Problem | None:
    try:
        answer = await _ask(client, "HEAD", url, per_request)
        if answer.status not in HEAD_REFUSED:
            return _judged(url, answer)
    except _Failed as failed:
        if not failed.worth_a_get:
            return Problem("link", url, failed.message)
    # Some servers refuse HEAD, or break on it: ask as a browser would.
    try:
        answer = await _ask(client, "GET", url, per_request)
    except _Failed as failed:
        return Problem("link", url, failed.message)
    return _judged(url, answer)


async def _ask(client: httpx.AsyncClient, method: str, url: str, per_request: float) -> _Answer:
    """The status at the end of ``url``'s redirects; _Failed when there is none."""
    try:
        current = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise _Failed(f"Not a valid URL: {error}.") from None
    hops = 0
    try:
        async with asyncio.timeout(per_request):
            for hops in range(MAX_REDIRECTS + 1):
                # Streamed and closed unread: the status is all we want, not the body.
                async with client.stream(method, current) as response:
                    status = response.status_code
                    location = response.headers.get("location", "").strip()
                if status not in REDIRECTS or not location:
                    return _Answer(status, str(current), hops > 0)
                current = _redirect_target(current, location)
    except TimeoutError:
        raise _Failed(f"No answer within {per_request:g} s{_at(current, hops)}.") from None
    except AddressRefused as refused:
        step = f"Redirects to {url_shown(str(current))}, not followed" if hops else "Not checked"
        raise _Failed(f"{step}: {_private(refused)}.") from None
    except httpx.InvalidURL as error:
        raise _Failed(f"Not a valid URL{_at(current, hops)}: {error}.") from None
    except httpx.HTTPError as error:
        # A refused connection, an unknown name or a TLS error will not change for a GET; a
        # server that breaks the connection on HEAD may well answer one.
        worth_a_get = method == "HEAD" and not isinstance(
            error, httpx.ConnectError | httpx.TimeoutException
        )
        message = _network_message(error, current, hops, per_request)
        raise _Failed(message, worth_a_get=worth_a_get) from None
    raise _Failed(f"More than {MAX_REDIRECTS} redirects; the last to {url_shown(str(current))}.")


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    try:
        target = current.join(location)
    except httpx.InvalidURL:
        raise _Failed(f"Redirects to an invalid URL {url_shown(location)}.") from None
    refusal = _why_not(str(target))
    if refusal is not None:
        raise _Failed(f"Redirects to {url_shown(str(target))}, which is not followed: {refusal}.")
    return target


def _judged(url: str, answer: _Answer) -> Problem | None:
    status = answer.status
    if 200 <= status < 300:
        return None
    phrase = httpx.codes.get_reason_phrase(status)
    said = f"HTTP {status} {phrase}".rstrip()
    if answer.redirected:
        said = f"Redirects to {url_shown(answer.url)}, which answers {said}"
    else:
        said = f"Answers {said}"
    if status in REDIRECTS or 300 <= status < 400:
        return Problem("link", url, f"{said} without saying where to go.")
    if status in UNSURE:
        return Problem(
            "link",
            url,
            f"{said}: the server would not answer the check; try it in a browser.",
            "warning",
        )
    return Problem("link", url, f"{said}.")


def _not_checkable(url: str) -> Problem | None:
    """A problem, without any request, for a link that is not an absolute http(s) URL."""
    reason = _why_not(url)
    return None if reason is None else Problem("link", url, f"Not checked: {reason}.")


def _why_not(url: str) -> str | None:
    if public_url(url) is not None:
        return None
    if len(url) > MAX_URL_LENGTH:
        return f"longer than {MAX_URL_LENGTH} characters, which we do not publish"
    plain = url.strip().translate(_TAB_OR_NEWLINE)
    try:
        parts = urlsplit(plain)
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme and parts.scheme not in ("http", "https"):
        return f"a {parts.scheme}: link; only http and https links are checked (and published)"
    if not parts.scheme:
        return "a relative link, which leads nowhere in an email (links need https://...)"
    if "@" in parts.netloc:
        return "a link with a user name or password in it (it can show one host and open another)"
    return "not a link we publish (spaces, quotes, control characters or no host)"


def _private(refused: AddressRefused) -> str:
    host = refused.host.strip("[]")
    said = (
        f"{host} is {refused.reason}"
        if host == str(refused.address)
        else f"{host} resolves to {refused.address}, {refused.reason}"
    )
    return f"{said}, and links into this machine's own network are not followed"


def _at(url: httpx.URL, hops: int) -> str:
    return f" (after redirects, at {url_shown(str(url))})" if hops else ""


def _network_message(error: httpx.HTTPError, url: httpx.URL, hops: int, timeout: float) -> str:
    host = url.host
    causes = list(_causes(error))
    if isinstance(error, httpx.ConnectTimeout):
        said = f"Connecting to {host} timed out after {timeout:g} s"
    elif isinstance(error, httpx.TimeoutException):
        said = f"No answer from {host} within {timeout:g} s"
    elif gaierror := _first(causes, socket.gaierror):
        said = f"Cannot resolve {host}: {gaierror.strerror or gaierror}"
    elif _first(causes, ConnectionRefusedError):
        said = f"Connection refused by {host}"
    elif tls := _first(causes, ssl.SSLError):
        reason = getattr(tls, "verify_message", None) or tls.reason or str(tls)
        said = f"TLS error with {host}: {reason}"
    elif isinstance(error, httpx.ConnectError):
        said = f"Cannot connect to {host}: {error}"
    elif str(error).startswith(_BAD_LOCATION):
        # httpx reads a redirect's Location even when not following it.
        said = f"Redirects to an invalid URL ({str(error).removeprefix(_BAD_LOCATION)})"
    elif isinstance(error, httpx.ProtocolError):
        said = f"The answer of {host} is not valid HTTP: {error}"
    else:
        said = f"{_describe(error)} from {host}"
    return f"{said}{_at(url, hops)}."


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _first(errors: list[BaseException], kind: type[_E]) -> _E | None:
    return next((error for error in errors if isinstance(error, kind)), None)
