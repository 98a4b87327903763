"""Sending an issue through the ledger (syndicate.mail.send), on SQLite and PostgreSQL.

The outbox transport writes a real Maildir that is parsed back with `email`; failures come
from a real SMTP server (aiosmtpd on 127.0.0.1, tests/smtpserver.py) scripted to refuse.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import socket
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from outbox import outbox_messages as read_outbox
from smtpserver import SmtpServer

from syndicate import subscribers as service
from syndicate.cli import cli
from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.digest.build import build_issue
from syndicate.digest.render import RenderedDigest
from syndicate.forum.linker import link_discussions
from syndicate.ingest.poll import ingest
from syndicate.mail.outbox import OutboxTransport
from syndicate.mail.send import IssueSender, SendCounts, send_period
from syndicate.models import DigestIssue
from syndicate.store import Store
from syndicate.tokens import Tokens, signing_secret

NOW = datetime(2016, 1, 1, 9, tzinfo=UTC)
PERIOD = "2015-12"


def configure(project: Path, database_url: str, extra: str = "") -> Settings:
    config = project / "config.toml"
    text = config.read_text().replace(
        'database = "sqlite:///var/syndicate.db"', f'database = "{database_url}"'
    )
    config.write_text(text + extra)
    return load_settings(config)


async def prepared(project: Path, database_url: str, extra: str = "") -> tuple[Settings, Store]:
    settings = configure(project, database_url, extra)
    store = await Store.open(settings.database_url)
    await ingest(settings, store, FrozenClock(NOW))
    await link_discussions(settings, store, FrozenClock(NOW))
    return settings, store


async def subscribe(store: Store, address: str, **options: object) -> int:
    options.setdefault("confirmed", True)
    subscriber, _ = await service.add(store, address, NOW, **options)  # type: ignore[arg-type]
    return subscriber.id


async def issue_of(settings: Settings, store: Store) -> DigestIssue:
    built = await build_issue(settings, store, FrozenClock(NOW), PERIOD)
    assert built.issue is not None
    return built.issue


def outbox_messages(settings: Settings) -> list[EmailMessage]:
    return read_outbox(settings.outbox_dir)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()


async def test_every_active_subscriber_gets_one_compliant_copy(
    project: Path, database_url: str
) -> None:
    settings, store = await prepared(project, database_url)
    async with store:
        ann = await subscribe(store, "ann@example.org", name="Ann")
        bob = await subscribe(store, "bob@example.org")
        await subscribe(store, "pending@example.org", confirmed=False)
        gone = await subscribe(store, "gone@example.org")
        await service.remove(store, "gone@example.org", NOW)
        issue = await issue_of(settings, store)
        seen: list[int] = []
        sender = IssueSender(
            settings,
            store,
            FrozenClock(NOW),
            issue,
            OutboxTransport(settings.outbox_dir),
            on_progress=lambda counts: seen.append(counts.done),
        )
        report = await sender.run()
        assert (report.counts.sent, report.counts.total) == (2, 2)
        assert report.ledger == {"sent": 2}
        assert seen[-1] == 2

        messages = {m["To"].addresses[0].addr_spec: m for m in outbox_messages(settings)}
        assert set(messages) == {"ann@example.org", "bob@example.org"}
        tokens = Tokens(signing_secret(settings), FrozenClock(NOW))
        for address, subscriber_id in (("ann@example.org", ann), ("bob@example.org", bob)):
            message = messages[address]
            assert message["Message-ID"] == f"<digest-{issue.id}-{subscriber_id}@{DOMAIN}>"
            assert message["Subject"] == "Riverside Commons News: December 2015"
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert message["List-Id"] == f"Riverside Commons News <digest.{DOMAIN}>"
            # No [mail] unsubscribe_mailbox: no mailto that nobody reads.
            https = message["List-Unsubscribe"].strip("<>")
            token = https.rsplit("/", 1)[1]
            assert tokens.verify("unsubscribe", token).subscriber_id == subscriber_id
            assert https in text_of(message)
            assert message["Return-Path"] == "<newsletter@riverside-commons.example>"
        assert "Hello Ann," in text_of(messages["ann@example.org"])
        assert "Hello," in text_of(messages["bob@example.org"])
        assert gone not in (ann, bob)

        # Run again: the ledger says everything is sent; nothing goes out twice.
        again = await IssueSender(
            settings, store, FrozenClock(NOW), issue, OutboxTransport(settings.outbox_dir)
        ).run()
        assert again.counts == SendCounts(total=0)
        assert len(outbox_messages(settings)) == 2


DOMAIN = "news.riverside-commons.example"


async def test_categories_narrow_the_copy_or_skip_it(project: Path, database_url: str) -> None:
    settings, store = await prepared(project, database_url)
    async with store:
        await subscribe(store, "all@example.org")
        await subscribe(store, "partners@example.org", categories=["volunteering"])
        await subscribe(store, "nothing@example.org", categories=["No such category"])
        issue = await issue_of(settings, store)
        report = await IssueSender(
            settings, store, FrozenClock(NOW), issue, OutboxTransport(settings.outbox_dir)
        ).run()
    assert (report.counts.sent, report.counts.skipped) == (2, 1)
    assert report.ledger == {"sent": 2, "skipped": 1}
    texts = {m["To"].addresses[0].addr_spec: text_of(m) for m in outbox_messages(settings)}
    assert set(texts) == {"all@example.org", "partners@example.org"}
    assert "VOLUNTEERING" in texts["partners@example.org"]
    assert "FLOOD RESILIENCE" not in texts["partners@example.org"]
    assert texts["partners@example.org"] != texts["all@example.org"]


def preheader_of(message: EmailMessage) -> str:
    """The hidden preview text of a message's HTML part."""
    part = message.get_body(("html",))
    assert part is not None
    found = re.search(r'<div class="preheader"[^>]*>([^<]*?)(?:\u034f|&#847;)', part.get_content())
    assert found is not None
    return html.unescape(found[1])


