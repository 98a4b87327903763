"""Mail: building digest messages and handing them to a transport."""

from __future__ import annotations

from syndicate.mail.message import MessageFactory, message_id_for, site_domain
from syndicate.mail.outbox import OutboxTransport

__all__ = ["MessageFactory", "OutboxTransport", "message_id_for", "site_domain"]
