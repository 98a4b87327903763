"""Value types of config keys: durations, sizes, cron expressions, slugs, URLs, addresses.

Each parser raises ValueError with a message written for an admin; the loader prefixes it
with the file name and the key path.
"""

from __future__ import annotations

import ipaddress
import math
import re
import string
import unicodedata
from datetime import timedelta
from email.utils import getaddresses, parseaddr
from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field

_DURATION_PART = re.compile(r"(\d+)\s*([smhdw])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
}
# Longer than anything a schedule, a cache or a retry needs, and far from timedelta's limit.
MAX_DURATION = timedelta(days=365)
MAX_SECONDS = 3600.0  # a timeout: an hour for one fetch or one SMTP reply is already lenient
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
URL_TEMPLATE_FIELDS = frozenset({"slug", "id", "source", "year", "month"})


def parse_duration(value: object) -> timedelta:
    """'30m', '1h30m', '90s', '1d' or a number of seconds -> timedelta (1 s to 365 days)."""
    if isinstance(value, timedelta):
        return value
    seconds: int | float
    if isinstance(value, bool):
        raise ValueError(f'not a duration: {value!r} (use e.g. "30m", "1h", "1d")')
    if isinstance(value, int | float):
        seconds = value
    elif isinstance(value, str):
        text = value.strip().lower()
        parts = _DURATION_PART.findall(text)
        if not parts or _DURATION_PART.sub("", text).strip():
            raise ValueError(f'not a duration: {value!r} (use e.g. "30m", "1h", "1d")')
        seconds = sum(int(n) * _DURATION_UNITS[unit] for n, unit in parts)
    else:
        raise ValueError(f'not a duration: {value!r} (use e.g. "30m", "1h", "1d")')
    if math.isnan(seconds):
        raise ValueError(f'not a duration: {value!r} (use e.g. "30m", "1h", "1d")')
    if seconds < 1:
        raise ValueError(f"duration must be at least 1 second, got {value!r}")
    if seconds > MAX_DURATION.total_seconds():  # inf too; compared before timedelta overflows
        raise ValueError(f"duration must be at most {MAX_DURATION.days} days, got {value!r}")
    return timedelta(seconds=seconds)


def format_duration(delay: timedelta) -> str:
    """A duration as the config writes it: timedelta(minutes=90) -> '1h30m'."""
    seconds = int(delay.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def parse_size(value: object) -> int:
    """'10MB', '512KiB', '1048576' or an int -> bytes."""
    if isinstance(value, bool):
        raise ValueError(f'not a size: {value!r} (use e.g. "10MB")')
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        unit = (match.group(2) or "").lower().removesuffix("b")
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    else:
        raise ValueError(f'not a size: {value!r} (use e.g. "10MB")')
    if size <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    return size


def check_cron(value: object) -> str:
    """A five-field crontab expression (days of the week the crontab way: 0 or 7 is Sunday)."""
    from syndicate.cron import NeverFires, cron_trigger

    if not isinstance(value, str):
        raise ValueError(f"not a cron expression: {value!r}")
    try:
        cron_trigger(value, timezone="UTC")
    except NeverFires as error:
        raise ValueError(f'"{value}" never fires ({error})') from None
    except ValueError as error:
        raise ValueError(f'invalid cron expression "{value}" ({error})') from None
    return value


def check_timezone(value: object) -> str:
    """An IANA zone name such as "Europe/Berlin"."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a time zone: {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'unknown time zone "{value}" (use an IANA name like "Europe/Berlin")'
        ) from None
    return value


def check_slug(value: object) -> str:
    if not isinstance(value, str) or not SLUG.match(value):
        raise ValueError(
            f"{value!r} is not a slug (lower-case letters, digits, - and _; at most 64 characters)"
        )
    return value


def check_http_url(value: object) -> str:
    """An absolute http(s) URL; a trailing slash is dropped so URLs join predictably."""
    if not isinstance(value, str) or not is_http_url(value):
        raise ValueError(f"not an http(s) URL: {value!r}")
    return value.rstrip("/")


def is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: in a header
# they would end the line or start another.
_HEADER_BREAKING = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_address(value: object) -> str:
    """An email address, optionally with a display name: 'News <news@example.org>'."""
    if not isinstance(value, str) or _HEADER_BREAKING.search(value):
        raise ValueError(f"not an email address: {value!r}")
    if "=?" in value:
        # Admins can write any name as plain Unicode; an encoded-word can hide a line break
        # or another address from this check ("=?utf-8?q?News=0D=0ABcc:...?= <...>").
        raise ValueError(
            f"write the name as plain text, not as an RFC 2047 encoded-word: {value!r}"
        )
    addresses = getaddresses([value])
    if len(addresses) != 1:
        raise ValueError(f"not one email address: {value!r}")
    local, _, domain = addresses[0][1].rpartition("@")
    if not local or "." not in domain:
        raise ValueError(f"not an email address: {value!r}")
    return value


CATEGORY_MAX_LENGTH = 100
# Unicode categories that must not be in a category name: controls (Cc), format characters
# such as bidi overrides (Cf), and the line and paragraph separators (Zl, Zp). A name ends up
# on pages, in feed titles, in emails and in a terminal.
_UNPRINTABLE = ("Cc", "Cf", "Zl", "Zp")


def check_category(value: object) -> str:
    """A category name or a tag, stripped: some text, printable, at most 100 characters."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not a category name: {value!r}")
    name = value.strip()
    if len(name) > CATEGORY_MAX_LENGTH:
        raise ValueError(f"a category name is at most {CATEGORY_MAX_LENGTH} characters")
    if any(unicodedata.category(char) in _UNPRINTABLE for char in name):
        raise ValueError(f"a category name cannot contain control characters: {value!r}")
    return name


