"""`syndicate digest send` as real processes: killed with SIGKILL mid-send and resumed, and
two senders sharing one PostgreSQL database. Mail goes to a real SMTP server (aiosmtpd on
127.0.0.1, tests/smtpserver.py) that answers a little slowly, so the kill lands mid-send."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from smtpserver import SmtpServer
from sqlalchemy import insert
from test_mail_send import NOW, PERIOD, drop_mail_section, prepared, smtp_config

from syndicate.store import Store
from syndicate.store.tables import subscribers

POOL = 4


async def with_subscribers(project: Path, database_url: str, server: SmtpServer, count: int):
    drop_mail_section(project)
    settings, store = await prepared(project, database_url, smtp_config(server, pool=POOL))
    async with store, store.write() as conn:  # in one go: 2,000 one at a time are slow
        await conn.execute(
            insert(subscribers),
            [
                {
                    "email": f"reader{n:04d}@example.org",
                    "name": "",
                    "status": "active",
                    "categories": [],
                    "consent_source": "test",
                    "consented_at": NOW,
                    "confirmed_at": NOW,
                    "bounce_count": 0,
                }
                for n in range(count)
            ],
        )
    return settings


def syndicate(config: Path) -> list[str]:
    return [sys.executable, "-m", "syndicate", "--config", str(config)]


def start_send(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*syndicate(config), "digest", "send", "--month", PERIOD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SYNDICATE_SECRET": "test-secret-shared-by-both-processes"},
    )


def message_ids_by_recipient(server: SmtpServer) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for received in server.messages:
        header = next(
            line for line in received.content.split(b"\r\n") if line.startswith(b"Message-ID:")
        )
        for recipient in received.rcpt_tos:
            found.setdefault(recipient, []).append(header)
    return found


def duplicates(copies: dict[str, list[bytes]]) -> int:
    """Messages received beyond the first for each recipient."""
    return sum(len(ids) - 1 for ids in copies.values())


@pytest.mark.parametrize("kills", [1, 2])
@pytest.mark.timeout(300)
async def test_a_killed_send_resumes_and_sends_at_most_one_message_per_connection_twice(
    project: Path, database_url: str, smtp_server: SmtpServer, kills: int
) -> None:
    count = 2_000
    settings = await with_subscribers(project, database_url, smtp_server, count)
    smtp_server.slow(0.01)  # 10 ms a message: 2,000 over 4 connections take 5 s at least
    for _ in range(kills):
        # Killed once sending has verifiably gone on for a while: counted at the server,
        # never at a fixed delay, and not at a multiple of any batch size.
        started = len(smtp_server.messages)
        killed = start_send(settings.path)
        await smtp_server.wait_for(started + 450, within=120)
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=10)
        assert killed.returncode == -signal.SIGKILL
    before_resume = len(smtp_server.messages)
    assert before_resume < count, "the kills came too late to test anything"

    smtp_server.clear_script()
    resumed = start_send(settings.path)
    out, err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, err

    copies = message_ids_by_recipient(smtp_server)
    assert len(copies) == count  # everyone got the issue
    # Only the messages on the wire at a kill may go twice: one per pool connection. A
    # second copy has the same Message-ID as the first.
    assert duplicates(copies) <= kills * POOL, f"{duplicates(copies)} sent twice"
    assert all(len(set(ids)) == 1 for ids in copies.values())
    async with await Store.open(settings.database_url) as store:
        issue = await store.issue(PERIOD)
        assert issue is not None
        assert await store.delivery_counts(issue.id) == {"sent": count}
    assert f"sent {len(smtp_server.messages) - before_resume}," in out


@pytest.mark.postgresql
@pytest.mark.timeout(180)
async def test_two_senders_on_postgresql_send_each_message_once(
    project: Path, postgres_url: str, smtp_server: SmtpServer
) -> None:
    count = 400
    settings = await with_subscribers(project, postgres_url, smtp_server, count)
    # Build the issue first, so both senders start on the ledger at the same moment.
    build = await asyncio.to_thread(
        subprocess.run,
        [*syndicate(settings.path), "digest", "build", "--month", PERIOD],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    smtp_server.slow(0.01)
    senders = [start_send(settings.path) for _ in range(2)]
    outputs = await asyncio.gather(*(asyncio.to_thread(p.communicate, None, 120) for p in senders))
    for sender, (_, err) in zip(senders, outputs, strict=True):
        assert sender.returncode == 0, err

    recipients = Counter(smtp_server.recipients())
    assert len(recipients) == count and set(recipients.values()) == {1}
    sent = [int(out.split("sent ", 1)[1].split(",", 1)[0]) for out, _ in outputs]
    assert sum(sent) == count
    assert all(part > 0 for part in sent), f"one sender did all the work: {sent}"
