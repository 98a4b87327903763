"""/feeds/...: the published files (`[publish] dir`) over HTTP, with conditional GET and gzip.

Feed readers poll these far more often than anything else is requested, and nearly every
poll should end in a 304. So this is a plain ASGI app that the Starlette app calls before
its router (`FeedFiles.middleware`), and a 304 costs one stat() and a dict look-up: the
ETag (a hash of the bytes), the headers and the body (plain and gzipped) are cached per
file and reused while the file's (mtime_ns, size, inode) stays the same. publish writes
files by atomic rename, so a new version always has a new inode.

A published page (.html) with versions in several languages is answered in the reader's
(`FeedFiles.page`); the language middleware adds `Vary: Accept-Language, Cookie`. Each
version is its own file, so its ETag is its own.

Paths are checked lexically (no "..", no dot-files such as publish's temporaries, no NUL,
no backslash) and then resolved, so a symlink leading out of the folder is a 404 too.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from syndicate.config import Settings
from syndicate.publish.pages import variant_path
from syndicate.web.language import negotiate
from syndicate.web.security import CONTENT_SECURITY_POLICY, SECURITY_HEADERS, error_response

PREFIX = "/feeds/"
CONTENT_TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    # The feeds' XSLT stylesheet (syndicate.publish.stylesheet): a type browsers apply.
    ".xsl": "text/xsl; charset=utf-8",
}
FEED_SUFFIXES = (".rss", ".atom", ".json")
# Feeds that carry the XSLT stylesheet. Browsers show application/rss+xml and
# application/atom+xml as plain text and apply no stylesheet to them, so a browser opening
# one (it asks for text/html, and names no feed type) gets the same bytes as
# application/xml, which it renders through the stylesheet. Feed readers get the feed type.
STYLED_SUFFIXES = (".rss", ".atom")
BROWSER_TYPE = b"application/xml; charset=utf-8"
# Browsers load an XSLT stylesheet under script-src: the site's policy with the site's own
# stylesheet allowed. The stylesheet makes no scripts, and nosniff keeps any other
# published file from running as one.
STYLED_CSP = (CONTENT_SECURITY_POLICY + "; script-src 'self'").encode()
_FEED_TYPES = (b"application/rss+xml", b"application/atom+xml")
MIN_GZIP = 256  # below this gzip's header costs more than it saves

Headers = list[tuple[bytes, bytes]]


def routes() -> list[BaseRoute]:
    # /feeds/ never reaches the router: FeedFiles.middleware answers it first.
    return [
        Route("/digest", _past_issues, methods=["GET", "HEAD"]),
        Route("/digest/", _past_issues, methods=["GET", "HEAD"]),
    ]


async def _past_issues(request: Request) -> Response:
    """/digest/: the list of past issues is published beside their web copies, at
    /feeds/digest/. Relative, so the redirect stays on the host (and path) it came to."""
    target = "../feeds/digest/" if request.url.path.endswith("/") else "feeds/digest/"
    return RedirectResponse(target, status_code=301)


@dataclass(slots=True)
class _Version:
    """One version of one file, as long as its (mtime_ns, size, inode) holds."""

    key: tuple[int, int, int]
    etag: str  # '"<sha256 prefix>"', the identity variant
    last_modified: float
    headers: Headers  # everything but ETag, Content-Length and Content-Encoding
    body: bytes  # feeds and pages are small: kept, so a 200 costs no read either
    gzipped: bytes | None = None
    gz_checked: bool = False
    styled: bool = False  # a feed a browser is shown through the stylesheet


class FeedFiles:
    """Serves files under `folder` at /feeds/; everything else goes on to `app`."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self._configure(settings)

    def _configure(self, settings: Settings) -> None:
        self.settings = settings
        # Resolved once, so a file's resolved path can be checked against it.
        self.root = settings.publish_dir.resolve()
        self.ttl = int(settings.publish.ttl.total_seconds())
        self.hub = settings.publish.websub_hub
        self.feeds_url = f"{settings.site.url}/feeds/"
        self._cache: dict[str, _Version] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path.startswith(PREFIX) or path == "/feeds"):
            await self.app(scope, receive, send)
            return
        # The worker may have reloaded the config (WebServices.reconfigure): follow it.
        current = scope["app"].state.services.settings
        if current is not self.settings:
            self._configure(current)
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _error(scope, receive, send, 405, [(b"allow", b"GET, HEAD")])
            return
        if path == "/feeds":
            await _redirect(send, PREFIX)
            return
        rel = path[len(PREFIX) :]
        version = self.page(scope, rel or "index.html")
        if version is None and (rel == "" or rel.endswith("/")):
            version = self.page(scope, rel + "index.html")
        elif version is None and self._is_dir(rel):
            await _redirect(send, path + "/")
            return
        if version is None:
            await _error(scope, receive, send, 404, [])
            return
        await self._respond(scope, send, version, head=method == "HEAD")

    def page(self, scope: Scope, rel: str) -> _Version | None:
        """File `rel`, or, for a published page with a version in the reader's language
        (web/language.py), that version: "archive/2015-12.th.html" for "archive/2015-12.html"
        (publish.pages.variant_path). A version asked for by its own name is served as it is."""
        offered = self.settings.site.offered_languages
        if len(offered) > 1 and rel.endswith(".html"):
            tag = negotiate(scope, offered).tag
            if tag != offered[0]:
                version = self.lookup(variant_path(rel, tag, offered[0]))
                if version is not None:
                    return version
        return self.lookup(rel)

    def lookup(self, rel: str) -> _Version | None:
        """The current version of file `rel` ("index.rss"), or None when there is none."""
        if not _safe(rel):
            return None
        candidate = f"{self.root}/{rel}"
        try:
            # os.stat on a str, not Path.stat: this runs on every poll, and Path objects cost
            # more than the system call itself.
            info = os.stat(candidate)  # noqa: PTH116
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        key = (info.st_mtime_ns, info.st_size, info.st_ino)
        cached = self._cache.get(rel)
        if cached is not None and cached.key == key:
            return cached
        return self._load(rel, candidate, key, info.st_mtime)

    def _load(
        self, rel: str, candidate: str, key: tuple[int, int, int], mtime: float
    ) -> _Version | None:
        real = Path(candidate).resolve()
        if not real.is_relative_to(self.root):
            return None  # a symlink leading out of the folder
        try:
            body = real.read_bytes()
        except OSError:
            return None
        suffix = real.suffix.lower()
        headers: Headers = [
            (b"content-type", CONTENT_TYPES.get(suffix, "application/octet-stream").encode()),
            (b"last-modified", formatdate(mtime, usegmt=True).encode()),
            (b"cache-control", f"public, max-age={self.ttl}".encode()),
            (
                b"vary",
                b"Accept, Accept-Encoding" if suffix in STYLED_SUFFIXES else b"Accept-Encoding",
            ),
        ]
        if self.hub and suffix in FEED_SUFFIXES:
            link = f'<{self.hub}>; rel="hub", <{self.feeds_url}{rel}>; rel="self"'
            headers.append((b"link", link.encode()))
        version = _Version(
            key=key,
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            last_modified=mtime,
            headers=headers,
            body=body,
            styled=suffix in STYLED_SUFFIXES,
        )
        self._cache[rel] = version
        return version

    def _is_dir(self, rel: str) -> bool:
        if not _safe(rel):
            return False
        real = (self.root / rel).resolve()
        return real.is_relative_to(self.root) and real.is_dir()

    async def _respond(self, scope: Scope, send: Send, version: _Version, *, head: bool) -> None:
        request = _request_headers(scope)
        gzip_ok = _accepts_gzip(request.get(b"accept-encoding", b""))
        body = version.body
        etag = version.etag
        encoding: Headers = []
        if gzip_ok:
            gzipped = _gzipped(version)
            if gzipped is not None:
                body, etag = gzipped, version.etag[:-1] + '-gz"'
                encoding = [(b"content-encoding", b"gzip")]
        headers = version.headers
        if version.styled and _browser_navigation(request.get(b"accept", b"")):
            # Same bytes, another type: a representation of its own for caches.
            headers = [(n, BROWSER_TYPE if n == b"content-type" else v) for n, v in headers]
            etag = etag[:-1] + '-xml"'
        security = SECURITY_HEADERS
        if headers is not version.headers:
            security = [
                (n, STYLED_CSP if n == b"content-security-policy" else v) for n, v in security
            ]
        common = [*headers, (b"etag", etag.encode()), *security]
        if _not_modified(request, etag, version.last_modified):
            await send({"type": "http.response.start", "status": 304, "headers": common})
            await send({"type": "http.response.body", "body": b""})
            return
        length = [(b"content-length", str(len(body)).encode())]
        await send(
            {"type": "http.response.start", "status": 200, "headers": common + encoding + length}
        )
        await send({"type": "http.response.body", "body": b"" if head else body})


