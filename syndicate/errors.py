"""The exception tree. Code raises domain errors; only the edges translate them.

    SyndicateError                 anything syndicate itself reports
    ├── ConfigError                the config file is missing, unreadable or invalid (exit 2)
    ├── StoreError                 the database cannot be reached or migrated (exit 1)
    ├── PublishError               a published file cannot be written: a full or read-only
    │                              disk, a folder that is a file (exit 1)
    ├── SourceError                one source could not be fetched or parsed; the rest go on
    │   └── FetchError             the download failed: network, HTTP status, size or time
    ├── TemplateError              a template has an error: "file:line: reason" (exit 2)
    ├── DeliveryError              one message could not be handed to the mail transport
    │   ├── TransientDeliveryError 4xx, timeout, dropped connection: defer and retry
    │   │   └── TransportUnavailable  nothing can be sent now (cannot connect, TLS, AUTH,
    │   │                             sender refused): stop the run, blame no address
    │   └── PermanentDeliveryError 5xx: the server refused this message for good
    └── UsageError                 a command named something that does not exist (exit 2)

The CLI prints ``str(error)`` as one line (one line per problem for ConfigError) and exits
with ``error.exit_code``; the worker logs it and carries on.
"""

from __future__ import annotations

from datetime import timedelta


class SyndicateError(Exception):
    """Base class: an error meant for the user, with a message that needs no traceback."""

    exit_code = 1


class ConfigError(SyndicateError):
    """The configuration cannot be used. ``problems`` holds one line per bad key."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class StoreError(SyndicateError):
    """The database cannot be opened, migrated or queried."""


class PublishError(SyndicateError):
    """A file in [publish] dir cannot be written or removed; the message names it and the
    operating system's reason."""


class SourceError(SyndicateError):
    """One source failed (fetch, size, parse). ``source`` names it."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        super().__init__(f"{source}: {message}")


class FetchError(SourceError):
    """A source could not be downloaded. The message is one line and names the cause.

    ``status`` is the HTTP status when the server answered (None for network errors and
    limits); ``retry_after`` is how long the server asked us to wait (429, 503); ``gone`` is
    True for 410, the server saying the feed was removed for good.
    """

    def __init__(
        self,
        source: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: timedelta | None = None,
        gone: bool = False,
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        self.gone = gone
        super().__init__(source, message)


class TemplateError(SyndicateError):
    """A template admins edit cannot be loaded or rendered; the message names file and line."""

    exit_code = 2


class DeliveryError(SyndicateError):
    """One message could not be delivered. ``code`` is the SMTP reply code, if any."""

    permanent = False

    def __init__(self, message: str, *, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class TransientDeliveryError(DeliveryError):
    """Worth trying again later: a 4xx reply, a timeout, a refused or dropped connection."""


class TransportUnavailable(TransientDeliveryError):
    """The transport cannot deliver anything right now: the server cannot be reached, TLS or
    AUTH fails, or it refuses the sender. Not the recipient's fault, so a sending run stops
    (and releases its work untried) rather than failing every delivery in turn."""


class PermanentDeliveryError(DeliveryError):
    """The server refused this message for good (5xx); retrying will not help."""

    permanent = True


class UsageError(SyndicateError):
    """The command was asked for something that does not exist (a source name, a month)."""

    exit_code = 2
