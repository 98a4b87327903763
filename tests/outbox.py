"""Reading the outbox transport's Maildir back, as a mail reader would."""

from __future__ import annotations

import email
import email.policy
import mailbox
from email.message import EmailMessage
from pathlib import Path


def outbox_messages(outbox: Path) -> list[EmailMessage]:
    """Every message in the Maildir at `outbox`, parsed; [] when it does not exist yet."""
    if not outbox.exists():
        return []
    maildir = mailbox.Maildir(outbox, factory=None, create=False)
    messages = []
    for key in sorted(maildir.iterkeys()):
        message = email.message_from_bytes(maildir.get_bytes(key), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages
