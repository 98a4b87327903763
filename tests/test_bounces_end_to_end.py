"""Issue 19's acceptance, end to end with real parts: a digest sent over SMTP (aiosmtpd on
127.0.0.1), a delivery status notification for one recipient dropped into a real IMAP box
(Dovecot, tests/imapserver.py, STARTTLS with the test CA), `syndicate run` as a real process
reading it, and the next issue skipping that subscriber."""

from __future__ import annotations

import asyncio
import email
import re
import signal
from email.policy import default as default_policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from imapserver import ImapServer
from smtpserver import SmtpServer, certificate_authority
from test_bounce_intake import FIXTURES
from test_mail_send import NOW, drop_mail_section, smtp_config
from test_worker_process import ENV, Process

from syndicate import subscribers as service
from syndicate.cli import cli
from syndicate.clock import FrozenClock
from syndicate.config import load_settings
from syndicate.statuses import SubscriberStatus
from syndicate.store import Store

ANN, BOB = "ann@example.org", "bob@example.org"


def dsn_for(received: object, fixture: str = "postfix-550-user-unknown.eml") -> bytes:
    """The Postfix bounce fixture, reporting `received`'s recipient as unknown, sent back
    to its envelope sender and quoting its Message-ID, as the receiving server would."""
    envelope_from: str = received.envelope_from  # type: ignore[attr-defined]
    [recipient] = received.rcpt_tos  # type: ignore[attr-defined]
    message = email.message_from_bytes(received.content, policy=default_policy)  # type: ignore[attr-defined]
    raw = (FIXTURES / fixture).read_bytes()
    raw = re.sub(rb"bounces\+7-\d+-[a-z]{16}@example\.org", envelope_from.encode(), raw)
    raw = re.sub(rb"<digest-7-\d+@example\.org>", message["Message-ID"].encode(), raw)
    return re.sub(rb"(?i)jane\.doe@example\.net", recipient.encode(), raw)


@pytest.mark.timeout(120)
async def test_a_bounce_in_the_imap_box_marks_the_subscriber_and_the_next_issue_skips_them(
    project: Path,
    database_url: str,
    smtp_server: SmtpServer,
    imap_server_factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    imap: ImapServer = imap_server_factory(tls="starttls")
    drop_mail_section(project)
    config = project / "config.toml"
    config.write_text(
        config.read_text().replace(
            'database = "sqlite:///var/syndicate.db"', f'database = "{database_url}"'
        )
        + smtp_config(smtp_server, 'return_path = "bounces@example.org"')
        + (
            f'\n[bounces.imap]\nhost = "{imap.host}"\nport = {imap.port}\ntls = "starttls"\n'
            f'username = "{imap.user}"\npassword_env = "TEST_IMAP_PASSWORD"\ntimeout = 10\n'
        )
    )
    # The worker trusts the test CA through OpenSSL's SSL_CERT_FILE, as an admin with a
    # private CA would; the password comes from the variable the config names.
    ca = tmp_path / "test-ca.pem"
    certificate_authority().cert_pem.write_to_path(str(ca))
    for name, value in (("TEST_IMAP_PASSWORD", imap.password), ("SSL_CERT_FILE", str(ca))):
        monkeypatch.setenv(name, value)  # the worker and the in-process commands alike
    monkeypatch.setenv("SYNDICATE_SECRET", ENV["SYNDICATE_SECRET"])  # one secret signs and checks
    monkeypatch.setitem(ENV, "TEST_IMAP_PASSWORD", imap.password)
    monkeypatch.setitem(ENV, "SSL_CERT_FILE", str(ca))
    settings = load_settings(config)

    async def syndicate(*args: str) -> str:
        # In a thread: a command runs its own event loop.
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli,
            ["--config", str(config), *args],
            obj=FrozenClock(NOW),
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        return result.stdout

    await syndicate("ingest", "--no-publish")
    async with await Store.open(settings.database_url) as store:
        for address in (ANN, BOB):
            await service.add(store, address, NOW, confirmed=True)
    assert "sent 2, deferred 0, failed 0" in await syndicate("digest", "send", "--month", "2015-12")
    by_recipient = {m.rcpt_tos[0]: m for m in smtp_server.messages}
    assert set(by_recipient) == {ANN, BOB}
    assert by_recipient[ANN].envelope_from.startswith("bounces+b")

    # Ann's server accepted the message, then bounced it: the DSN lands in the bounce box.
    imap.append(dsn_for(by_recipient[ANN]))
    worker = await Process.start(config, "run", "--no-web")
    try:
        await worker.line(r" bounces: 1 mail \(applied 1\)$", within=60)
        worker.signal(signal.SIGTERM)
        assert await worker.wait(within=30) == 0, "\n".join(worker.errors)
    finally:
        await worker.kill()
    assert imap.messages("INBOX") == []
    assert len(imap.messages("Processed")) == 1  # moved only once its outcome was stored

    async with await Store.open(settings.database_url) as store:
        ann = await store.subscriber_by_email(ANN)
        bob = await store.subscriber_by_email(BOB)
        assert ann is not None and ann.status == SubscriberStatus.BOUNCED
        assert bob is not None and bob.status == SubscriberStatus.ACTIVE
        [event] = await store.bounce_events_of(ann.id)
        assert (event.kind, event.status_code) == ("hard", "5.1.1")
    assert "ever: hard 1" in await syndicate("status")

    # The next issue goes to Bob alone.
    before = len(smtp_server.messages)
    assert "sent 1, deferred 0, failed 0" in await syndicate("digest", "send", "--month", "2015-11")
    assert [m.rcpt_tos for m in smtp_server.messages[before:]] == [(BOB,)]
