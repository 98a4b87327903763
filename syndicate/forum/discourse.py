"""A small async client for the part of Discourse's API that syndication needs.

One topic per blog post, created with ``POST /posts.json`` and found again by the post's
``external_id`` (``GET /t/external_id/{id}.json``), so that creating is idempotent: a second
``topic_for`` for the same post, from a re-run or a second worker, finds the first topic
instead of opening another one. Discourse itself enforces the uniqueness (of ``external_id``
and of ``embed_url``); this client only turns its refusal into a lookup.

Whatever goes wrong comes out as a one-line :class:`ForumError`, never as a raw httpx
exception, and the API key never appears in a message, a log line or a repr.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from syndicate import __version__
from syndicate.errors import SyndicateError

log = logging.getLogger(__name__)

# Discourse validates external_id with Ruby's /\A[\w-]+\z/, where \w is ASCII only.
EXTERNAL_ID = re.compile(r"[\w-]{1,50}", re.ASCII)
MAX_ATTEMPTS = 3  # per request, counting the first, when the forum answers 429
MAX_REDIRECTS = 5
_MAX_DETAIL = 300  # characters of the forum's own error text kept in a message

Sleep = Callable[[float], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Topic:
    id: int
    url: str  # f"{base_url}/t/{slug}/{id}", the page readers open
    reply_count: int | None = None  # posts_count - 1, when the answer said


class ForumError(SyndicateError):
    """The forum could not be reached, refused us, or answered something unusable.

    ``status`` is the HTTP status when the forum answered; ``retry_after`` is how many seconds
    it asked us to wait (429) when that was longer than the client waits by itself, so the
    caller can try again on a later cycle.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class DiscourseClient:
    """Creates and finds the discussion topic of a blog post on one Discourse forum.

    Use one client for a run and close it afterwards (``await client.aclose()`` or
    ``async with DiscourseClient(...) as client:``). ``transport`` replaces the network and
    ``sleep`` the waiting between rate-limited attempts, for tests.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        api_username: str,
        category: int | None = None,
        timeout: float = 15.0,
        max_wait: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"Discourse URL must be http(s)://host[/path], not {base_url!r}")
        if not api_key:
            raise ValueError("the Discourse API key is empty")
        self.base_url = base_url.rstrip("/")
        self.api_username = api_username
        self.category = category
        self.timeout = timeout
        self.max_wait = max_wait
        self._where = f"{url.host}:{url.port}" if url.port else url.host
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            headers={
                "Api-Key": api_key,
                "Api-Username": api_username,
                "Accept": "application/json",
                "User-Agent": f"syndicate/{__version__} (Discourse client)",
            },
            timeout=timeout,
            # Followed by hand: httpx would send the Api-Key header on to any other host a
            # redirect names (it strips only Authorization).
            follow_redirects=False,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"DiscourseClient({self.base_url!r}, api_username={self.api_username!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def topic_for(
        self, *, external_id: str, title: str, raw: str, embed_url: str | None
    ) -> Topic:
        """Create the topic, or find the one created earlier for this external_id. Idempotent.

        `embed_url` is the post's link; a post without one gets a topic without it."""
        _check_external_id(external_id)
        payload: dict[str, object] = {"title": title, "raw": raw}
        if embed_url:
            payload["embed_url"] = embed_url
        payload["external_id"] = external_id
        if self.category is not None:
            payload["category"] = self.category
        response = await self._request("POST", "/posts.json", json=payload)
        if response.is_success:
            data = self._json(response)
            if data.get("action") == "enqueued":
                raise ForumError(
                    f"{self._where}: the new topic waits in the review queue; use a staff "
                    f"api_username instead of {self.api_username!r}",
                    status=response.status_code,
                )
            topic_id, slug = data.get("topic_id"), data.get("topic_slug")
            if not _is_int(topic_id) or not isinstance(slug, str):
                raise self._unusable(response, "no topic_id and topic_slug")
            return Topic(topic_id, self._topic_url(slug, topic_id), reply_count=0)
        if response.status_code == 422:
            # A topic for this external_id (or embed_url) exists already, perhaps from a run
            # that died before storing the answer. Discourse words that refusal in the forum's
            # language, so rather than match "has already been taken" we look the topic up
            # after any 422: found means it is ours.
            found = await self.find_topic(external_id)
            if found is not None:
                return found
            raise ForumError(
                f"{self._where}: topic refused: {self._detail(response) or 'HTTP 422'}",
                status=422,
            )
        raise self._status_error(response)

    async def find_topic(self, external_id: str) -> Topic | None:
        """The topic created with this external_id, or None if there is none."""
        _check_external_id(external_id)
        response = await self._request("GET", f"/t/external_id/{external_id}.json")
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise self._status_error(response)
        return self._topic(response)

    async def reply_count(self, topic_id: int) -> int:
        """How many posts follow the first one in the topic (posts_count - 1)."""
        response = await self._request("GET", f"/t/{int(topic_id)}.json")
        if response.status_code == 404:
            raise ForumError(f"{self._where}: topic {topic_id} not found (deleted?)", status=404)
        if not response.is_success:
            raise self._status_error(response)
        topic = self._topic(response)
        assert topic.reply_count is not None  # _topic insists on posts_count
        return topic.reply_count

    async def _request(
        self, method: str, path: str, *, json: object | None = None
    ) -> httpx.Response:
        """Send, waiting out short 429s; any other status is the caller's to judge."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            response = await self._send(method, self.base_url + path, json)
            if response.status_code != 429:
                return response
            wait = _wait_seconds(response)
            if wait is None or wait > self.max_wait or attempt == MAX_ATTEMPTS:
                asked = f", retry after {wait:g} s" if wait is not None else ""
                raise ForumError(
                    f"{self._where}: rate limited (HTTP 429){asked}",
                    status=429,
                    retry_after=wait,
                )
            log.info("%s asked us to wait %g s (HTTP 429); waiting", self._where, wait)
            await self._sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _send(self, method: str, url: str, json: object | None) -> httpx.Response:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = await self._http.request(method, url, json=json)
            except httpx.HTTPError as error:
                raise ForumError(self._network_message(error)) from error
            # Only lookups follow redirects (/t/external_id/... answers with one); a POST that
            # is redirected did not create anything and is reported as a status error.
            if method != "GET" or not response.is_redirect:
                return response
            url = self._redirect_target(response)
        raise ForumError(f"{self._where}: more than {MAX_REDIRECTS} redirects")

    def _redirect_target(self, response: httpx.Response) -> str:
        location = response.headers.get("location", "")
        try:
            target = response.url.join(location)
        except httpx.InvalidURL:
            raise ForumError(
                _one_line(f"{self._where}: redirect to an invalid URL {location!r}"),
                status=response.status_code,
            ) from None
        source = response.url
        # The API key goes along, so only to the same origin, or from http up to https on
        # the same host; never to another port, host or down to http.
        same_origin = (target.scheme, target.host, target.port) == (
            source.scheme,
            source.host,
            source.port,
        )
        upgrade = source.scheme == "http" and target.scheme == "https"
        if not (same_origin or (upgrade and target.host == source.host)):
            origin = f"{target.scheme}://{target.host}" + (f":{target.port}" if target.port else "")
            raise ForumError(
                _one_line(
                    f"{self._where}: redirected to {origin}; not sending the API key there "
                    "(check the forum URL)"
                ),
                status=response.status_code,
            )
        return str(target)

    def _topic(self, response: httpx.Response) -> Topic:
        data = self._json(response)
        topic_id, posts_count = data.get("id"), data.get("posts_count")
        if not _is_int(topic_id) or not _is_int(posts_count):
            raise self._unusable(response, "no topic id and posts_count")
        # Discourse serves any slug for an id; "topic" is what it uses when a title has none.
        slug = data.get("slug") if isinstance(data.get("slug"), str) else ""
        return Topic(topic_id, self._topic_url(slug or "topic", topic_id), max(posts_count - 1, 0))

    def _topic_url(self, slug: str, topic_id: int) -> str:
        # The slug is the forum's answer: quoted, so it stays one path segment whatever it
        # holds ("/", "?", "#", spaces, quotes); "%" is kept, as slugs Discourse encodes
        # itself come percent-encoded. Discourse serves a topic under any slug.
        return f"{self.base_url}/t/{quote(slug, safe='-_.~%')}/{topic_id}"

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise self._unusable(response, "not a JSON object")
        return data

    def _unusable(self, response: httpx.Response, what: str) -> ForumError:
        return ForumError(
            f"{self._where}: unexpected answer to {response.request.method} "
            f"{response.url.path}: {what}",
            status=response.status_code,
        )

    def _status_error(self, response: httpx.Response) -> ForumError:
        status = response.status_code
        reason = httpx.codes.get_reason_phrase(status) or _one_line(response.reason_phrase)
        message = f"{self._where}: HTTP {status} {reason}".rstrip()
        if status in (401, 403):
            message = (
                f"{self._where}: the API key or username {self.api_username!r} was refused "
                f"(HTTP {status})"
            )
        elif status in (301, 302, 303, 307, 308):
            message += f" to {response.headers.get('location', '?')} (check the forum URL)"
        elif status == 404:
            message += f" for {response.url.path} (is this the forum's URL?)"
        detail = self._detail(response) if status < 500 else ""
        if detail:
            message += f": {detail}"
        return ForumError(_one_line(message), status=status)

    def _detail(self, response: httpx.Response) -> str:
        """Discourse's own error text ({"errors": [...]}), one line, without the API key."""
        try:
            data = response.json()
        except ValueError:
            return ""
        errors = data.get("errors") if isinstance(data, dict) else None
        if isinstance(errors, str):
            errors = [errors]
        if not isinstance(errors, list):
            return ""
        text = _one_line("; ".join(str(error) for error in errors))
        return self._scrub(text)[:_MAX_DETAIL]

    def _scrub(self, text: str) -> str:
        # A misbehaving server could echo the header back; it must not reach a log.
        key = self._http.headers.get("api-key", "")
        return text.replace(key, "***") if key else text

    def _network_message(self, error: httpx.HTTPError) -> str:
        where = self._where
        causes = list(_causes(error))
        if isinstance(error, httpx.ConnectTimeout):
            message = f"cannot connect to {where}: timed out after {self.timeout:g} s"
        elif isinstance(error, httpx.TimeoutException):
            message = f"{where}: no answer within {self.timeout:g} s (timeout)"
        elif any(isinstance(cause, ConnectionRefusedError) for cause in causes):
            message = f"cannot connect to {where}: connection refused"
        elif gaierror := next((c for c in causes if isinstance(c, socket.gaierror)), None):
            message = f"cannot resolve {where}: {gaierror.strerror or gaierror}"
        elif tls := next((c for c in causes if isinstance(c, ssl.SSLError)), None):
            reason = getattr(tls, "verify_message", None) or tls.reason or str(tls)
            message = f"TLS error with {where}: {reason}"
        elif isinstance(error, httpx.ConnectError):
            message = f"cannot connect to {where}: {error or type(error).__name__}"
        else:
            message = f"{where}: connection failed: {error or type(error).__name__}"
        return self._scrub(_one_line(message))


def _check_external_id(external_id: str) -> None:
    if not isinstance(external_id, str) or not EXTERNAL_ID.fullmatch(external_id):
        raise ValueError(
            f"Discourse external_id must be 1 to 50 characters of A-Z a-z 0-9 _ -, "
            f"not {external_id!r}"
        )


def _wait_seconds(response: httpx.Response) -> float | None:
    """Retry-After (seconds), else Discourse's {"extras": {"wait_seconds": n}}; None if neither."""
    wait = _seconds(response.headers.get("retry-after", "").strip())
    if wait is not None:
        return wait
    try:
        data = response.json()
    except ValueError:
        return None
    extras = data.get("extras") if isinstance(data, dict) else None
    return _seconds(extras.get("wait_seconds")) if isinstance(extras, dict) else None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    # "nan" and "inf" parse as floats too; neither is a wait.
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _one_line(text: str) -> str:
    return " ".join(text.split())
