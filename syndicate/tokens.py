"""Signed, expiring tokens for the links in emails (confirm, unsubscribe, preferences).

The signing secret comes from the environment variable named by [web] secret_env. Without
one (a first run on a laptop) a random secret is generated once into var/secret beside the
database, readable only by its owner, and a warning says to set the variable in production:
tokens must survive restarts, or every link already sent would break.
"""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from syndicate.config import Settings, secret

log = logging.getLogger(__name__)

# How long a link in an email works. Unsubscribe links must work for a long time: people
# unsubscribe from old issues.
LIFETIMES = {
    "confirm": timedelta(days=7),
    "unsubscribe": timedelta(days=400),
    "preferences": timedelta(days=400),
}


class TokenError(ValueError):
    """A token that is forged, for another purpose, or expired (`expired` says which)."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        self.expired = expired
        super().__init__(message)


def signing_secret(settings: Settings) -> str:
    value = secret(settings.web.secret_env)
    if value:
        return value
    path = settings.resolve("var/secret")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
        log.warning(
            "%s is not set: generated a signing secret in %s; set the variable in production",
            settings.web.secret_env,
            path,
        )
    return Path(path).read_text().strip()


class Tokens:
    def __init__(self, secret_key: str) -> None:
        self._secret = secret_key
        # Made once each: a digest send signs two links per message.
        self._serializers = {
            purpose: URLSafeTimedSerializer(secret_key, salt=f"syndicate-{purpose}")
            for purpose in LIFETIMES
        }

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        if purpose not in LIFETIMES:
            raise ValueError(f"unknown token purpose {purpose!r}")
        return self._serializers[purpose]

    def sign(self, purpose: str, subscriber_id: int) -> str:
        return self._serializer(purpose).dumps(subscriber_id)

    def link(self, site_url: str, purpose: str, subscriber_id: int) -> str:
        """The public URL of a signed link: <site>/<purpose>/<token> (see the web app)."""
        return f"{site_url.rstrip('/')}/{purpose}/{self.sign(purpose, subscriber_id)}"

    def verify(self, purpose: str, token: str) -> int:
        """The subscriber id in a valid token; TokenError otherwise."""
        max_age = int(LIFETIMES[purpose].total_seconds())
        try:
            value = self._serializer(purpose).loads(token, max_age=max_age)
        except SignatureExpired:
            raise TokenError("this link has expired", expired=True) from None
        except BadSignature:
            raise TokenError("this link is not valid") from None
        if not isinstance(value, int):
            raise TokenError("this link is not valid")
        return value
