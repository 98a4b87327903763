"""Who may see /admin: the password check, the session cookie and the lock-out.

    gate = AdminGate.open(settings, signing_secret, clock)   # None: the dashboard is off
    wait = gate.locked_out(client)        # None, or seconds until logins are heard again
    if await gate.verify(password): cookie = gate.new_session()
    gate.session_valid(request.cookies.get(SESSION_COOKIE))

The password is only ever compared with the hash in the variable `[web]
admin_password_env` names (syndicate/passwords.py), in a thread: argon2 is slow on purpose.

The session is a signed, dated cookie (itsdangerous, the app's signing secret and clock,
a salt of its own so it can never pass for a form's CSRF token or an email link's), valid
for SESSION_LIFETIME. It carries a tag of the password hash, so changing the password (a
new hash in the variable, then a restart) ends every session signed before. Logging out
deletes the cookie; being stateless, a copy taken before would still work until it
expires, which is why it lives only 12 hours and is sent only to /admin, over HTTPS, never
to scripts (HttpOnly) nor with requests from other sites (SameSite=Strict).

Lock-out: CLIENT_LIMIT failed logins from one client address within FAILURE_WINDOW lock that
address out for LOCKOUT; EVERYONE_LIMIT failures from all addresses together lock out every
login for LOCKOUT (a guesser with many addresses). While locked, a login is refused (429)
without its password being checked, the right one included: a lock-out that let the right
password through would tell a guesser when they had found it. The counts are kept in
memory per process, like the subscribe form's rate limit (ratelimit.py), and a success
clears that client's count.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer

from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.passwords import admin_password, verify_password
from syndicate.tokens import clocked_serializer

log = logging.getLogger(__name__)

SESSION_COOKIE = "syndicate_admin"
SESSION_SALT = "syndicate-admin-session"
SESSION_LIFETIME = timedelta(hours=12)
COOKIE_PATH = "/admin"

CLIENT_LIMIT = 5
EVERYONE_LIMIT = 50
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
# Password checks running at once; more wait their turn. argon2's defaults take 64 MiB and
# tens of milliseconds each: without a cap, a burst of parallel logins (counted as failures
# only once checked) could take a thread and 64 MiB each from the default executor.
CHECKS_AT_ONCE = 2
# Past this many client addresses remembered, the least recently failing are forgotten, so
# a flood of addresses cannot grow the process without bound (everyone's count still holds).
MAX_CLIENTS = 10_000


@dataclass
class FailedLogins:
    """Failures per key within `window`; `limit` of them lock the key for `lockout`."""

    limit: int
    window: timedelta
    lockout: timedelta
    clock: Clock
    _failures: OrderedDict[str, deque[datetime]] = field(default_factory=OrderedDict)
    _locked_until: dict[str, datetime] = field(default_factory=dict)

    def locked(self, key: str) -> int | None:
        """Whole seconds until `key` may try again; None when it may now."""
        until = self._locked_until.get(key)
        if until is None:
            return None
        left = (until - self.clock.now()).total_seconds()
        if left <= 0:
            del self._locked_until[key]
            self._failures.pop(key, None)
            return None
        return max(1, math.ceil(left))

    def failed(self, key: str) -> bool:
        """Count a failure; True when it locked `key`."""
        now = self.clock.now()
        failures = self._failures.pop(key, None) or deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        failures.append(now)
        self._failures[key] = failures  # last: the most recently seen
        while len(self._failures) > MAX_CLIENTS:
            self._failures.popitem(last=False)
        if len(failures) >= self.limit:
            self._locked_until[key] = now + self.lockout
            return True
        return False

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)


EVERYONE = "*"  # the key of the count over all clients


class AdminGate:
    def __init__(self, password_hash: str, signing_secret: str, clock: Clock) -> None:
        self._hash = password_hash
        self._sessions: URLSafeTimedSerializer = clocked_serializer(
            signing_secret, SESSION_SALT, clock
        )
        # Names the password a session was opened with, without revealing anything of it.
        self._password_tag = hmac.new(
            signing_secret.encode(), b"syndicate-admin\0" + password_hash.encode(), hashlib.sha256
        ).hexdigest()[:24]
        self.clients = FailedLogins(CLIENT_LIMIT, FAILURE_WINDOW, LOCKOUT, clock)
        self.everyone = FailedLogins(EVERYONE_LIMIT, FAILURE_WINDOW, LOCKOUT, clock)
        self._checking = asyncio.Semaphore(CHECKS_AT_ONCE)

    @classmethod
    def open(cls, settings: Settings, signing_secret: str, clock: Clock) -> AdminGate | None:
        """The gate for the hash in [web] admin_password_env; None (logged when it is
        because of a mistake) when the dashboard is off."""
        password = admin_password(settings)
        if password.problem:
            log.error("the /admin dashboard is off: %s", password.problem)
        if password.hash is None:
            return None
        return cls(password.hash, signing_secret, clock)

    async def verify(self, password: str) -> bool:
        # In a thread: tens of milliseconds of CPU and 64 MiB (argon2's defaults).
        async with self._checking:
            return await asyncio.to_thread(verify_password, self._hash, password)

    def new_session(self) -> str:
        return self._sessions.dumps({"password": self._password_tag})

    def session_valid(self, cookie: str | None) -> bool:
        if not cookie:
            return False
        try:
            value = self._sessions.loads(cookie, max_age=int(SESSION_LIFETIME.total_seconds()))
        except BadSignature:  # SignatureExpired included
            return False
        tag = value.get("password") if isinstance(value, dict) else None
        return isinstance(tag, str) and hmac.compare_digest(tag, self._password_tag)

    def locked_out(self, client: str) -> int | None:
        """Seconds until a login from `client` is heard again; None when it is now."""
        waits = [w for w in (self.clients.locked(client), self.everyone.locked(EVERYONE)) if w]
        return max(waits) if waits else None

    def failed(self, client: str) -> None:
        if self.clients.failed(client):
            log.warning(
                "admin: %d failed logins from %s: locked out for %s",
                CLIENT_LIMIT,
                client,
                LOCKOUT,
            )
        if self.everyone.failed(EVERYONE):
            log.warning(
                "admin: %d failed logins from all addresses within %s: every login locked "
                "out for %s",
                EVERYONE_LIMIT,
                FAILURE_WINDOW,
                LOCKOUT,
            )

    def succeeded(self, client: str) -> None:
        self.clients.forget(client)
