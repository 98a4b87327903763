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
from test_mail_send import NOW, PERIOD, drop_mail_section, prepared, smtp_config

from syndicate import subscribers as service
from syndicate.mail.send import MESSAGES_PER_CONNECTION_BATCH
from syndicate.store import Store

POOL = 2


async def with_subscribers(project: Path, database_url: str, server: SmtpServer, count: int):
    drop_mail_section(project)
    settings, store = await prepared(project, database_url, smtp_config(server, pool=POOL))
    async with store:
        for n in range(count):
            await service.add(store, f"reader{n:04d}@example.org", NOW, confirmed=True)
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


@pytest.mark.timeout(180)
async def test_a_killed_send_resumes_and_sends_the_rest_once(
    project: Path, database_url: str, smtp_server: SmtpServer
) -> None:
    count = 300
    settings = await with_subscribers(project, database_url, smtp_server, count)
    smtp_server.slow(0.01)  # 10 ms a message: 300 messages over 2 connections take 1.5 s
    killed = start_send(settings.path)
    await smtp_server.wait_for(80, within=60)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=10)
    assert killed.returncode == -signal.SIGKILL
    before_resume = len(smtp_server.messages)
    assert before_resume < count, "the kill came too late to test anything"

    smtp_server.clear_script()
    resumed = start_send(settings.path)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err

    copies = message_ids_by_recipient(smtp_server)
    assert len(copies) == count  # everyone got the issue
    twice = {address: ids for address, ids in copies.items() if len(ids) > 1}
    # Only messages in flight at the kill may go twice: at most one claimed batch, and
    # never more than two copies; a second copy has the same Message-ID as the first.
    assert len(twice) <= POOL * MESSAGES_PER_CONNECTION_BATCH
    assert all(len(ids) == 2 and ids[0] == ids[1] for ids in twice.values())
    async with await Store.open(settings.database_url) as store:
        issue = await store.issue(PERIOD)
        assert issue is not None
        assert await store.delivery_counts(issue.id) == {"sent": count}
    assert f"sent {count - before_resume + len(twice)}," in out


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
