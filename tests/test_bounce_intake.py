"""Returning mail matched to subscribers and acted on (syndicate.bounces.intake), on SQLite
and PostgreSQL, with the bounce fixtures of tests/fixtures/bounces readdressed to copies
that were really sent (through the outbox) to real subscribers.

The fixtures carry placeholder return paths (bounces+7-42-abcdefghijklmnop@example.org) and
Message-IDs (<digest-7-42@example.org>); `readdressed` puts in the ones a send produced, or
leaves the placeholders, which are tokens that do not check out.
"""

from __future__ import annotations

import hashlib
import logging
import mailbox
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_mail_send import NOW, issue_of, prepared, subscribe
from test_mail_verp import with_mail_keys

from syndicate.bounces.intake import Intake
from syndicate.bounces.reports import read_report
from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.mail.message import message_id_for, site_domain
from syndicate.mail.outbox import OutboxTransport
from syndicate.mail.send import IssueSender
from syndicate.mail.verp import VerpAddresses
from syndicate.models import DigestIssue
from syndicate.statuses import InboundOutcome, SubscriberStatus
from syndicate.store import Store
from syndicate.tokens import signing_secret

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
RETURN_PATH = "bounces@example.org"
MAILBOX = "unsubscribe@example.org"
VERP_KEYS = f'return_path = "{RETURN_PATH}"\nunsubscribe_mailbox = "{MAILBOX}"\n'
_PLACEHOLDER_RETURN_PATH = re.compile(rb"bounces\+7-\d+-[a-z]{16}@example\.org")
_PLACEHOLDER_MAILBOX = re.compile(rb"unsubscribe\+[a-z0-9-]+@example\.org")
_PLACEHOLDER_ID = re.compile(rb"<digest-7-\d+@example\.org>")
BOUNCES = {  # fixture: what it reports
    "postfix-550-user-unknown.eml": "hard",
    "exchange-ndr.eml": "hard",
    "gmail-550-nosuchuser.eml": "hard",
    "exim-plaintext.eml": "hard",
    "postfix-mailbox-full-452.eml": "soft",
    "greylist-451.eml": "soft",
    "arf-complaint.eml": "complaint",
}
LATER = NOW.replace(day=5)


@dataclass
class World:
    settings: Settings
    store: Store
    issue: DigestIssue
    ids: dict[str, int]  # subscriber id by address
    verp: VerpAddresses

    def intake(self) -> Intake:
        return Intake(self.settings, self.store, FrozenClock(LATER))

    def readdressed(self, fixture: str, *, address: str | None = None) -> bytes:
        """`fixture` with the return path and Message-ID of `address`'s copy (default: the
        address it reports)."""
        raw = (FIXTURES / fixture).read_bytes()
        address = address or failed_address(fixture)
        owner = _Owner(self.ids[address], address)
        return_path = self.verp.return_path(RETURN_PATH, self.issue.id, owner)
        message_id = message_id_for(self.issue.id, owner.id, site_domain(self.settings.site.url))
        raw = _PLACEHOLDER_RETURN_PATH.sub(return_path.encode(), raw)
        return _PLACEHOLDER_ID.sub(message_id.encode(), raw)

    async def status(self, address: str) -> str:
        found = await self.store.subscriber_by_email(address)
        assert found is not None
        return found.status


@dataclass(frozen=True)
class _Owner:
    id: int
    email: str


def failed_address(fixture: str) -> str:
    report = read_report((FIXTURES / fixture).read_bytes())
    return report.failures[0].address


async def world(project: Path, database_url: str, keys: str = VERP_KEYS) -> World:
    """The bundled config's posts, a subscriber for each address the fixtures report (and
    Ann), and an issue sent to all of them through the outbox."""
    config = project / "config.toml"
    config.write_text(with_mail_keys(config.read_text(), keys))
    settings, store = await prepared(project, database_url)
    ids = {}
    for address in [*(failed_address(name) for name in BOUNCES), "ann@example.org"]:
        ids[address] = await subscribe(store, address)
    issue = await issue_of(settings, store)
    transport = OutboxTransport(settings.outbox_dir)
    report = await IssueSender(settings, store, FrozenClock(NOW), issue, transport).run()
    assert report.counts.sent == len(ids)
    return World(settings, store, issue, ids, VerpAddresses(signing_secret(settings)))