def check_env_name(value: object) -> str:
    """The name of an environment variable (the secret itself never goes in the file)."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError(f"not an environment variable name: {value!r}")
    return value


def check_url_template(value: object) -> str:
    """A forum URL template using only the known placeholders."""
    if not isinstance(value, str):
        raise ValueError(f"not a URL template: {value!r}")
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as error:
        raise ValueError(f"malformed URL template {value!r} ({error})") from None
    unknown = sorted(fields - URL_TEMPLATE_FIELDS)
    if unknown:
        known = ", ".join(f"{{{name}}}" for name in sorted(URL_TEMPLATE_FIELDS))
        raise ValueError(f"unknown placeholder {{{unknown[0]}}} in URL template (known: {known})")
    if not is_http_url(value.split("{", 1)[0] + "x"):
        raise ValueError(f"URL template must start with http:// or https://: {value!r}")
    return value


def parse_network(value: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An IP network ("10.0.0.0/8", "fd00::/8") or one address ("192.0.2.7", a /32)."""
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    if not isinstance(value, str):
        raise ValueError(f'not an IP network: {value!r} (use e.g. "10.0.0.0/8" or "192.0.2.7")')
    try:
        return ipaddress.ip_network(value.strip())
    except ValueError as error:
        # "10.0.0.1/8" has host bits set: refused rather than silently widened or narrowed.
        raise ValueError(f"not an IP network: {value!r} ({error})") from None


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
# A timeout in seconds: finite, above 0, at most MAX_SECONDS (inf would pass `gt=0`).
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
Size = Annotated[int, BeforeValidator(parse_size)]
Cron = Annotated[str, BeforeValidator(check_cron)]
TimeZoneName = Annotated[str, BeforeValidator(check_timezone)]
Slug = Annotated[str, BeforeValidator(check_slug)]
HttpUrl = Annotated[str, BeforeValidator(check_http_url)]
Address = Annotated[str, BeforeValidator(check_address)]

# The longest local part of an address a token is added to (syndicate/verp.py): the token
# adds at most 40 characters after a "+", and a local part holds 64 (RFC 5321).
MAX_VERP_LOCAL = 24
_VERP_LOCAL = re.compile(r"[a-z0-9._-]+")


def verp_parts(value: object) -> tuple[str, str]:
    """(local part, domain) of an address a signed token is added to ("+<token>"), written
    bare or with a name; ValueError saying what is wrong."""
    address = parseaddr(check_address(value))[1]
    local, _, domain = address.rpartition("@")
    if not address.isascii():
        raise ValueError(f"not an ASCII address: {value!r}")
    if "+" in local or len(local) > MAX_VERP_LOCAL or not _VERP_LOCAL.fullmatch(local):
        raise ValueError(
            f"the part before @ must be at most {MAX_VERP_LOCAL} lower-case letters, digits, "
            f"'.', '-' or '_', without '+' (a token is added after a '+'): {value!r}"
        )
    return local, domain.lower()


def check_verp_address(value: object) -> str:
    verp_parts(value)
    assert isinstance(value, str)
    return value


VerpAddress = Annotated[str, BeforeValidator(check_verp_address)]
EnvName = Annotated[str, BeforeValidator(check_env_name)]
CategoryName = Annotated[str, BeforeValidator(check_category)]
UrlTemplate = Annotated[str, BeforeValidator(check_url_template)]
IpNetwork = Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network, BeforeValidator(parse_network)]


def check_language(value: object) -> str:
    """A BCP 47 language tag ("en", "th", "pt-BR"), written the usual way."""
    from syndicate.languages import language_tag

    tag = language_tag(value)
    if tag is None:
        raise ValueError(f'not a language tag: {value!r} (use e.g. "en", "th" or "pt-BR")')
    return tag


LanguageTag = Annotated[str, BeforeValidator(check_language)]
