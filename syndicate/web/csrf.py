"""Cross-site request forgery protection for the site's forms (subscribe, preferences).

    <input type="hidden" name="csrf_token" value="{{ csrf_token }}">   # csrf_token(request)
    problem = check_csrf(request, form)                                  # None when it is fine

Two checks, both must pass:

1. **Origin / Referer.** When the browser sends `Origin` (every current browser does on a
   POST) or, failing that, `Referer`, its scheme, host and port must be the site's
   (`[site] url`) or the request's own host (the app reached directly, e.g. on
   127.0.0.1:8080 behind a proxy that rewrites nothing). This is what stops a form on
   another site from posting here with the visitor's browser.

   `Origin: null` is what a browser sends when it will not say where a request came from:
   from a page served with `Referrer-Policy: no-referrer` (a reverse proxy may add that to
   every page), but also from a sandboxed frame or after a cross-site redirect, a classic
   way round naive checks. So "null" alone proves nothing either way, and the browser's own
   `Sec-Fetch-Site` decides: "same-origin" (Chromium sends exactly `Origin: null` with
   `Sec-Fetch-Site: same-origin` for a form on a no-referrer page posting to its own site)
   is accepted, anything else ("cross-site", "same-site", "none", or no header at all) is
   refused. Scripts cannot set Sec-* headers, so a page elsewhere cannot fake it; a client
   that is not a browser could, but it could as well send no Origin, which the token decides.
2. **A signed, timestamped token in a hidden field.** It is stateless: an itsdangerous
   signature over a random nonce, keyed by the signing secret with its own salt
   ("syndicate-csrf", so it can never pass for an email link's token or the reverse), and
   valid for CSRF_MAX_AGE. It proves the form was rendered by this site recently, which
   stops blind forgeries from clients that send neither header.

Why stateless rather than a double-submit cookie: the home page (syndicate/web/home.py)
renders the subscribe form and only calls `csrf_token(request) -> str`; it has no way to set
a cookie, and a form that needs a cookie from an earlier page breaks for people who block
cookies. The token carries no personal data and is not bound to a session, so on its own it
would not stop an attacker who fetched one first: the Origin/Referer check is the defence
for that, and the token the second layer. The one-click unsubscribe POST (RFC 8058) is
deliberately exempt: the mail provider sends it with no cookie, no token and no Origin.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request

from syndicate.clock import Clock
from syndicate.tokens import clocked_serializer
from syndicate.web.services import services

FIELD = "csrf_token"
SALT = "syndicate-csrf"
# Long enough for someone who opened the page, went for lunch and came back; a stale form
# is answered with a fresh one, so expiry costs one more click, not the typed values.
CSRF_MAX_AGE = timedelta(hours=12)


def csrf_serializer(signing_secret: str, clock: Clock) -> URLSafeTimedSerializer:
    """What signs and checks the tokens (WebServices.csrf, which app.py builds), dated and
    aged by the app's clock."""
    return clocked_serializer(signing_secret, SALT, clock)


def csrf_token(request: Request) -> str:
    """A fresh token for a form's hidden `csrf_token` field (see the module docstring)."""
    return services(request).csrf.dumps(secrets.token_urlsafe(16))


def check_csrf(request: Request, form: Mapping[str, object]) -> str | None:
    """Why this POST must be refused (a sentence fit for a log line), or None if it is fine."""
    origin_problem = _check_origin(request)
    if origin_problem:
        return origin_problem
    token = form.get(FIELD)
    if not isinstance(token, str) or not token:
        return "the form has no CSRF token"
    try:
        services(request).csrf.loads(token, max_age=int(CSRF_MAX_AGE.total_seconds()))
    except SignatureExpired:
        return "the form's CSRF token has expired"
    except BadSignature:
        return "the form's CSRF token is not valid"
    return None


def _check_origin(request: Request) -> str | None:
    origin = request.headers.get("origin")
    header = "Origin"
    if origin is None:
        origin = request.headers.get("referer")
        header = "Referer"
    if origin is None:
        return None  # neither sent (old client, stripped by a proxy): the token decides
    if header == "Origin" and origin.strip() == "null":
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site.strip().lower() == "same-origin":
            return None  # the browser vouches for it (see the module docstring)
        said = f"Sec-Fetch-Site {fetch_site[:40]!r}" if fetch_site else "no Sec-Fetch-Site"
        return f"Origin 'null' is not this site ({said})"
    if _origin_of(origin) in _allowed_origins(request):
        return None
    return f"{header} {origin[:200]!r} is not this site"


def _allowed_origins(request: Request) -> set[tuple[str, str]]:
    allowed = {_origin_of(services(request).settings.site.url)}
    host = request.headers.get("host")
    if host:
        allowed.add(_origin_of(f"{request.url.scheme}://{host}"))
    return allowed


def _origin_of(url: str) -> tuple[str, str]:
    """(scheme, host[:port]) with the default port dropped, so https://x and
    https://x:443 agree; ("", "") for anything unparseable, including "null"."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ("", "")
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        return ("", "")
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal, spelled as in a Host header
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host = f"{host}:{port}"
    return (scheme, host)
