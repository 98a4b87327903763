"""The /admin dashboard's password: stored only as a hash, in an environment variable.

    hashed = hash_password("correct horse")            # `syndicate admin hash-password`
    admin = admin_password(settings)                   # from [web] admin_password_env
    if admin.hash and verify_password(admin.hash, typed): ...

Two hash formats are recognised, so a plain password in the variable never works (it is
refused, and the dashboard stays off):

- **argon2** in its PHC string form, `$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>` (also
  argon2i and argon2d), as argon2-cffi, libsodium and the `argon2` command write it. This is
  what `syndicate admin hash-password` prints.
- **scrypt** in werkzeug's form, `scrypt:<N>:<r>:<p>$<salt>$<hex digest>`: the digest is
  `hashlib.scrypt(password, salt=<salt as UTF-8>, n=N, r=r, p=p, dklen=64).hex()`, so a
  host without syndicate can make one with Python alone (or werkzeug's
  `generate_password_hash(password, "scrypt")`).

Checking a password is slow on purpose (tens of milliseconds and 64 MiB for argon2's
defaults): the web app runs it in a thread.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from syndicate.config import Settings, secret

# werkzeug's scrypt form; the limits keep a mistyped hash from asking for gigabytes.
_SCRYPT = re.compile(r"scrypt:(\d{1,8}):(\d{1,3}):(\d{1,3})\$([^$]{1,256})\$([0-9a-f]{32,256})")
_SCRYPT_MAX_N = 2**20
_SCRYPT_MAX_MEMORY = 1024 * 1024 * 1024
_ARGON2_PREFIXES = ("$argon2id$", "$argon2i$", "$argon2d$")


class NotAHash(ValueError):
    """The value is not a hash in a recognised format (most likely a plain password)."""


def hash_password(password: str) -> str:
    """An argon2id hash of `password` with argon2-cffi's current recommended parameters."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def check_hash(value: str) -> str:
    """`value` stripped, when it is a hash this module can verify; NotAHash otherwise. The
    message never quotes the value: it may be a password."""
    value = value.strip()
    if value.startswith(_ARGON2_PREFIXES):
        from argon2 import extract_parameters
        from argon2.exceptions import InvalidHashError

        try:
            extract_parameters(value)
        except (InvalidHashError, ValueError):
            raise NotAHash("an argon2 hash that cannot be read (cut short when copied?)") from None
        return value
    scrypt = _SCRYPT.fullmatch(value)
    if scrypt:
        n, r, p = (int(part) for part in scrypt.group(1, 2, 3))
        if n < 2 or n & (n - 1) or n > _SCRYPT_MAX_N or not 1 <= r <= 64 or not 1 <= p <= 16:
            raise NotAHash("a scrypt hash with parameters out of range (N a power of 2 to 2^20)")
        if 128 * r * n > _SCRYPT_MAX_MEMORY:
            raise NotAHash("a scrypt hash that needs more than 1 GiB to check")
        return value
    raise NotAHash(
        "not an argon2 ($argon2id$...) or scrypt (scrypt:N:r:p$salt$hex) hash; "
        "a plain password is never accepted"
    )


def verify_password(hashed: str, password: str) -> bool:
    """Whether `password` matches `hashed`; False for anything check_hash refuses. Slow by
    design."""
    try:
        hashed = check_hash(hashed)
    except NotAHash:
        return False
    if hashed.startswith(_ARGON2_PREFIXES):
        from argon2 import PasswordHasher
        from argon2.exceptions import VerificationError, VerifyMismatchError

        try:
            return PasswordHasher().verify(hashed, password)
        except (VerifyMismatchError, VerificationError):
            return False
    scrypt = _SCRYPT.fullmatch(hashed)
    if scrypt is None:
        return False
    n, r, p = (int(part) for part in scrypt.group(1, 2, 3))
    salt, expected = scrypt.group(4), bytes.fromhex(scrypt.group(5))
    derived = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt.encode("utf-8"),
        n=n,
        r=r,
        p=p,
        maxmem=128 * r * (n + p + 2) + 1024 * 1024,
        dklen=len(expected),
    )
    return hmac.compare_digest(derived, expected)


@dataclass(frozen=True, slots=True)
class AdminPassword:
    """What [web] admin_password_env gives: a hash (the dashboard is on), or why not."""

    hash: str | None = None
    problem: str | None = None  # set when the setting is there but unusable

    @property
    def configured(self) -> bool:
        return self.hash is not None or self.problem is not None


def admin_password(settings: Settings) -> AdminPassword:
    """The dashboard's password hash from the environment, checked (see the docstring)."""
    name = settings.web.admin_password_env
    if not name:
        return AdminPassword()
    value = secret(name)
    if value is None:
        return AdminPassword(
            problem=f"web.admin_password_env: environment variable {name} is not set"
        )
    try:
        return AdminPassword(hash=check_hash(value))
    except NotAHash as error:
        return AdminPassword(
            problem=f"web.admin_password_env: {name} holds {error} "
            "(make one with `syndicate admin hash-password`)"
        )