def _safe(rel: str) -> bool:
    """True when `rel` can only name something inside the folder (before symlinks)."""
    if "\0" in rel or "\\" in rel or rel.startswith("/"):
        return False
    parts = rel.split("/")
    # Every segment: not empty ("a//b"), not "." or "..", not a dot-file (temporaries).
    return all(part and not part.startswith(".") for part in parts)


def _gzipped(version: _Version) -> bytes | None:
    if not version.gz_checked:
        version.gz_checked = True
        body = version.body
        if len(body) >= MIN_GZIP:
            # mtime=0: the same bytes give the same gzip, so its ETag means something.
            version.gzipped = gzip.compress(body, compresslevel=6, mtime=0)
    return version.gzipped


def _request_headers(scope: Scope) -> dict[bytes, bytes]:
    return {name: value for name, value in scope["headers"]}


def _browser_navigation(accept: bytes) -> bool:
    """A browser opening a page asks for text/html; a feed reader names a feed type (and
    may accept text/html too, for a page it finds feeds on)."""
    wanted = accept.lower()
    return b"text/html" in wanted and not any(kind in wanted for kind in _FEED_TYPES)


def _accepts_gzip(header: bytes) -> bool:
    for item in header.split(b","):
        name, _, params = item.strip().partition(b";")
        if name.strip().lower() not in (b"gzip", b"x-gzip"):
            continue
        q = params.strip().lower()
        if q.startswith(b"q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def _not_modified(request: dict[bytes, bytes], etag: str, last_modified: float) -> bool:
    """RFC 9110 13.1: If-None-Match (weak comparison, lists, *) wins over If-Modified-Since."""
    if_none_match = request.get(b"if-none-match")
    if if_none_match is not None:
        return _etag_matches(if_none_match.decode("latin-1"), etag)
    if_modified_since = request.get(b"if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return False  # an invalid date is ignored (RFC 9110 13.1.3)
    if since.tzinfo is None:  # "-0000": HTTP dates are always UTC
        since = since.replace(tzinfo=UTC)
    # HTTP dates have whole seconds; the file's mtime has a fraction.
    return int(last_modified) <= since.timestamp()


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    return etag in _tags(header)


def _tags(header: str) -> Iterable[str]:
    # Weak comparison: W/"x" and "x" are the same tag for If-None-Match.
    for item in header.split(","):
        tag = item.strip()
        yield tag[2:] if tag.startswith("W/") else tag


async def _redirect(send: Send, location: str) -> None:
    headers = [(b"location", location.encode()), (b"content-length", b"0"), *SECURITY_HEADERS]
    await send({"type": "http.response.start", "status": 301, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _error(scope: Scope, receive: Receive, send: Send, status: int, extra: Headers) -> None:
    """The site's own error page (templates/web/message.html.j2), with security headers."""
    response = error_response(scope, status)
    for name, value in extra:
        response.headers[name.decode()] = value.decode()
    for name, value in SECURITY_HEADERS:
        response.headers[name.decode()] = value.decode()
    if scope["method"] == "HEAD":
        response.body = b""
    await response(scope, receive, send)
