"""Addresses that say whom a returning mail is about: the VERP return path and the unsubscribe
mailbox, each "<local>+<signed token>@<domain>" of an address from the config.

    addresses = VerpAddresses(signing_secret(settings))
    envelope_from = addresses.return_path("bounces@example.org", issue_id, subscriber)
    # -> "bounces+b7-42-k3x9...@example.org": a bounce of that copy comes back to it
    mailto = addresses.unsubscribe("unsubscribe@example.org", subscriber, now)
    # -> "unsubscribe+u42-9466-p2...@example.org": a mail to it unsubscribes subscriber 42

    claim = addresses.read("bounces@example.org", "bounces+b7-42-k3x9...@example.org")
    if claim and addresses.belongs_to(claim, subscriber, now): ...

Why not the itsdangerous tokens of the links: a local part holds at most 64 characters
(RFC 5321 4.5.3.1.1), and mail servers may fold it to lower case, so the token is short and
case-free: decimal ids, a day number, and 80 bits of HMAC-SHA256 in lower-case base32. The
HMAC covers the purpose, the ids and the subscriber's address, under the same secret as the
links (syndicate.tokens.signing_secret): a forged or altered token names nobody, and a token
of a forgotten subscriber's id matches no one else (ids are never reused, migration 0006).

A return path names one copy (issue and subscriber) and does not expire: bounces can come back
days later, and it only ever counts a bounce against the copy it was sent with. An unsubscribe
mailbox address carries the day it was made and works for as long as the unsubscribe links do
(tokens.LIFETIMES, 400 days: RFC 8058 asks for a lasting mailto).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from syndicate.config.fields import verp_parts
from syndicate.tokens import LIFETIMES

Purpose = Literal["bounce", "unsubscribe"]
_PREFIX: dict[Purpose, str] = {"bounce": "b", "unsubscribe": "u"}
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MAC_CHARS = 16
_TOKEN = re.compile(r"([bu])(\d{1,10})-(\d{1,10})-([a-z2-7]{16})")


class Owner(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def email(self) -> str: ...


@dataclass(frozen=True, slots=True)
class VerpClaim:
    """What a token in an address says; `belongs_to` decides whether it is true."""

    purpose: Purpose
    subscriber_id: int
    number: int  # the issue's id (bounce) or the day it was made (unsubscribe)
    mac: str


@functools.lru_cache(maxsize=16)
def base_address(configured: str, key: str) -> tuple[str, str]:
    """(local part, domain) of a configured address; ValueError naming `key` when a token
    cannot be added to it (the config refuses such an address already). Cached: parsing an
    address costs more than the HMAC, and a send asks twice a message."""
    try:
        return verp_parts(configured)
    except ValueError as error:
        raise ValueError(f"{key}: {error}") from None


class VerpAddresses:
    def __init__(self, secret_key: str) -> None:
        # Keyed once: a copy of it per token costs a third of a new HMAC.
        self._keyed = hmac.new(secret_key.encode(), digestmod=hashlib.sha256)

    def return_path(self, configured: str, issue_id: int, owner: Owner) -> str:
        """The envelope sender of `owner`'s copy of issue `issue_id`."""
        return self._address(configured, "[mail] return_path", "bounce", owner, issue_id)

    def unsubscribe(self, configured: str, owner: Owner, now: datetime) -> str:
        """The address whose mail unsubscribes `owner` (List-Unsubscribe's mailto)."""
        day = (now - EPOCH).days
        return self._address(configured, "[mail] unsubscribe_mailbox", "unsubscribe", owner, day)

    def read(self, configured: str, address: str) -> VerpClaim | None:
        """What `address` claims, when it is `configured` with a token after "+" (any case);
        None for any other address. Nothing is verified yet: see belongs_to."""
        try:
            local, domain = base_address(configured, "address")
        except ValueError:
            return None
        got_local, at, got_domain = address.strip().lower().rpartition("@")
        base, plus, token = got_local.partition("+")
        if not at or got_domain != domain or base != local or not plus:
            return None
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        prefix, number, subscriber_id, mac = match.groups()
        purpose: Purpose = "bounce" if prefix == "b" else "unsubscribe"
        return VerpClaim(purpose, int(subscriber_id), int(number), mac)

    def belongs_to(self, claim: VerpClaim, owner: Owner, now: datetime) -> bool:
        """Whether `claim` was signed by us for `owner` (their id and address) and, for an
        unsubscribe address, is not older than an unsubscribe link may be."""
        if claim.subscriber_id != owner.id:
            return False
        expected = self._mac(claim.purpose, claim.number, owner)
        if not hmac.compare_digest(claim.mac.encode(), expected.encode()):
            return False
        if claim.purpose == "unsubscribe":
            made = EPOCH + timedelta(days=claim.number)
            return made <= now + timedelta(days=1) and now - made <= LIFETIMES["unsubscribe"]
        return True

    def _address(
        self, configured: str, key: str, purpose: Purpose, owner: Owner, number: int
    ) -> str:
        local, domain = base_address(configured, key)
        mac = self._mac(purpose, number, owner)
        token = f"{_PREFIX[purpose]}{int(number)}-{int(owner.id)}-{mac}"
        return f"{local}+{token}@{domain}"

    def _mac(self, purpose: Purpose, number: int, owner: Owner) -> str:
        message = f"syndicate-verp\0{purpose}\0{int(number)}\0{int(owner.id)}\0{owner.email}"
        keyed = self._keyed.copy()
        keyed.update(message.encode())
        digest = keyed.digest()
        return base64.b32encode(digest[:10]).decode("ascii").lower()[:_MAC_CHARS]
