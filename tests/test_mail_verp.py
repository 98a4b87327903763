"""The addresses that bring mail back to a subscriber (syndicate.mail.verp): the VERP return
path of each copy and the unsubscribe mailbox of List-Unsubscribe's mailto.

Copies go through the real outbox (a Maildir read back with `email`) and through a real SMTP
server (aiosmtpd on 127.0.0.1), whose MAIL FROM is what a bounce will come back to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from outbox import outbox_messages
from smtpserver import SmtpServer
from test_mail_send import NOW, issue_of, prepared, subscribe

from syndicate.clock import FrozenClock
from syndicate.config import load_settings
from syndicate.errors import ConfigError
from syndicate.mail.outbox import OutboxTransport
from syndicate.mail.send import IssueSender
from syndicate.mail.verp import VerpAddresses
from syndicate.tokens import signing_secret

RETURN_PATH = "bounces@riverside-commons.example"
MAILBOX = "unsubscribe@riverside-commons.example"
MAIL_KEYS = f'return_path = "{RETURN_PATH}"\nunsubscribe_mailbox = "{MAILBOX}"\n'


@dataclass(frozen=True)
class Person:
    id: int
    email: str


ANN = Person(42, "ann@example.org")


def with_mail_keys(text: str, keys: str = MAIL_KEYS) -> str:
    return text.replace("[mail]\n", f"[mail]\n{keys}", 1)


async def test_each_copy_carries_its_own_return_path_and_unsubscribe_mailbox(
    project: Path, database_url: str
) -> None:
    config = project / "config.toml"
    config.write_text(with_mail_keys(config.read_text()))
    settings, store = await prepared(project, database_url)
    async with store:
        ann = await subscribe(store, "ann@example.org", name="Ann")
        bob = await subscribe(store, "bob@example.org")
        issue = await issue_of(settings, store)
        clock = FrozenClock(NOW)
        await IssueSender(settings, store, clock, issue, OutboxTransport(settings.outbox_dir)).run()
        verp = VerpAddresses(signing_secret(settings))
        by_address = {
            m["To"].addresses[0].addr_spec: m for m in outbox_messages(settings.outbox_dir)
        }
        assert set(by_address) == {"ann@example.org", "bob@example.org"}
        for address, subscriber_id in (("ann@example.org", ann), ("bob@example.org", bob)):
            message = by_address[address]
            owner = Person(subscriber_id, address)
            return_path = message["Return-Path"].strip("<>")
            assert return_path == verp.return_path(RETURN_PATH, issue.id, owner)
            claim = verp.read(RETURN_PATH, return_path)
            assert claim is not None and (claim.purpose, claim.number) == ("bounce", issue.id)
            assert verp.belongs_to(claim, owner, NOW)
            # The other subscriber's token is no use for this one.
            other = Person(ann if subscriber_id == bob else bob, address)
            assert not verp.belongs_to(claim, other, NOW)
            # The header From stays the configured sender.
            assert message["From"].addresses[0].addr_spec == "newsletter@riverside-commons.example"
            https, mailto = (part.strip(" <>") for part in message["List-Unsubscribe"].split(","))
            assert "/unsubscribe/" in https
            address_part, _, query = mailto.removeprefix("mailto:").partition("?")
            assert query == "subject=unsubscribe"
            unsubscribe = verp.read(MAILBOX, address_part)
            assert unsubscribe is not None and unsubscribe.purpose == "unsubscribe"
            assert verp.belongs_to(unsubscribe, owner, NOW)
            # A bounce token does not unsubscribe, nor the reverse: the purposes differ.
            assert verp.read(MAILBOX, return_path) is None


async def test_smtp_mail_from_is_the_return_path(
    project: Path, database_url: str, smtp_server: SmtpServer
) -> None:
    config = project / "config.toml"
    config.write_text(with_mail_keys(config.read_text()))
    settings, store = await prepared(project, database_url)
    async with store:
        ann = await subscribe(store, "ann@example.org")
        issue = await issue_of(settings, store)
        async with smtp_server.transport(pool=1) as transport:
            report = await IssueSender(settings, store, FrozenClock(NOW), issue, transport).run()
        assert report.counts.sent == 1
        [received] = smtp_server.messages
        verp = VerpAddresses(signing_secret(settings))
        assert received.envelope_from == verp.return_path(
            RETURN_PATH, issue.id, Person(ann, "ann@example.org")
        )
        assert received.rcpt_tos == ("ann@example.org",)


def test_tokens_are_short_case_free_and_tamper_evident() -> None:
    verp = VerpAddresses("a secret")
    address = verp.return_path(RETURN_PATH, 7, ANN)
    local = address.partition("@")[0]
    assert len(local) <= 64 and local == local.lower()
    # A server that upper-cases the local part, or the domain, changes nothing.
    claim = verp.read(RETURN_PATH, address.upper())
    assert claim is not None and verp.belongs_to(claim, ANN, NOW)
    # One character changed, another id, another issue, another secret: nobody.
    mac = claim.mac
    tampered = address.replace(mac, ("a" if mac[0] != "a" else "b") + mac[1:])
    forged = verp.read(RETURN_PATH, tampered)
    assert forged is not None and not verp.belongs_to(forged, ANN, NOW)
    moved = verp.read(RETURN_PATH, address.replace("b7-", "b8-"))
    assert moved is not None and not verp.belongs_to(moved, ANN, NOW)
    assert not verp.belongs_to(claim, Person(43, ANN.email), NOW)
    assert not verp.belongs_to(claim, Person(42, "eve@example.org"), NOW)
    other = VerpAddresses("another secret")
    assert not other.belongs_to(claim, ANN, NOW)
    # Not ours: another mailbox, another domain, no token, garbage.
    for stranger in (
        "bounces@riverside-commons.example",
        address.replace("bounces+", "news+"),
        address.replace("riverside-commons.example", "evil.example"),
        "bounces+b7-42-@riverside-commons.example",
        "bounces+b7-42-" + "!" * 16 + "@riverside-commons.example",
        "",
        "@",
    ):
        assert verp.read(RETURN_PATH, stranger) is None


def test_unsubscribe_addresses_expire_like_unsubscribe_links() -> None:
    verp = VerpAddresses("a secret")
    address = verp.unsubscribe(MAILBOX, ANN, NOW)
    claim = verp.read(MAILBOX, address)
    assert claim is not None
    assert verp.belongs_to(claim, ANN, NOW + timedelta(days=399))
    assert not verp.belongs_to(claim, ANN, NOW + timedelta(days=401))
    # One made "in the future" (a clock far ahead, or a forged day) is refused.
    assert not verp.belongs_to(claim, ANN, NOW - timedelta(days=3))


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("bounces+x@example.org", "without '+'"),
        ("a-very-long-bounce-mailbox-name@example.org", "at most 24"),
        ("Bounces@example.org", "lower-case"),
        ("bounçes@example.org", "ASCII"),
        ("bounces@example.org\r\nBcc: x@evil.example", "not an email address"),
        ("not an address", "not an email address"),
    ],
)
def test_the_config_refuses_an_address_a_token_cannot_be_added_to(
    project: Path, value: str, says: str
) -> None:
    config = project / "config.toml"
    config.write_text(with_mail_keys(config.read_text(), f"return_path = {json.dumps(value)}\n"))
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    message = str(raised.value)
    assert "mail.return_path" in message and says in message


def test_a_named_address_is_accepted(project: Path) -> None:
    config = project / "config.toml"
    config.write_text(with_mail_keys(config.read_text(), 'return_path = "Bounces <b@x.example>"\n'))
    settings = load_settings(config)
    address = VerpAddresses("s").return_path(settings.mail.return_path or "", 1, ANN)
    assert address.startswith("b+b1-42-") and address.endswith("@x.example")
