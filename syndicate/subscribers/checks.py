"""What a subscriber's fields must be before they are stored: the address (normalised, one
spelling per mailbox), the name (clean_name), the categories and the language
(pick_language), and the CSV columns that import reads and export writes.

These run once per line of an imported list, a million times for a big one, so the common
case has a fast path that gives exactly what the full check gives (tests/test_subscriber_checks.py
compares the two).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from syndicate.errors import UsageError
from syndicate.languages import best_match, language_tag

SUPPRESSED = "suppressed: this address asked to be forgotten"
NAME_MAX_LENGTH = 200

# What import_csv reads, and the extra columns export writes: an exported file imports
# back, but status and consent are not taken from a file (consent is not transferable).
# `language` came last (issue 20), and is written last, so the columns a consumer of an
# older export reads by position stay where they were.
IMPORT_COLUMNS = ("email", "name", "categories", "language")
EXPORT_COLUMNS = (
    "email",
    "name",
    "categories",
    "status",
    "consent_source",
    "consented_at",
    "confirmed_at",
    "unsubscribed_at",
    "bounce_count",
    "language",
)


class RejectedAddress(UsageError):
    """An address that cannot be subscribed: invalid, or suppressed after `forget`."""


class InvalidName(UsageError):
    """A subscriber's name that cannot be kept: too long, or with control characters."""


class UnknownLanguage(UsageError):
    """A language that is not a tag, or not one the site offers; the message names those."""


# An ASCII dot-atom local part (RFC 5322 atext, as email_validator allows it) and a domain of
# letters, digits, hyphens and dots. email_validator returns such a local part as it is, and
# checks the domain on its own, so the domain's verdict can be cached: a list has few domains.
_PLAIN_ADDRESS = re.compile(
    r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)@([A-Za-z0-9.-]+)"
)
_LOCAL_MAX_LENGTH = 64  # RFC 5321, as email_validator enforces them
_ADDRESS_MAX_LENGTH = 254


def normalise_email(address: str) -> str:
    """The address as stored: syntax-checked (no DNS lookup) and lower-cased."""
    text = address.strip()
    if not text:
        raise RejectedAddress("missing email address")
    plain = _PLAIN_ADDRESS.fullmatch(text)
    if plain is not None and len(plain[1]) <= _LOCAL_MAX_LENGTH:
        domain = _plain_domain(plain[2])
        longest = max(len(text), len(plain[1]) + 1 + len(domain or ""))
        if domain is not None and longest <= _ADDRESS_MAX_LENGTH:
            return f"{plain[1]}@{domain}".lower()
    # Anything else (quoted, international, too long, a bad domain) takes the full check,
    # which also words the reason.
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise RejectedAddress(f"invalid address {text!r}: {error}") from None
    return checked.normalized.lower()


@lru_cache(maxsize=4096)
def _plain_domain(domain: str) -> str | None:
    """The domain as email_validator normalises it, when it accepts it and it stays ASCII;
    None sends the address to the full check."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    normalised = checked.normalized.partition("@")[2]
    return normalised if normalised.isascii() else None


def email_hash(normalised: str) -> str:
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def normalise_categories(categories: Iterable[str]) -> tuple[str, ...]:
    """Stripped, empty ones dropped, duplicates (ignoring case, as the digest does) removed."""
    seen: set[str] = set()
    kept: list[str] = []
    for category in categories:
        name = category.strip()
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            kept.append(name)
    return tuple(kept)


def clean_name(name: str) -> str:
    """A name as typed (into a form, a CSV file or `subscribers add --name`), stripped and
    otherwise kept as it is (an "=?utf-8?...?=" stays that text: nothing is decoded).
    InvalidName when it is longer than NAME_MAX_LENGTH or holds control characters or line
    breaks (it ends up in the To: header, on pages and in a terminal)."""
    cleaned = name.strip()
    if len(cleaned) > NAME_MAX_LENGTH:
        raise InvalidName(f"the name is longer than {NAME_MAX_LENGTH} characters")
    # A printable string has none of the characters refused below (isprintable is False for
    # every Cc, Zl and Zp), and most names are: only the others are looked at one by one.
    if cleaned.isprintable():
        return cleaned
    # Cc: C0 and C1 controls and DEL; Zl, Zp: U+2028 and U+2029, which end a line too.
    if any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in cleaned):
        raise InvalidName("the name contains control characters")
    return cleaned


def pick_language(text: str, offered: Sequence[str] | None) -> str | None:
    """The site's tag for the language `text` names, as `subscribers add --language` picks
    it: "TH" and "th-TH" are "th" when the site offers "th" (best_match). None for an empty
    text: the site's first language. Without `offered`, any well-formed tag, spelled the
    usual way. UnknownLanguage for anything else, naming the choices.

    One tag only: unlike a browser's Accept-Language, "th;q=0.5" or "en,th" is not a tag."""
    if not text.strip():
        return None
    tag = language_tag(text)
    choices = f"; choose from: {', '.join(offered)}" if offered else ""
    if tag is None:
        raise UnknownLanguage(f"not a language tag {text!r}{choices}")
    if offered is None:
        return tag
    found = best_match(tag, offered)
    if found is None:
        raise UnknownLanguage(f"unknown language {text!r}{choices} ([site] languages)")
    return found