async def test_a_copy_for_some_categories_is_made_of_the_issue_as_built(
    project: Path, database_url: str
) -> None:
    # September 2015 has five posts, newest first: "Beavers..." (Wildlife, Policy), "Have
    # your say..." (Policy), "Where we sample..." (water-testing), then, over max_posts = 3,
    # "River Wend health report 2015" (Rivers, Policy) and "Small grants..." (Funding).
    settings, store = await prepared(project, database_url, "")
    digest = settings.digest.model_copy(update={"max_posts": 3})
    settings = settings.model_copy(update={"digest": digest})
    async with store:
        await subscribe(store, "all@example.org")
        await subscribe(store, "policy@example.org", categories=["policy"])
        await subscribe(store, "wildlife@example.org", categories=["Wildlife"])
        await subscribe(store, "funding@example.org", categories=["Funding"])
        built = await build_issue(settings, store, FrozenClock(NOW), "2015-09")
        issue = built.issue
        assert issue is not None
        # After the issue was built: a post of it is edited, a new Policy post arrives, and
        # the templates change. None of that is the issue.
        september = await store.posts_between(
            datetime(2015, 9, 1, tzinfo=UTC), datetime(2015, 10, 1, tzinfo=UTC)
        )
        have_your_say = next(p for p in september if p.title.startswith("Have your say"))
        later = NOW + timedelta(days=1)
        edited = replace(have_your_say, title="EDITED AFTER THE ISSUE", content_hash="edited")
        added = replace(
            have_your_say,
            guid="added-after-the-issue",
            url="https://news.riverside-commons.example/added-after-the-issue/",
            title="ADDED AFTER THE ISSUE",
            published=have_your_say.published + timedelta(hours=1),
            content_hash="added",
            id=None,
        )
        await store.upsert_posts(have_your_say.source, [edited, added], later)
        template = project / "templates" / "email" / "digest.txt.j2"
        template.write_text(template.read_text() + "TEMPLATE EDITED AFTER THE ISSUE\n")

        report = await IssueSender(
            settings, store, FrozenClock(later), issue, OutboxTransport(settings.outbox_dir)
        ).run()
    assert report.ledger == {"sent": 3, "skipped": 1}  # nothing for Funding in the issue
    messages = {m["To"].addresses[0].addr_spec: m for m in outbox_messages(settings)}
    texts = {address: text_of(message) for address, message in messages.items()}
    for text in texts.values():
        assert "EDITED AFTER THE ISSUE" not in text and "ADDED AFTER THE ISSUE" not in text
        assert "TEMPLATE EDITED AFTER THE ISSUE" not in text

    beavers = "Beavers on the upper Wend? Not yet, and here is why"
    say = "Have your say on the drainage consultation before 9 October"
    sample = "Where we sample: map and grid references"
    whole = texts["all@example.org"]
    assert beavers in whole and say in whole and sample in whole
    assert "and 2 more posts on the archive page" in whole
    # The whole-issue subscriber gets the stored copy: the same but for the personal links.
    stored = RenderedDigest(issue.subject, issue.html, issue.text).text_copy()
    personal = re.compile(rf"https://{DOMAIN}/(?:unsubscribe|preferences)/\S+")
    assert personal.sub("../../", whole.replace("\r\n", "\n")) == stored

    policy = texts["policy@example.org"]
    assert beavers in policy and say in policy and sample not in policy
    # River Wend health report 2015, and Small grants: its tag "Funding" is one of
    # [categories.Policy] tags in the bundled config.
    assert "and 2 more posts on the archive page" in policy
    assert preheader_of(messages["policy@example.org"]) == (
        f"2 posts from September 2015: {beavers}; {say}"
    )

    wildlife = texts["wildlife@example.org"]
    assert beavers in wildlife and say not in wildlife
    assert "more post" not in wildlife  # none of the posts left out is about Wildlife
    assert preheader_of(messages["wildlife@example.org"]) == (
        f"1 post from September 2015: {beavers}"
    )