@pytest.mark.parametrize(("fixture", "kind"), sorted(BOUNCES.items()))
async def test_a_bounce_with_our_return_path_acts_on_its_subscriber(
    project: Path, database_url: str, fixture: str, kind: str
) -> None:
    w = await world(project, database_url)
    async with w.store:
        address = failed_address(fixture)
        processed = await w.intake().process(w.readdressed(fixture), "file")
        assert processed.outcome == InboundOutcome.APPLIED, processed.detail
        assert processed.kind == kind
        assert processed.subscriber_id == w.ids[address]
        assert "by its return path" in processed.detail
        expected = {
            "hard": SubscriberStatus.BOUNCED,  # [bounces] hard_limit is 1
            "soft": SubscriberStatus.ACTIVE,  # soft_limit is 3
            "complaint": SubscriberStatus.UNSUBSCRIBED,
        }[kind]
        assert await w.status(address) == expected
        [event] = await w.store.bounce_events_of(w.ids[address])
        assert (event.kind, event.issue_id, event.received_at) == (kind, w.issue.id, LATER)
        if kind != "complaint":
            assert re.fullmatch(r"[45]\.\d{1,3}\.\d{1,3}", event.status_code)
        if kind == "complaint":  # suppressed: the address cannot be added again
            assert await w.store.is_suppressed(hashlib.sha256(address.encode()).hexdigest())
        # Nobody else changed.
        assert await w.status("ann@example.org") == SubscriberStatus.ACTIVE


async def test_three_soft_bounces_in_the_window_mark_bounced(
    project: Path, database_url: str
) -> None:
    w = await world(project, database_url)
    async with w.store:
        address = failed_address("greylist-451.eml")
        raw = w.readdressed("greylist-451.eml")
        for n in range(3):  # three reports (different mails: each acts once)
            await w.intake().process(raw + f"\r\n{n}".encode(), "file")
        assert await w.status(address) == SubscriberStatus.BOUNCED


async def test_without_a_return_path_the_message_id_and_the_address_must_agree(
    project: Path, database_url: str
) -> None:
    w = await world(project, database_url, keys="")
    async with w.store:
        fixture = "postfix-550-user-unknown.eml"
        address = failed_address(fixture)
        # Ann's Message-ID with Jane's address reported: no evidence against either.
        crossed = w.readdressed(fixture, address="ann@example.org")
        processed = await w.intake().process(crossed, "file")
        assert processed.outcome == InboundOutcome.UNMATCHED
        assert "not subscriber" in processed.detail
        assert await w.status("ann@example.org") == SubscriberStatus.ACTIVE
        assert await w.status(address) == SubscriberStatus.ACTIVE
        # A copy we never sent (another issue number): nothing.
        unsent = w.readdressed(fixture).replace(
            f"<digest-{w.issue.id}-".encode(), f"<digest-{w.issue.id + 5}-".encode()
        )
        processed = await w.intake().process(unsent, "file")
        assert processed.outcome == InboundOutcome.UNMATCHED
        assert "never sent" in processed.detail
        # Jane's own copy, reporting Jane: bounced.
        processed = await w.intake().process(w.readdressed(fixture), "file")
        assert processed.outcome == InboundOutcome.APPLIED
        assert "by Message-ID" in processed.detail
        assert await w.status(address) == SubscriberStatus.BOUNCED


