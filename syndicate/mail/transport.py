"""What every mail transport is, and which one the config asks for.

    transport = open_transport(settings)
    try:
        await transport.send(raw_message, envelope_from, envelope_to)
    except TransportUnavailable: ...     # nothing can be sent now: stop, blame no address
    except TransientDeliveryError: ...   # try again later (4xx, timeout, dropped connection)
    except PermanentDeliveryError: ...   # the server refused for good (5xx)
    finally:
        await transport.close()

A transport may be called by many tasks at once; it decides itself how many messages are
really in flight (the SMTP pool's size) and how fast they go (its rate limit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from syndicate.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    TransportUnavailable,
)

if TYPE_CHECKING:
    from syndicate.config import Settings

__all__ = [
    "DeliveryError",
    "PermanentDeliveryError",
    "TransientDeliveryError",
    "Transport",
    "TransportUnavailable",
    "open_transport",
]


class Transport(Protocol):
    async def send(self, message: bytes, envelope_from: str, envelope_to: str) -> None:
        """Hand one message over; raise a DeliveryError subclass when that fails."""
        ...

    async def accepts_8bit(self) -> bool:
        """Whether bodies may be sent as 8bit (RFC 6152) rather than quoted-printable."""
        ...

    async def close(self) -> None:
        """Finish what is in flight and release connections."""
        ...


def open_transport(settings: Settings) -> Transport:
    """The transport `[mail] transport` names, set up from its section."""
    if settings.mail.transport == "smtp":
        from syndicate.config import secret
        from syndicate.mail.smtp import SmtpTransport

        smtp = settings.mail.smtp
        return SmtpTransport(smtp, password=secret(smtp.password_env))
    from syndicate.mail.outbox import OutboxTransport

    return OutboxTransport(settings.outbox_dir)