async def test_a_stop_releases_what_was_not_sent_and_a_rerun_finishes(
    project: Path, database_url: str
) -> None:
    settings, store = await prepared(project, database_url)
    async with store:
        for n in range(30):
            await subscribe(store, f"reader{n}@example.org")
        issue = await issue_of(settings, store)
        stop = asyncio.Event()

        def stop_after_ten(counts: SendCounts) -> None:
            if counts.sent >= 10:
                stop.set()

        first = await IssueSender(
            settings,
            store,
            FrozenClock(NOW),
            issue,
            OutboxTransport(settings.outbox_dir),
            concurrency=2,
            on_progress=stop_after_ten,
            stop=stop,
        ).run()
        assert first.stopped
        assert 10 <= first.counts.sent < 30
        assert first.ledger == {"sent": first.counts.sent, "pending": 30 - first.counts.sent}
        second = await IssueSender(
            settings, store, FrozenClock(NOW), issue, OutboxTransport(settings.outbox_dir)
        ).run()
        assert second.counts.sent == 30 - first.counts.sent
    recipients = Counter(m["To"].addresses[0].addr_spec for m in outbox_messages(settings))
    assert len(recipients) == 30 and set(recipients.values()) == {1}


class LedgerWatchingOutbox(OutboxTransport):
    """The outbox, noting at each message how many delivered ones the ledger does not yet
    say are sent (what a kill -9 at that moment would send again)."""

    def __init__(self, path: Path, store: Store, issue: DigestIssue) -> None:
        super().__init__(path)
        self.store = store
        self.issue = issue
        self.delivered = 0
        self.unrecorded: list[int] = []

    async def send(self, message: bytes, envelope_from: str, envelope_to: str) -> None:
        delivered = self.delivered
        recorded = (await self.store.delivery_counts(self.issue.id)).get("sent", 0)
        self.unrecorded.append(delivered - recorded)
        await super().send(message, envelope_from, envelope_to)
        self.delivered += 1


async def test_a_message_goes_out_only_once_its_connections_last_one_is_recorded(
    project: Path, database_url: str
) -> None:
    settings, store = await prepared(project, database_url)
    async with store:
        for n in range(200):
            await subscribe(store, f"reader{n}@example.org")
        issue = await issue_of(settings, store)
        transport = LedgerWatchingOutbox(settings.outbox_dir, store, issue)
        report = await IssueSender(
            settings, store, FrozenClock(NOW), issue, transport, concurrency=4
        ).run()
    assert report.ledger == {"sent": 200}
    assert len(transport.unrecorded) == 200
    # When a message starts, each of the other three connections may have one delivered
    # message whose outcome is still being written; its own last one is in the ledger.
    assert max(transport.unrecorded) <= 3, transport.unrecorded


