"""Signed, expiring tokens for the links in emails (confirm, unsubscribe, preferences).

The signing secret comes from the environment variable named by [web] secret_env. Without
one (a first run on a laptop) a random secret is generated once into var/secret beside the
database, readable only by its owner, and a warning says to set the variable in production:
tokens must survive restarts, or every link already sent would break.

A link belongs to one person for ever. Its token carries the subscriber's id and a tag of
their address (an HMAC under the signing secret, so a token in a log cannot be used to test
guessed addresses, and needing no column); a link counts only for the subscriber row with
that id *and* that address. Ids are never reused either (migration 0006), so this is a
second lock: an address is never re-added after `forget`, and a link can never act on
anyone but the person it was sent to.

Links signed before tags existed carry the id alone, and people still unsubscribe with them
(400 days, RFC 8058). Such a link counts only for a row created no later than the link was
signed: a row that took over a forgotten person's id is newer than every link signed for
them. Tokens carry their signing time in whole seconds, so "no later" is to the second: a
takeover would need the old owner forgotten and a newcomer added in the second their link
was signed, and only before 0006 (after it no id is taken over at all). A link refused this
way gets the same answer as one whose subscriber was forgotten.

Time comes from the Clock handed in, not from the process: tokens are stamped and their
age checked by `clocked_serializer`, which the form tokens of the web app use as well.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeGuard

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from syndicate.clock import Clock
from syndicate.config import Settings, secret
from syndicate.models import Subscriber

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


class _ClockSigner(TimestampSigner):
    """itsdangerous's signer, reading the time from our Clock: it asks `get_timestamp`
    both to stamp a token and to measure its age (itsdangerous 2.x)."""

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock.now().timestamp())


def clocked_serializer(secret_key: str, salt: str, clock: Clock) -> URLSafeTimedSerializer:
    """A URL-safe timed serializer whose tokens are dated and aged by `clock`."""
    return URLSafeTimedSerializer(
        secret_key, salt=salt, signer=_ClockSigner, signer_kwargs={"clock": clock}
    )


class LinkOwner(Protocol):
    """Whom a link is signed for: a Subscriber, or the Recipient of a delivery."""

    @property
    def id(self) -> int: ...

    @property
    def email(self) -> str: ...


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a valid token says; `Tokens.belongs_to` decides whether it is a row's."""

    subscriber_id: int
    address_tag: str | None  # None: signed before links named their owner's address
    signed_at: datetime  # to the second


class Tokens:
    def __init__(self, secret_key: str, clock: Clock) -> None:
        self._secret = secret_key
        # Made once each: a digest send signs two links per message.
        self._serializers = {
            purpose: clocked_serializer(secret_key, f"syndicate-{purpose}", clock)
            for purpose in LIFETIMES
        }

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        if purpose not in LIFETIMES:
            raise ValueError(f"unknown token purpose {purpose!r}")
        return self._serializers[purpose]

    def _address_tag(self, email: str) -> str:
        # 96 bits: it only has to tell apart the addresses that ever had one id, and it
        # cannot be forged without the secret (the token is signed besides).
        digest = hmac.new(
            self._secret.encode(), b"syndicate-address\0" + email.encode(), hashlib.sha256
        ).digest()
        return base64.urlsafe_b64encode(digest[:12]).decode("ascii")

    def sign(self, purpose: str, owner: LinkOwner) -> str:
        return self._serializer(purpose).dumps([owner.id, self._address_tag(owner.email)])

    def link(self, site_url: str, purpose: str, owner: LinkOwner) -> str:
        """The public URL of a signed link: <site>/<purpose>/<token> (see the web app)."""
        return f"{site_url.rstrip('/')}/{purpose}/{self.sign(purpose, owner)}"

    def verify(self, purpose: str, token: str) -> LinkClaim:
        """What a valid token claims; TokenError when it is forged, damaged, for another
        purpose or expired. Whether it names a given row is `belongs_to`'s to say."""
        max_age = int(LIFETIMES[purpose].total_seconds())
        try:
            value, signed_at = self._serializer(purpose).loads(
                token, max_age=max_age, return_timestamp=True
            )
        except SignatureExpired:
            raise TokenError("this link has expired", expired=True) from None
        except BadSignature:
            raise TokenError("this link is not valid") from None
        if _is_id(value):  # signed before links named their owner's address
            return LinkClaim(value, None, signed_at)
        if (
            isinstance(value, list)
            and len(value) == 2
            and _is_id(value[0])
            and isinstance(value[1], str)
        ):
            return LinkClaim(value[0], value[1], signed_at)
        raise TokenError("this link is not valid")

    def belongs_to(self, claim: LinkClaim, subscriber: Subscriber) -> bool:
        """Whether `claim` is a link to `subscriber`: their id and address, or for a link
        with the id alone, a row created no later than the link was signed (see above)."""
        if claim.subscriber_id != subscriber.id:
            return False
        if claim.address_tag is not None:
            expected = self._address_tag(subscriber.email)
            return hmac.compare_digest(claim.address_tag.encode(), expected.encode())
        created = subscriber.created_at
        return created is not None and created.replace(microsecond=0) <= claim.signed_at


def _is_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