async def test_a_forged_return_path_changes_nobody(
    project: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    w = await world(project, database_url)
    async with w.store:
        fixture = "postfix-550-user-unknown.eml"
        address = failed_address(fixture)
        # The fixture as written: a token of the right shape whose signature is not ours.
        raw = (FIXTURES / fixture).read_bytes()
        raw = raw.replace(b"bounces+7-42-", f"bounces+b{w.issue.id}-{w.ids[address]}-".encode())
        with caplog.at_level(logging.INFO, logger="syndicate.bounces.intake"):
            processed = await w.intake().process(raw, "file")
        assert processed.outcome == InboundOutcome.FORGED
        assert await w.status(address) == SubscriberStatus.ACTIVE
        assert await w.store.bounce_events_of(w.ids[address]) == []
        [line] = [
            r
            for r in caplog.records
            if r.name == "syndicate.bounces.intake" and r.levelno == logging.WARNING
        ]
        assert "does not check out" in line.getMessage()
        assert await w.store.inbound_counts() == {"forged": 1}


async def test_a_bounce_for_an_unknown_address_without_evidence_is_unmatched(
    project: Path, database_url: str
) -> None:
    w = await world(project, database_url)
    async with w.store:
        raw = (FIXTURES / "postfix-550-user-unknown.eml").read_bytes()
        raw = _PLACEHOLDER_RETURN_PATH.sub(b"bounces@example.org", raw)
        processed = await w.intake().process(raw, "file")
        assert processed.outcome == InboundOutcome.UNMATCHED
        assert "no token or Message-ID of ours" in processed.detail
        # The stored detail keeps no address.
        assert await w.store.inbound_counts() == {"unmatched": 1}


@pytest.mark.parametrize(
    ("fixture", "why"),
    [("out-of-office.eml", "auto-reply"), ("delivered-notice.eml", "delivery notice")],
)
async def test_auto_replies_and_success_notices_are_ignored(
    project: Path, database_url: str, fixture: str, why: str
) -> None:
    w = await world(project, database_url)
    async with w.store:
        processed = await w.intake().process(
            w.readdressed(fixture, address="ann@example.org"), "file"
        )
        assert processed.outcome == InboundOutcome.IGNORED
        assert why in processed.detail
        assert await w.status("ann@example.org") == SubscriberStatus.ACTIVE


async def test_unreadable_mail_is_kept_and_counted(project: Path, database_url: str) -> None:
    w = await world(project, database_url)
    async with w.store:
        raw = (FIXTURES / "broken-mime.eml").read_bytes()
        processed = await w.intake().process(raw, "file")
        assert processed.outcome == InboundOutcome.UNREADABLE
        kept = mailbox.Maildir(w.settings.bounces_keep_dir, create=False)
        assert [kept.get_bytes(key) for key in kept.iterkeys()] == [raw]
        assert await w.store.inbound_counts() == {"unreadable": 1}


async def test_mail_to_an_unsubscribe_address_unsubscribes_that_subscriber(
    project: Path, database_url: str
) -> None:
    w = await world(project, database_url)
    async with w.store:
        ann = _Owner(w.ids["ann@example.org"], "ann@example.org")
        address = w.verp.unsubscribe(MAILBOX, ann, NOW)
        raw = (FIXTURES / "person-unsubscribe.eml").read_bytes()
        processed = await w.intake().process(
            _PLACEHOLDER_MAILBOX.sub(address.encode(), raw), "file"
        )
        assert processed.outcome == InboundOutcome.APPLIED
        assert processed.status_change == ("active", "unsubscribed")
        assert await w.status("ann@example.org") == SubscriberStatus.UNSUBSCRIBED
        # Given only by the pipe (--recipient), when the headers do not say it: the same.
        bob = "jane.doe@example.net"
        owner = _Owner(w.ids[bob], bob)
        plain = _PLACEHOLDER_MAILBOX.sub(b"someone@example.org", raw) + b"\r\nagain"
        recipient = w.verp.unsubscribe(MAILBOX, owner, NOW)
        processed = await w.intake().process(plain, "file", recipient=recipient)
        assert processed.outcome == InboundOutcome.APPLIED
        assert await w.status(bob) == SubscriberStatus.UNSUBSCRIBED


async def test_a_forged_or_foreign_unsubscribe_address_changes_nothing(
    project: Path, database_url: str
) -> None:
    w = await world(project, database_url)
    async with w.store:
        raw = (FIXTURES / "person-unsubscribe.eml").read_bytes()
        forged = f"unsubscribe+u9466-{w.ids['ann@example.org']}-abcdefghijklmnop@example.org"
        processed = await w.intake().process(_PLACEHOLDER_MAILBOX.sub(forged.encode(), raw), "file")
        assert processed.outcome == InboundOutcome.FORGED
        processed = await w.intake().process(
            _PLACEHOLDER_MAILBOX.sub(b"unsubscribe@example.org", raw), "file"
        )
        assert processed.outcome == InboundOutcome.IGNORED
        assert await w.status("ann@example.org") == SubscriberStatus.ACTIVE


async def test_the_same_mail_acts_once(project: Path, database_url: str) -> None:
    w = await world(project, database_url)
    async with w.store:
        raw = w.readdressed("greylist-451.eml")
        first = await w.intake().process(raw, "imap")
        again = await w.intake().process(raw, "imap")
        assert (first.duplicate, again.duplicate) == (False, True)
        address = failed_address("greylist-451.eml")
        assert len(await w.store.bounce_events_of(w.ids[address])) == 1


async def test_a_bounce_carrying_a_ten_megabyte_attachment(
    project: Path, database_url: str
) -> None:
    w = await world(project, database_url)
    async with w.store:
        raw = w.readdressed("postfix-550-user-unknown.eml")
        boundary = b"--4Q1kZq6Ck7z1xL2.1764670446/mx2.example.net--"
        attachment = (
            b"--4Q1kZq6Ck7z1xL2.1764670446/mx2.example.net\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b"QUJDRA==\r\n" * 1_300_000
        )
        big = raw.replace(boundary, attachment + boundary)
        assert len(big) > 10_000_000
        processed = await w.intake().process(big, "file")
        assert processed.outcome == InboundOutcome.APPLIED
        assert await w.status(failed_address("postfix-550-user-unknown.eml")) == "bounced"


def test_the_bundled_config_matches_by_message_id_and_bounces_at_the_first_hard_one(
    project: Path,
) -> None:
    # No [mail] return_path: bounces are matched as in the Message-ID test above; and the
    # README's default, one hard bounce marks an address bounced.
    settings = load_settings(project / "config.toml")
    assert settings.mail.return_path is None and settings.bounces.hard_limit == 1