class DyingSenderOutbox(OutboxTransport):
    """The outbox; at the first message, another sender on this host (a process that has
    since exited) claims five rows and dies with them "sending"."""

    def __init__(self, path: Path, store: Store, issue: DigestIssue) -> None:
        super().__init__(path)
        self.store = store
        self.issue = issue
        self.taken: list[int] = []
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        self.dead_owner = f"{socket.gethostname()}:{gone.pid}:0badc0de"

    async def send(self, message: bytes, envelope_from: str, envelope_to: str) -> None:
        if not self.taken:
            claimed = await self.store.claim_deliveries(
                self.issue.id,
                self.dead_owner,
                NOW,
                5,
                lease_expired_before=NOW - timedelta(hours=1),
            )
            self.taken = [row.id for row in claimed]
        await super().send(message, envelope_from, envelope_to)


async def test_rows_of_a_sender_that_died_during_the_send_are_sent_before_it_ends(
    project: Path, database_url: str
) -> None:
    # Who is dead is asked at the first claim and again only when a claim comes back short:
    # these rows are claimed after the first, and must not be left "sending" at the end.
    settings, store = await prepared(project, database_url)
    async with store:
        for n in range(60):
            await subscribe(store, f"reader{n}@example.org")
        issue = await issue_of(settings, store)
        transport = DyingSenderOutbox(settings.outbox_dir, store, issue)
        report = await IssueSender(
            settings, store, FrozenClock(NOW), issue, transport, concurrency=1
        ).run()
    assert len(transport.taken) == 5
    assert report.ledger == {"sent": 60}
    recipients = Counter(m["To"].addresses[0].addr_spec for m in outbox_messages(settings))
    assert len(recipients) == 60 and set(recipients.values()) == {1}


