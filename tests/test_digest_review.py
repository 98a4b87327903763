"""Proof and approval ([digest] review, issue 21): the review window on a frozen clock.

Real parts: the bundled project's feeds ingested into a real SQLite file or PostgreSQL
database, the Maildir outbox, and a real SMTP server (aiosmtpd) where a failure is needed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from outbox import outbox_messages
from smtpserver import SmtpServer

from syndicate import subscribers as service
from syndicate.clock import FrozenClock
from syndicate.config import ConfigError, Settings, load_settings
from syndicate.digest.build import build_issue, web_copy_path
from syndicate.digest.review import WINDOW_ENDED, Step, fingerprint, next_step
from syndicate.forum.linker import link_discussions
from syndicate.ingest.poll import ingest
from syndicate.jobs import digest_if_due, send_approved
from syndicate.mail.approval import approve_period
from syndicate.mail.proof import AwaitingReview
from syndicate.mail.send import SendReport, send_period
from syndicate.statuses import RunStatus
from syndicate.store import Store

DUE = datetime(2016, 1, 1, 9, tzinfo=UTC)  # December 2015's digest falls due
PERIOD = "2015-12"


def configure(project: Path, database_url: str, unreviewed: str = "hold") -> Settings:
    config = project / "config.toml"
    text = config.read_text().replace(
        'database = "sqlite:///var/syndicate.db"', f'database = "{database_url}"'
    )
    # The bundled [digest] section gets the review keys (they are commented out there).
    text = (
        text.replace('# review = "48h"', 'review = "48h"', 1)
        .replace(
            '# reviewers = ["Editor <editor@riverside-commons.example>"]',
            'reviewers = ["Editor <editor@example.org>", "sub@example.org"]',
            1,
        )
        .replace('# unreviewed = "hold"', f'unreviewed = "{unreviewed}"', 1)
    )
    assert 'review = "48h"' in text and "editor@example.org" in text, "the bundled config changed"
    config.write_text(text)
    return load_settings(config)


@pytest.fixture
async def reviewed(project: Path, database_url: str) -> tuple[Settings, Store]:
    settings = configure(project, database_url)
    store = await Store.open(settings.database_url)
    await ingest(settings, store, FrozenClock(DUE))
    await link_discussions(settings, store, FrozenClock(DUE))
    for address in ("ann@example.org", "bo@example.org", "sub@example.org"):
        await service.add(store, address, DUE - timedelta(days=40), confirmed=True)
    yield settings, store
    await store.close()


def proofs(settings: Settings) -> list[EmailMessage]:
    return [m for m in outbox_messages(settings.outbox_dir) if m["Subject"].startswith("[Proof]")]


def digests(settings: Settings) -> list[EmailMessage]:
    return [m for m in outbox_messages(settings.outbox_dir) if "[Proof]" not in m["Subject"]]


async def test_at_the_schedule_the_reviewers_get_a_proof_and_nobody_the_issue(
    reviewed: tuple[Settings, Store],
) -> None:
    settings, store = reviewed
    clock = FrozenClock(DUE + timedelta(minutes=1))
    run = await digest_if_due(settings, store, clock, "worker-1")
    assert run is not None and isinstance(run.report, AwaitingReview)
    assert "proof of version 1 sent to editor@example.org, sub@example.org" in run.summary()

    sent = proofs(settings)
    assert [m["To"] for m in sent] == ["Editor <editor@example.org>", "sub@example.org"]
    assert all(m["Subject"] == "[Proof] Riverside Commons News: December 2015" for m in sent)
    assert digests(settings) == []
    text = sent[0].get_body(("plain",)).get_content()
    assert "https://news.riverside-commons.example/digest/review/" in text
    assert "syndicate digest approve --month 2015-12" in text
    assert "Unless it is approved by 2016-01-03 09:01 GMT, it will be held." in text

    issue = await store.issue(PERIOD)
    assert issue is not None and issue.awaiting_review and issue.version == 1
    assert issue.review_deadline == clock.now() + timedelta(hours=48)
    # A proof is not a delivery: even the reviewer who is a subscriber has no ledger row.
    assert await store.delivery_counts(issue.id) == {}
    assert (await store.get_run(f"digest:{PERIOD}")).status == RunStatus.WAITING
    # Not public before it is approved: no web copy, not among past issues.
    assert not web_copy_path(settings, PERIOD).exists()
    assert [i.period for i in await store.issue_list()] == []


async def test_a_restart_inside_the_window_sends_neither_a_second_proof_nor_the_issue(
    reviewed: tuple[Settings, Store],
) -> None:
    settings, store = reviewed
    clock = FrozenClock(DUE)
    await digest_if_due(settings, store, clock, "worker-1")
    for hours in (1, 24, 47):  # a new worker each time, as after a restart
        clock.set(DUE + timedelta(hours=hours))
        assert await digest_if_due(settings, store, clock, f"worker-{hours}") is None
    assert len(proofs(settings)) == 2 and digests(settings) == []
    issue = await store.issue(PERIOD)
    assert next_step(settings.digest, issue, clock.now()) is Step.WAIT


async def test_approving_sends_the_issue_once_and_the_proofs_stay_outside_the_ledger(
    reviewed: tuple[Settings, Store],
) -> None:
    settings, store = reviewed
    clock = FrozenClock(DUE)
    await digest_if_due(settings, store, clock, "worker-1")
    clock.advance(timedelta(hours=3))
    approval = await approve_period(settings, store, clock, PERIOD, by="ann (cli)")
    assert approval.refused is None and approval.report is not None
    assert approval.report.counts.sent == 3
    issue = await store.issue(PERIOD)
    assert issue.approved_by == "ann (cli)" and issue.approved_at == clock.now()
    assert await store.delivery_counts(issue.id) == {"sent": 3}
    assert sorted(m["To"] for m in digests(settings)) == [
        "ann@example.org",
        "bo@example.org",
        "sub@example.org",
    ]
    assert web_copy_path(settings, PERIOD).exists()
    assert [i.period for i in await store.issue_list()] == [PERIOD]
    # The worker's next minute finds nothing to do, and never a second copy.
    clock.advance(timedelta(minutes=1))
    await digest_if_due(settings, store, clock, "worker-2")
    assert await send_approved(settings, store, clock) == []
    assert len(digests(settings)) == 3 and len(proofs(settings)) == 2
    assert (await store.get_run(f"digest:{PERIOD}")).status == RunStatus.DONE


async def test_held_after_the_window_until_approved_then_the_worker_sends_it(
    reviewed: tuple[Settings, Store],
) -> None:
    settings, store = reviewed
    clock = FrozenClock(DUE)
    await digest_if_due(settings, store, clock, "worker-1")
    clock.set(DUE + timedelta(hours=48))
    assert await digest_if_due(settings, store, clock, "worker-1") is None
    issue = await store.issue(PERIOD)
    assert next_step(settings.digest, issue, clock.now()) is Step.HOLD
    clock.set(DUE + timedelta(days=5))
    assert await digest_if_due(settings, store, clock, "worker-1") is None
    assert digests(settings) == []
    # Approved on the preview page (the web app records it; the worker sends).
    assert await store.approve_issue(issue.id, issue.version, "editor (page)", clock.now())
    reports = await send_approved(settings, store, clock)
    assert [r.counts.sent for r in reports] == [3]
    assert len(digests(settings)) == 3


async def test_with_unreviewed_send_the_issue_goes_when_the_window_ends(
    project: Path, database_url: str
) -> None:
    settings = configure(project, database_url, unreviewed="send")
    async with await Store.open(settings.database_url) as store:
        await ingest(settings, store, FrozenClock(DUE))
        await service.add(store, "ann@example.org", DUE - timedelta(days=40), confirmed=True)
        clock = FrozenClock(DUE)
        await digest_if_due(settings, store, clock, "worker-1")
        clock.set(DUE + timedelta(hours=47, minutes=59))
        assert await digest_if_due(settings, store, clock, "worker-1") is None
        assert digests(settings) == []
        clock.set(DUE + timedelta(hours=48))
        run = await digest_if_due(settings, store, clock, "worker-2")
        assert run is not None and isinstance(run.report, SendReport)
        assert run.report.counts.sent == 1
        issue = await store.issue(PERIOD)
        assert issue.approved_by == WINDOW_ENDED and not issue.awaiting_review
    assert [m["To"] for m in digests(settings)] == ["ann@example.org"]


async def test_an_edited_intro_rebuilds_the_issue_and_sends_a_new_proof(
    reviewed: tuple[Settings, Store],
) -> None:
    settings, store = reviewed
    clock = FrozenClock(DUE)
    await digest_if_due(settings, store, clock, "worker-1")
    first = await store.issue(PERIOD)
    clock.advance(timedelta(hours=2))
    intro = settings.resolve(f"digest/intro/{PERIOD}.md")
    intro.parent.mkdir(parents=True)
    intro.write_text("A word from the editor: **floods**.\n")
    run = await digest_if_due(settings, store, clock, "worker-1")
    assert run is not None and isinstance(run.report, AwaitingReview) and run.report.rebuilt
    issue = await store.issue(PERIOD)
    assert issue.version == 2 and issue.fingerprint != first.fingerprint
    assert issue.review_deadline == first.review_deadline  # the window does not move
    # The outbox's order is not the sending order: find version 2's proofs by their note.
    sent = proofs(settings)
    latest = [m for m in sent if "version 2:" in m.get_body(("plain",)).get_content()]
    assert len(sent) == 4 and len(latest) == 2
    assert all("floods" in m.get_body(("html",)).get_content() for m in latest)
    # Approving the version read before the edit is refused; nothing is sent.
    old = await approve_period(settings, store, clock, PERIOD, by="x", version=1)
    assert old.refused is not None and "version 2 now" in old.refused
    assert digests(settings) == []
    # A reply count moving on the forum is not an edit: no version 3.
    assert await digest_if_due(settings, store, clock, "worker-1") is None
    assert (await store.issue(PERIOD)).version == 2


async def test_approve_rebuilds_first_when_the_issue_changed_since_its_proof(
    reviewed: tuple[Settings, Store],
) -> None:
    settings, store = reviewed
    clock = FrozenClock(DUE)
    await digest_if_due(settings, store, clock, "worker-1")
    intro = settings.resolve(f"digest/intro/{PERIOD}.md")
    intro.parent.mkdir(parents=True)
    intro.write_text("Changed after the proof.\n")
    refused = await approve_period(settings, store, clock, PERIOD, by="ann")
    assert refused.refused is not None and "rebuilt as version 2" in refused.refused
    assert refused.waiting is not None and refused.waiting.proofs is not None
    assert len(proofs(settings)) == 4 and digests(settings) == []
    approved = await approve_period(settings, store, clock, PERIOD, by="ann", version=2)
    assert approved.report is not None and approved.report.counts.sent == 3


async def test_two_workers_at_once_send_each_proof_once(
    reviewed: tuple[Settings, Store],
) -> None:
    settings, store = reviewed
    clock = FrozenClock(DUE)
    await build_issue(settings, store, clock, PERIOD)
    results = await asyncio.gather(*(send_period(settings, store, clock, PERIOD) for _ in range(4)))
    assert all(isinstance(r, AwaitingReview) for r in results)
    assert sum(1 for r in results if r.proofs is not None) == 1
    assert len(proofs(settings)) == 2


async def test_a_mail_server_refusing_every_proof_loses_none(
    project: Path, smtp_server: SmtpServer
) -> None:
    config = project / "config.toml"
    text = config.read_text()
    mail = text[text.index("[mail]") : text.index("[web]")]
    config.write_text(
        text.replace(
            mail,
            f'[mail]\ntransport = "smtp"\n[mail.smtp]\nhost = "{smtp_server.host}"\n'
            f'port = {smtp_server.port}\ntls = "none"\ntimeout = 5\n\n',
        )
    )
    settings = configure(project, f"sqlite:///{project / 'var' / 'syndicate.db'}")
    smtp_server.fail(2, code=451)  # both reviewers' RCPT, this once
    async with await Store.open(settings.database_url) as store:
        await ingest(settings, store, FrozenClock(DUE))
        clock = FrozenClock(DUE)
        run = await digest_if_due(settings, store, clock, "worker-1")
        assert run is not None and run.failed
        assert "proof of version 1 not sent, tried again in a minute" in run.summary()
        assert "<editor@example.org> refused: 451 4.3.0" in run.summary()
        issue = await store.issue(PERIOD)
        assert issue.proof_sent_at is None and issue.review_deadline is None
        clock.advance(timedelta(minutes=1))
        run = await digest_if_due(settings, store, clock, "worker-1")
        assert run is not None and not run.failed
        assert run.report.proofs.sent == ("editor@example.org", "sub@example.org")
        issue = await store.issue(PERIOD)
        assert issue.review_deadline == clock.now() + timedelta(hours=48)
    assert sorted(smtp_server.recipients()) == ["editor@example.org", "sub@example.org"]


def test_fingerprint_ignores_reply_counts_only() -> None:
    content = {"posts": [{"title": "A", "reply_count": 1}], "intro_html": ""}
    same = {"posts": [{"title": "A", "reply_count": 9}], "intro_html": ""}
    edited = {"posts": [{"title": "A!", "reply_count": 1}], "intro_html": ""}
    assert fingerprint(content) == fingerprint(same) != fingerprint(edited)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('review = "48h"', "reviewers is empty"),
        ('review = "48h"\nreviewers = ["a@example.org", "A@example.org"]', "listed twice"),
        ('reviewers = ["not an address"]', "digest.reviewers.0"),
        ('review = "soon"\nreviewers = ["a@example.org"]', "digest.review"),
        ('unreviewed = "maybe"\n', "digest.unreviewed"),
    ],
)
def test_review_keys_are_checked(project: Path, lines: str, message: str) -> None:
    config = project / "config.toml"
    config.write_text(config.read_text().replace("[digest]\n", f"[digest]\n{lines}\n", 1))
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


async def test_the_worker_proofs_waits_across_restarts_then_sends_the_approved_issue(
    project: Path, database_url: str
) -> None:
    # The long-running worker (not only `run --once`), restarted inside the window.
    from test_worker import eventually, running

    settings = configure(project, database_url)
    async with await Store.open(settings.database_url) as store:
        for n in range(3):
            await service.add(store, f"reader{n}@example.org", DUE, confirmed=True)
    clock = FrozenClock(DUE + timedelta(minutes=30))
    async with running(settings, clock, "worker-a") as worker:
        await asyncio.wait_for(worker.caught_up.wait(), 20)
        await eventually(lambda: "deliveries" in worker.last)
    assert len(proofs(settings)) == 2 and digests(settings) == []

    for owner in ("worker-b", "worker-c"):  # two restarts inside the window
        clock.advance(timedelta(hours=6))
        async with running(settings, clock, owner) as worker:
            await eventually(lambda: "deliveries" in worker.last)
    assert len(proofs(settings)) == 2 and digests(settings) == []

    async with await Store.open(settings.database_url) as store:
        issue = await store.issue(PERIOD)
        assert await store.approve_issue(issue.id, issue.version, "editor (page)", clock.now())
    clock.advance(timedelta(minutes=1))
    async with running(settings, clock, "worker-d") as worker:
        await eventually(lambda: "deliveries" in worker.last)
        issues = project / "feeds" / "digest" / "index.html"
        await eventually(lambda: issues.is_file() and b"2015-12.html" in issues.read_bytes())
    assert sorted(m["To"] for m in digests(settings)) == [
        f"reader{n}@example.org" for n in range(3)
    ]
    assert len(proofs(settings)) == 2
