"""`syndicate run` as real processes: the bundled config served and reloaded, the signals,
and two workers sharing the real PostgreSQL through a due digest. Mail goes to a real SMTP
server (aiosmtpd on 127.0.0.1), feeds come from files or a real HTTP server on 127.0.0.1.

These workers run on the real clock, so the digest test dates its posts in whichever period
is due today."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from httpserver import HttpServer, never_ending, unused_url
from smtpserver import SmtpServer
from test_mail_send import configure, drop_mail_section, smtp_config
from test_worker import eventually, without_source

from syndicate import subscribers as service
from syndicate.config import Settings
from syndicate.digest.context import DigestPeriod
from syndicate.jobs import latest_due_period
from syndicate.store import Store

ENV = {**os.environ, "SYNDICATE_SECRET": "test-secret-shared-by-the-workers"}


class Process:
    """A `syndicate` process whose output lines are collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._readers = [
            asyncio.create_task(self._read(proc.stdout, self.lines)),
            asyncio.create_task(self._read(proc.stderr, self.errors)),
        ]

    @classmethod
    async def start(cls, config: Path, *args: str) -> Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "syndicate",
            "--config",
            str(config),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=ENV,
            start_new_session=True,  # a group of its own, so kill() also ends its parsers
        )
        return cls(proc)

    @staticmethod
    async def _read(stream: asyncio.StreamReader | None, into: list[str]) -> None:
        assert stream is not None
        while line := await stream.readline():
            into.append(line.decode().rstrip("\n"))

    async def line(self, pattern: str, within: float = 30) -> re.Match[str]:
        """The first output line matching `pattern` (a regex), waiting for it if need be."""
        deadline = time.monotonic() + within
        while True:
            for line in self.lines:
                if found := re.search(pattern, line):
                    return found
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"no line matching {pattern!r}:\n" + "\n".join(self.lines + self.errors)
                )
            await asyncio.sleep(0.05)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    async def wait(self, within: float) -> int:
        code = await asyncio.wait_for(self.proc.wait(), within)
        await asyncio.gather(*self._readers)
        return code

    async def kill(self) -> None:
        """After a test, pass or fail: nothing of the worker may outlive it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()
        for reader in self._readers:
            reader.cancel()


@pytest.mark.timeout(90)
async def test_the_bundled_config_serves_reloads_and_stops_cleanly(project: Path) -> None:
    config = project / "config.toml"
    worker = await Process.start(config, "run", "--port", "0")
    try:
        url = (await worker.line(r"^web: (http://\S+)")).group(1)
        await worker.line(r"^next digest: \d{4}-\d\d-01 09:00 (GMT|BST) \(Europe/London\)")
        await worker.line(r"poll riverside-news: 14 new, 0 updated")
        await worker.line(r"published to .*feeds: \d+ written, 0 unchanged, 0 removed")
        async with httpx.AsyncClient(base_url=url) as client:
            health = (await client.get("/healthz")).json()
            assert "poll:riverside-news" in health["worker"]["next_runs"]
            feed = await client.get("/feeds/index.rss")
            assert feed.status_code == 200 and b"<rss" in feed.content

        good = config.read_text()
        config.write_text(good.replace('every = "2h"', 'every = "often"'))
        await worker.line(r"config.toml changed: not reloaded, 1 problem\(s\)")
        assert any("sources[2].every: not a duration: 'often'" in e for e in worker.errors)
        renamed = good.replace('title = "Riverside Commons News"', 'title = "Riverside Weekly"', 1)
        config.write_text(renamed.replace('ttl = "60m"', 'ttl = "5m"'))
        without_source(config, "field-notes")
        await worker.line(r"config.toml changed: reloaded \(source field-notes: no longer polled\)")
        async with httpx.AsyncClient(base_url=url) as client:  # the web app follows it
            assert "<title>Riverside Weekly" in (await client.get("/")).text
            feed = await client.get("/feeds/index.rss")
            assert feed.headers["cache-control"] == "public, max-age=300"
        worker.signal(signal.SIGHUP)
        await worker.line(r"SIGHUP: reloaded$")

        worker.signal(signal.SIGTERM)
        assert await worker.wait(within=30) == 0, "\n".join(worker.errors)
        assert worker.lines[-1] == "stopped"
    finally:
        await worker.kill()


@pytest.mark.timeout(60)
async def test_a_stop_waits_for_work_in_flight_then_cancels_it(
    project: Path, http_server: HttpServer
) -> None:
    # The poll was in flight (see _polling_a_hung_source); the stop waited for it, cancelled
    # it when its grace ran out, and exited cleanly. The grace is STOP_GRACE (8 s) and the
    # web app's WEB_GRACE the rest of 10 s; how long a stop takes is no test's to time.
    worker = await _polling_a_hung_source(project, http_server)
    try:
        worker.signal(signal.SIGINT)
        assert await worker.wait(within=30) == 0, "\n".join(worker.errors)
        assert any("stopping: cancelled poll:hung" in e for e in worker.errors)
    finally:
        await worker.kill()


@pytest.mark.timeout(60)
async def test_a_second_signal_exits_at_once(project: Path, http_server: HttpServer) -> None:
    worker = await _polling_a_hung_source(project, http_server)
    try:
        worker.signal(signal.SIGTERM)
        await worker.line(r"^stopping:")
        worker.signal(signal.SIGTERM)
        assert await worker.wait(within=30) == 128 + signal.SIGTERM
        assert "SIGTERM again: exiting at once" in worker.errors
        # At once: the hung poll was never waited out to its cancellation.
        assert not any("stopping: cancelled" in e for e in worker.errors)
    finally:
        await worker.kill()


@pytest.mark.timeout(120)
async def test_sigterm_mid_send_records_what_went_and_a_restart_sends_the_rest(
    project: Path, database_url: str, smtp_server: SmtpServer
) -> None:
    count = 200
    drop_mail_section(project)
    settings = configure(project, database_url, smtp_config(smtp_server, pool=2))
    period = await _due_digest_with_posts(project, settings, database_url, count)
    smtp_server.slow(0.02)  # 200 messages over 2 connections: about 2 s
    worker = await Process.start(settings.path, "run", "--no-web")
    try:
        await smtp_server.wait_for(20, within=60)
        worker.signal(signal.SIGTERM)
        assert await worker.wait(within=30) == 0, "\n".join(worker.errors)
    finally:
        await worker.kill()
    went = len(smtp_server.messages)
    assert went < count, "the stop came too late to test anything"
    async with await Store.open(database_url) as store:
        issue = await store.issue(period.key)
        assert issue is not None
        # Every message that went is recorded; nothing is left claimed.
        assert await store.delivery_counts(issue.id) == {"sent": went, "pending": count - went}

    smtp_server.clear_script()
    restarted = await Process.start(settings.path, "run", "--no-web")
    try:
        await smtp_server.wait_for(count, within=60)
        await restarted.line(rf"digest {period.key}: sent {count - went}, ")
        restarted.signal(signal.SIGTERM)
        assert await restarted.wait(within=10) == 0
    finally:
        await restarted.kill()
    recipients = Counter(smtp_server.recipients())
    assert len(recipients) == count and set(recipients.values()) == {1}


def test_once_does_what_is_due_and_exits_1_when_something_failed(project: Path) -> None:
    import subprocess

    settings = configure(
        project,
        f"sqlite:///{project / 'var' / 'syndicate.db'}",
        f'\n[[sources]]\nname = "away"\nurl = "{unused_url("/feed.rss")}"\n',
    )
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(settings.path), "run", "--once"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "polled 4 of 4 sources: 28 new, 0 updated, 0 unchanged posts, 1 failed" in result.stdout
    assert "  away: " in result.stdout
    assert (project / "feeds" / "index.rss").is_file()


@pytest.mark.postgresql
@pytest.mark.timeout(180)
async def test_two_workers_send_a_due_digest_once_to_every_subscriber(
    project: Path, postgres_url: str, smtp_server: SmtpServer
) -> None:
    count = 300
    drop_mail_section(project)
    settings = configure(project, postgres_url, smtp_config(smtp_server, pool=2))
    period = await _due_digest_with_posts(project, settings, postgres_url, count)
    smtp_server.slow(0.005)  # long enough a send that both workers take part

    workers = [
        await Process.start(settings.path, "run", "--no-web"),
        await Process.start(settings.path, "run", "--port", "0"),
    ]
    try:
        import sys as _s

        print("waiting", file=_s.stderr)
        try:
            await smtp_server.wait_for(count, within=60)
        finally:
            print(
                len(smtp_server.messages),
                workers[0].lines,
                workers[0].errors[-5:],
                workers[1].lines,
                workers[1].errors[-5:],
                file=_s.stderr,
            )
        async with await Store.open(postgres_url) as store:
            issue = await store.issue(period.key)
            assert issue is not None and issue.subject.endswith(period.label)
            for _ in range(100):  # the last outcomes are recorded just after the sends
                if (await store.delivery_counts(issue.id)) == {"sent": count}:
                    break
                await asyncio.sleep(0.1)
            assert await store.delivery_counts(issue.id) == {"sent": count}
        for worker in workers:
            await worker.line(r"^running:")
            worker.signal(signal.SIGTERM)
        for worker in workers:
            assert await worker.wait(within=10) == 0, "\n".join(worker.errors)
    finally:
        for worker in workers:
            await worker.kill()
    recipients = Counter(smtp_server.recipients())
    assert len(recipients) == count and set(recipients.values()) == {1}
    sent = [
        int(found.group(1))
        for worker in workers
        for line in worker.lines
        if (found := re.search(rf"digest {period.key}: sent (\d+),", line))
    ]
    assert sum(sent) == count
    async with await Store.open(postgres_url) as store:
        run = await store.get_run(f"digest:{period.key}")
        assert run is not None and run.status == "done"


async def _polling_a_hung_source(project: Path, http_server: HttpServer) -> Process:
    """A worker busy with a poll that never ends (a feed that trickles forever)."""
    http_server.route("/hung.rss", never_ending(interval=0.5))
    feed = http_server.url_for("/hung.rss")
    settings = configure(
        project,
        f"sqlite:///{project / 'var' / 'syndicate.db'}",
        f'\n[[sources]]\nname = "hung"\nurl = "{feed}"\n',
    )
    worker = await Process.start(settings.path, "run", "--no-web")
    try:
        await worker.line(r"^running:")
        await eventually(lambda: bool(http_server.requests_to("/hung.rss")), within=20)
    except BaseException:
        await worker.kill()
        raise
    return worker


async def _due_digest_with_posts(
    project: Path, settings: Settings, database_url: str, subscribers: int
) -> DigestPeriod:
    """A source with posts in the period whose digest is due today, and active subscribers."""
    due = latest_due_period(settings, datetime.now(UTC))
    assert due is not None
    period, _ = due
    posted = period.start + (period.end - period.start) / 2
    (project / "examples" / "recent.rss").write_text(_feed_posted_at(posted))
    with settings.path.open("a") as file:
        file.write('\n[[sources]]\nname = "recent"\nurl = "examples/recent.rss"\n')
    async with await Store.open(database_url) as store:
        for n in range(subscribers):
            await service.add(store, f"reader{n:04d}@example.org", posted, confirmed=True)
    return period


def _feed_posted_at(moment: datetime) -> str:
    items = "".join(
        f"<item><title>News {n}</title><link>https://recent.example/{n}</link>"
        f"<guid>https://recent.example/{n}</guid><pubDate>{format_datetime(moment)}</pubDate>"
        f"<description>Item {n} of the month.</description></item>"
        for n in range(3)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Recent</title>'
        f"<link>https://recent.example/</link>{items}</channel></rss>"
    )