async def test_the_log_says_how_long_the_snapshot_took_and_the_pace_a_tenth_at_a_time(
    project: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # What `syndicate -v digest send` shows of a long send (bench/scale_send.py reads it).
    settings, store = await prepared(project, database_url)
    async with store:
        for n in range(20):
            await subscribe(store, f"reader{n}@example.org")
        issue = await issue_of(settings, store)
        with caplog.at_level(logging.INFO, logger="syndicate.mail.send"):
            await IssueSender(
                settings, store, FrozenClock(NOW), issue, OutboxTransport(settings.outbox_dir)
            ).run()
    lines = [r.getMessage() for r in caplog.records if r.name == "syndicate.mail.send"]
    assert re.fullmatch(r"snapshot: 20 recipients in \d+\.\d\d s", lines[0]), lines
    tenths = [line for line in lines if "over the last tenth" in line]
    assert [line.split(" done")[0] for line in tenths] == [f"{n} of 20" for n in range(2, 21, 2)]


async def test_unsubscribing_after_the_snapshot_skips_them(
    project: Path, database_url: str
) -> None:
    settings, store = await prepared(project, database_url)
    async with store:
        await subscribe(store, "stays@example.org")
        await subscribe(store, "leaves@example.org")
        issue = await issue_of(settings, store)
        await store.snapshot_deliveries(issue.id, NOW)
        await service.remove(store, "leaves@example.org", NOW)
        report = await IssueSender(
            settings, store, FrozenClock(NOW), issue, OutboxTransport(settings.outbox_dir)
        ).run()
    assert report.ledger == {"sent": 1, "skipped": 1}
    assert [m["To"] for m in outbox_messages(settings)] == ["stays@example.org"]


async def test_send_period_builds_the_issue_and_resumes(project: Path) -> None:
    settings, store = await prepared(project, f"sqlite:///{project / 'var' / 'x.db'}")
    async with store:
        await subscribe(store, "ann@example.org")
        first = await send_period(settings, store, FrozenClock(NOW), PERIOD)
        assert first is not None and first.counts.sent == 1
        assert (await store.issue(PERIOD)) is not None
        second = await send_period(settings, store, FrozenClock(NOW), PERIOD)
        assert second is not None and second.counts.sent == 0
        # A month without posts has no issue (skip_empty) and nothing is sent.
        assert await send_period(settings, store, FrozenClock(NOW), "2014-01") is None
    assert len(outbox_messages(settings)) == 1


def smtp_config(server: SmtpServer, mail: str = "", pool: int = 2) -> str:
    """A [mail] section sending to the test server (it replaces the bundled one)."""
    return (
        f'\n[mail]\ntransport = "smtp"\n{mail}\n'
        f'[mail.smtp]\nhost = "{server.host}"\nport = {server.port}\ntls = "none"\n'
        f"pool = {pool}\ntimeout = 5\n"
    )


def drop_mail_section(project: Path) -> None:
    config = project / "config.toml"
    text = config.read_text()
    start = text.index("[mail]")
    end = text.index("[web]")
    config.write_text(text[:start] + text[end:])


async def test_transient_failures_are_retried_with_backoff_then_given_up(
    project: Path, database_url: str, smtp_server: SmtpServer
) -> None:
    drop_mail_section(project)
    # One connection, so the scripted failures meet the first subscriber's message.
    extra = smtp_config(smtp_server, 'max_attempts = 3\nretry_backoff = "10m"', pool=1)
    settings, store = await prepared(project, database_url, extra)
    clock = FrozenClock(NOW)
    async with store:
        await subscribe(store, "flaky@example.org")
        await subscribe(store, "fine@example.org")
        issue = await issue_of(settings, store)
        smtp_server.fail(1, code=451, stage="RCPT")  # the first message meets a 451
        first = await send_period(settings, store, clock, PERIOD)
        assert first is not None
        assert (first.counts.sent, first.counts.deferred) == (1, 1)
        assert first.next_retry_at == NOW + timedelta(minutes=10)

        # Not due yet: nothing is tried.
        clock.advance(timedelta(minutes=5))
        waiting = await send_period(settings, store, clock, PERIOD)
        assert waiting is not None and waiting.counts.done == 0
        # Due: the second attempt meets a 452 and waits twice as long.
        clock.advance(timedelta(minutes=5))
        smtp_server.fail(1, code=452, text="4.3.1 Insufficient system storage", stage="MAIL")
        second = await send_period(settings, store, clock, PERIOD)
        assert second is not None and second.counts.deferred == 1
        assert second.next_retry_at == clock.now() + timedelta(minutes=20)
        # The third and last attempt fails too: the delivery fails, the address is fine.
        clock.advance(timedelta(minutes=20))
        smtp_server.fail(1, code=451, stage="DATA")
        third = await send_period(settings, store, clock, PERIOD)
        assert third is not None and third.counts.failed == 1
        assert "gave up after 3 attempts" in third.errors[0]
        assert third.ledger == {"sent": 1, "failed": 1}
        assert third.issue.id == issue.id
        # Transient failures say nothing against the address: no bounce.
        flaky = await store.subscriber_by_email("flaky@example.org")
        assert flaky is not None and (flaky.status, flaky.bounce_count) == ("active", 0)
    assert smtp_server.recipients() == ["fine@example.org"]


async def test_permanent_refusals_fail_and_bounce_the_subscriber(
    project: Path, database_url: str, smtp_server: SmtpServer
) -> None:
    drop_mail_section(project)
    settings, store = await prepared(
        project, database_url, smtp_config(smtp_server, "bounce_limit = 1")
    )
    async with store:
        await subscribe(store, "nobody@example.org")
        await subscribe(store, "reader@example.org")
        smtp_server.reject("nobody@example.org", code=550)
        report = await send_period(settings, store, FrozenClock(NOW), PERIOD)
        assert report is not None
        assert (report.counts.sent, report.counts.failed) == (1, 1)
        assert "550" in report.errors[0] and "nobody@example.org" in report.errors[0]
        bounced = await store.subscriber_by_email("nobody@example.org")
        assert bounced is not None
        assert (bounced.status, bounced.bounce_count) == ("bounced", 1)
        # A failed delivery is final: running again does not try it.
        again = await send_period(settings, store, FrozenClock(NOW), PERIOD)
        assert again is not None and again.counts.done == 0
    assert smtp_server.recipients() == ["reader@example.org"]


def test_the_cli_dry_run_sends_nothing_then_send_and_exit_status(
    project: Path, smtp_server: SmtpServer
) -> None:
    drop_mail_section(project)
    config = project / "config.toml"
    config.write_text(config.read_text() + smtp_config(smtp_server, "bounce_limit = 3"))

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)

    assert invoke("ingest").exit_code == 0
    for address in ("ann@example.org", "refused@example.org"):
        assert invoke("subscribers", "add", address, "--confirmed").exit_code == 0
    dry = invoke("digest", "send", "--month", PERIOD, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"{PERIOD} (not built yet, 2 posts): would send 2 messages via smtp" in dry.stdout
    assert smtp_server.messages == []

    smtp_server.reject("refused@example.org", code=554, text="5.7.1 Rejected")
    sent = invoke("digest", "send", "--month", PERIOD)
    assert sent.exit_code == 1  # a delivery failed
    assert f"{PERIOD}: sent 1, deferred 0, failed 1, skipped 0 via smtp 127.0.0.1:" in sent.stdout
    assert "ledger: failed 1, sent 1" in sent.stdout
    assert "failed: " in sent.stderr and "refused@example.org" in sent.stderr
    again = invoke("digest", "send", "--month", PERIOD, "--dry-run")
    assert f"{PERIOD} (built, 2 posts): would send 0 messages" in again.stdout
    assert smtp_server.recipients() == ["ann@example.org"]


async def test_an_unusable_transport_stops_the_run_and_blames_nobody(
    project: Path, database_url: str, smtp_server_factory
) -> None:
    server = smtp_server_factory(users={"news": "right"})
    drop_mail_section(project)
    extra = smtp_config(server).replace("pool = 2", 'pool = 2\nusername = "news"')
    settings, store = await prepared(project, database_url, extra)
    async with store:
        for n in range(60):
            await subscribe(store, f"reader{n}@example.org")
        # No password in the environment: every login fails.
        report = await send_period(settings, store, FrozenClock(NOW), PERIOD)
        assert report is not None and report.halted is not None
        assert "authentication failed for user 'news'" in report.halted
        assert report.counts.done == 0
        assert report.ledger == {"pending": 60}  # released untried, attempts given back
        readers = await store.list_subscribers()
        assert {(s.status, s.bounce_count) for s in readers} == {("active", 0)}
    assert server.messages == []


def test_the_bundled_config_puts_a_compliant_message_in_the_outbox(project: Path) -> None:
    # The issue's acceptance check, word for word, on the bundled config.toml.
    config = project / "config.toml"

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)

    assert invoke("run", "--once").exit_code == 0
    assert invoke("subscribers", "add", "a@example.org", "--confirmed").exit_code == 0
    sent = invoke("digest", "send", "--month", "2015-11")
    assert sent.exit_code == 0, sent.output
    assert "2015-11: sent 1, deferred 0, failed 0, skipped 0 via outbox" in sent.stdout

    [message] = outbox_messages(load_settings(config))
    assert message["From"] == "Riverside Commons <newsletter@riverside-commons.example>"
    assert message["To"] == "a@example.org"
    assert message["Subject"] == "Riverside Commons News: November 2015"
    assert message["Date"].datetime.tzinfo is not None
    assert message["Message-ID"] == f"<digest-1-1@{DOMAIN}>"
    assert message["List-Id"] == f"Riverside Commons News <digest.{DOMAIN}>"
    assert message["List-Archive"] == f"<https://{DOMAIN}/feeds/archive/index.html>"
    # The bundled config reads no mailbox, so List-Unsubscribe offers no mailto.
    https = message["List-Unsubscribe"].strip("<>")
    assert https.startswith(f"https://{DOMAIN}/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    html = message.get_body(("html",))
    assert html is not None and https in html.get_content()  # the visible unsubscribe link
