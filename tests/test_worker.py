"""The worker in-process (syndicate.worker, syndicate.reload), with a driven clock for what is
due, the real SQLite file and PostgreSQL, a real SMTP server and a real HTTP server.

The scheduler fires on the system clock; these tests only ever wait for jobs it runs at
once (the first round, the first delivery check), so none of them sleeps for time to pass.
What the schedule says about later is read from the scheduler's jobs.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from httpserver import HttpServer, Response, never_ending
from smtpserver import SmtpServer
from sqlalchemy.engine import make_url
from test_mail_send import (
    NOW,
    configure,
    drop_mail_section,
    outbox_messages,
    smtp_config,
    subscribe,
)

from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.store import Store
from syndicate.worker import Worker

FEED = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Partner</title><link>https://partner.example/</link>
<item><title>Reed beds</title><link>https://partner.example/reed-beds</link>
<guid>https://partner.example/reed-beds</guid><pubDate>Tue, 15 Dec 2015 10:00:00 GMT</pubDate>
<description>Planting reed beds.</description></item>
</channel></rss>"""


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    """Wait for something the worker does at once (in real time, but never for a schedule)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def running(settings: Settings, clock: FrozenClock, owner: str) -> AsyncIterator[Worker]:
    async with await Store.open(settings.database_url) as store:
        worker = Worker(settings, store, clock, owner=owner, on_event=logging.getLogger().info)
        worker.publish_delay = 0
        await worker.start()
        try:
            yield worker
        finally:
            await worker.stop()


def next_run(worker: Worker, job: str) -> datetime:
    found = worker.scheduler.get_job(job)
    assert found is not None, f"no job {job}"
    return found.next_run_time


def first_day_at_seven(tz: ZoneInfo, wanted: Callable[[date], bool]) -> datetime:
    """07:00 (in `tz`) on the first day from today that is `wanted`, not yet past."""
    now = datetime.now(tz)
    day = now.date()
    while True:
        moment = datetime(day.year, day.month, day.day, 7, tzinfo=tz)
        if wanted(day) and moment > now:
            return moment
        day += timedelta(days=1)


def without_source(config: Path, name: str) -> None:
    text = config.read_text()
    start = text.index(f'name = "{name}"')
    block = text.rindex("[[sources]]", 0, start)
    end = text.find("\n[", start)  # the next table, or the end of the file
    end = len(text) if end == -1 else end
    config.write_text(text[:block] + text[end:])


async def test_start_polls_publishes_then_sends_the_missed_digest_once(
    project: Path, database_url: str
) -> None:
    settings = configure(project, database_url)
    async with await Store.open(settings.database_url) as store:
        for n in range(3):
            await subscribe(store, f"reader{n}@example.org")
    # 09:30 on 1 January: December's digest has been due for half an hour, nothing ran.
    clock = FrozenClock(NOW + timedelta(minutes=30))
    async with running(settings, clock, "worker-a") as worker:
        await asyncio.wait_for(worker.caught_up.wait(), 20)
        assert (project / "feeds" / "index.atom").is_file()
        await eventually(lambda: "deliveries" in worker.last)
        assert worker.last["deliveries"]["ok"]
        # The issue's web copy is published and then listed with the past issues.
        issues = project / "feeds" / "digest" / "index.html"
        await eventually(lambda: issues.is_file() and b"2015-12.html" in issues.read_bytes())
        # Each source's next poll is its `every` after this one, plus at most a tenth of it.
        real_now = datetime.now(UTC)
        for source in settings.sources:
            delay = next_run(worker, f"poll:{source.name}") - real_now
            assert source.every * 0.99 < delay <= source.every * 1.1 + timedelta(seconds=1)
        # The digest's next time is the schedule's: 09:00 London on a 1st.
        digest_at = next_run(worker, "digest").astimezone(settings.site.tz)
        assert (digest_at.day, digest_at.hour, digest_at.minute) == (1, 9, 0)
        state = worker.state()
        assert state["owner"] == "worker-a" and "poll:riverside-news" in state["next_runs"]
    messages = outbox_messages(settings)
    assert sorted(m["To"].addresses[0].addr_spec for m in messages) == [
        "reader0@example.org",
        "reader1@example.org",
        "reader2@example.org",
    ]
    assert {m["Subject"] for m in messages} == {"Riverside Commons News: December 2015"}

    # A restart the same day: nothing is polled (not due yet) and nothing is sent again.
    clock.advance(timedelta(minutes=10))
    async with running(settings, clock, "worker-b") as worker:
        await asyncio.wait_for(worker.caught_up.wait(), 20)
        await eventually(lambda: "deliveries" in worker.last)
        assert not any(name.startswith("poll:") for name in worker.last)
    assert len(outbox_messages(settings)) == 3


async def test_two_workers_poll_a_source_once_between_them(
    project: Path, database_url: str, http_server: HttpServer
) -> None:
    http_server.route("/partner.rss", Response(body=FEED))
    settings = configure(
        project,
        database_url,
        f'\n[[sources]]\nname = "partner"\nurl = "{http_server.url_for("/partner.rss")}"\n',
    )
    clock = FrozenClock(NOW - timedelta(days=1))  # no digest due: only polling
    async with (
        running(settings, clock, "worker-a") as first,
        running(settings, clock, "worker-b") as second,
    ):
        await asyncio.wait_for(asyncio.gather(first.caught_up.wait(), second.caught_up.wait()), 20)
    assert len(http_server.requests_to("/partner.rss")) == 1
    async with await Store.open(settings.database_url) as store:
        assert (await store.post_counts())["partner"] == 1
        lease = await store.get_run("poll:partner")
        assert lease is not None and lease.status == "done"  # released


async def test_a_reload_adds_drops_and_reschedules_and_a_bad_config_changes_nothing(
    project: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from syndicate.reload import ConfigWatcher

    settings = configure(project, database_url)
    config = settings.path
    clock = FrozenClock(NOW - timedelta(days=1))
    async with running(settings, clock, "worker-a") as worker:
        await asyncio.wait_for(worker.caught_up.wait(), 20)
        events: list[str] = []
        watcher = ConfigWatcher(config, worker, on_event=events.append)

        good = config.read_text()
        config.write_text(good.replace('schedule = "0 9 1 * *"', 'schedule = "0 7 2 * *"', 1))
        without_source(config, "field-notes")
        (project / "examples" / "partner.rss").write_bytes(FEED)
        with config.open("a") as file:
            file.write('\n[[sources]]\nname = "partner"\nurl = "examples/partner.rss"\n')
        assert await watcher.reload("SIGHUP")
        assert events[-1] == (
            "SIGHUP: reloaded (source field-notes: no longer polled; source partner: added; "
            'digest schedule: "0 7 2 * *")'
        )
        assert worker.scheduler.get_job("poll:field-notes") is None
        digest_at = next_run(worker, "digest").astimezone(settings.site.tz)
        assert (digest_at.day, digest_at.hour) == (2, 7)
        await eventually(lambda: "poll:partner" in worker.last)
        assert worker.last["poll:partner"]["ok"]
        assert next_run(worker, "poll:partner") > datetime.now(UTC) + timedelta(minutes=29)

        reloaded = worker.settings
        config.write_text(config.read_text().replace('every = "1h"', 'every = "soon"'))
        with caplog.at_level(logging.ERROR, logger="syndicate.reload"):
            assert not await watcher.reload("config.toml changed")
        assert "sources[1].every: not a duration: 'soon'" in caplog.text
        assert events[-1].startswith("config.toml changed: not reloaded, 1 problem(s)")
        assert worker.settings is reloaded
        assert worker.scheduler.get_job("poll:partner") is not None

        # A schedule that never fires is a config error: nothing changes.
        fixed = config.read_text().replace('every = "soon"', 'every = "1h"')
        config.write_text(fixed.replace('schedule = "0 7 2 * *"', 'schedule = "0 7 31 2 *"'))
        assert not await watcher.reload("config.toml changed")
        assert 'digest.schedule: "0 7 31 2 *" never fires' in caplog.text
        assert next_run(worker, "digest").astimezone(settings.site.tz).day == 2
        # Both days given: the 2nd or a Friday, whichever comes first (cron's OR).
        config.write_text(fixed.replace('schedule = "0 7 2 * *"', 'schedule = "0 7 2 * fri"'))
        assert await watcher.reload("config.toml changed")
        assert next_run(worker, "digest") == first_day_at_seven(
            settings.site.tz, lambda day: day.day == 2 or day.weekday() == 4
        )


@contextmanager
def sources_locked(database_url: str) -> Iterator[None]:
    """Another process holds a write lock on the sources: a real lock in the real database,
    which the worker's writes wait for (busy or lock timeout, shortened by the caller) and
    then fail with, while its reads go on."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(str(url.database), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the write lock; WAL readers still read
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE sources IN EXCLUSIVE MODE")  # SELECT still allowed
        try:
            yield
        finally:
            holder.rollback()


async def test_a_reload_the_database_refuses_keeps_the_old_config_until_it_can_switch(
    project: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from syndicate import reload
    from syndicate.store import engine

    # A locked database fails a write after its busy timeout (SQLite) or lock timeout
    # (PostgreSQL, set for the worker's sessions): shortened from 10 s to keep this quick.
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 200)
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE \"{url.database}\" SET lock_timeout = '200ms'")
    monkeypatch.setattr(reload, "WATCH_EVERY", 0.05)
    settings = configure(project, database_url)
    config = settings.path
    clock = FrozenClock(NOW - timedelta(days=1))
    async with running(settings, clock, "worker-a") as worker:
        await asyncio.wait_for(worker.caught_up.wait(), 20)
        old_settings, old_poller = worker.settings, worker._poller
        old_digest = next_run(worker, "digest")
        old_polls = {job.id for job in worker.scheduler.get_jobs() if job.id.startswith("poll:")}
        assert old_polls == {"poll:riverside-news", "poll:wetland-alliance", "poll:field-notes"}

        events: list[str] = []
        watcher = reload.ConfigWatcher(settings.path, worker, on_event=events.append)
        followed: list[Settings] = []  # what the web app would be told

        def refusing(settings: Settings) -> None:
            raise RuntimeError("cannot follow")

        worker.on_reload += [refusing, followed.append]
        # The new config drops a source, adds one, moves the digest and changes [ingest].
        text = config.read_text().replace('schedule = "0 9 1 * *"', 'schedule = "0 7 2 * *"', 1)
        config.write_text(text.replace("concurrency = 16", "concurrency = 3", 1))
        without_source(config, "field-notes")
        (project / "examples" / "partner.rss").write_bytes(FEED)
        with config.open("a") as file:
            file.write('\n[[sources]]\nname = "partner"\nurl = "examples/partner.rss"\n')

        caplog.set_level(logging.DEBUG, logger="syndicate.reload")

        def failures() -> int:
            return sum(r.message == "the reload failed" for r in caplog.records)

        watching = asyncio.create_task(watcher.watch())
        try:
            with sources_locked(database_url):
                assert not await watcher.reload("SIGHUP")
                # The watcher tries again at each look; said once, not at every try.
                await eventually(lambda: failures() >= 4, within=30)
                assert len(events) == 2, events
                assert events[0].startswith("SIGHUP: not reloaded: ")
                assert "lock" in events[0]
                assert events[0].endswith(
                    "; carrying on with the running config "
                    "(tried again until it works, or at the next change or SIGHUP)"
                )
                assert events[1].startswith("config.toml changed: not reloaded: ")
                # Nothing of the new config is in use: settings, schedule, poller, rows.
                assert worker.settings is old_settings
                assert worker._poller is old_poller
                assert next_run(worker, "digest") == old_digest
                polls = {j.id for j in worker.scheduler.get_jobs() if j.id.startswith("poll:")}
                assert polls == old_polls
                assert await worker.store.source_state("field-notes") is not None
                assert await worker.store.source_state("partner") is None
                assert followed == []
            # The lock is gone: the next look switches to the new config, all of it.
            await eventually(lambda: events[-1].startswith("config.toml changed: reloaded"))
        finally:
            watching.cancel()
        assert events[-1] == (
            "config.toml changed: reloaded (source field-notes: no longer polled; "
            'source partner: added; digest schedule: "0 7 2 * *")'
        )
        assert worker.settings.ingest.concurrency == 3
        # Followers are told once; one that fails is logged and undoes nothing.
        assert followed == [worker.settings]
        assert "did not follow the reload" in caplog.text
        assert worker._poller is not old_poller
        digest_at = next_run(worker, "digest").astimezone(settings.site.tz)
        assert (digest_at.day, digest_at.hour) == (2, 7)
        assert worker.scheduler.get_job("poll:field-notes") is None
        await eventually(lambda: "poll:partner" in worker.last)
        assert worker.last["poll:partner"]["ok"]
        assert await worker.store.source_state("field-notes") is None


async def test_a_source_dropped_while_it_is_polled_is_not_polled_again(
    project: Path, database_url: str, http_server: HttpServer
) -> None:
    answer = threading.Event()

    def slowly(request: object) -> Response:
        answer.wait(30)  # in the server's thread: the poll is in flight until the test says
        return Response(body=FEED)

    http_server.route("/slow.rss", slowly)
    settings = configure(
        project,
        database_url,
        f'\n[[sources]]\nname = "slow"\nurl = "{http_server.url_for("/slow.rss")}"\n',
    )
    clock = FrozenClock(NOW - timedelta(days=1))
    async with running(settings, clock, "worker-a") as worker:
        await eventually(lambda: bool(http_server.requests_to("/slow.rss")))
        without_source(settings.path, "slow")
        assert await worker.reload(load_settings(settings.path)) == [
            "source slow: no longer polled"
        ]
        assert "poll:slow" not in worker.last  # the reload came while the poll was in flight
        answer.set()
        await eventually(lambda: "poll:slow" in worker.last)
        assert worker.scheduler.get_job("poll:slow") is None


async def test_saving_the_config_reloads_it(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syndicate import reload

    monkeypatch.setattr(reload, "WATCH_EVERY", 0.05)
    settings = configure(project, database_url)
    clock = FrozenClock(NOW - timedelta(days=1))
    async with running(settings, clock, "worker-a") as worker:
        events: list[str] = []
        watching = asyncio.create_task(
            reload.ConfigWatcher(settings.path, worker, on_event=events.append).watch()
        )
        try:
            without_source(settings.path, "wetland-alliance")
            await eventually(lambda: bool(events))
        finally:
            watching.cancel()
        assert events == [
            "config.toml changed: reloaded (source wetland-alliance: no longer polled)"
        ]
        assert [s.name for s in worker.settings.sources] == ["riverside-news", "field-notes"]


async def test_a_stop_mid_send_finishes_in_flight_and_a_restart_sends_the_rest_once(
    project: Path, database_url: str, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    drop_mail_section(project)
    settings = configure(project, database_url, smtp_config(smtp_server, pool=2))
    async with await Store.open(settings.database_url) as store:
        for n in range(200):
            await subscribe(store, f"reader{n:03d}@example.org")
    smtp_server.slow(0.02)  # 200 messages over 2 connections: about 2 s
    clock = FrozenClock(NOW + timedelta(minutes=30))
    async with await Store.open(settings.database_url) as store:
        worker = Worker(settings, store, clock, owner="worker-a")
        worker.publish_delay = 0
        await worker.start()
        await smtp_server.wait_for(20, within=30)
        with caplog.at_level(logging.WARNING, logger="syndicate.worker"):
            await worker.stop()
        # What was in flight (a 20 ms transaction) finished within the grace: nothing cut.
        assert not [r for r in caplog.records if "stopping: cancelled" in r.getMessage()]
        sent_before_restart = len(smtp_server.messages)
        assert sent_before_restart < 200, "the stop came too late to test anything"
        ledger = await store.delivery_counts((await store.issue("2015-12")).id)
        assert "sending" not in ledger  # released, not left for a lease to expire
        assert ledger["sent"] == sent_before_restart
        run = await store.get_run("digest:2015-12")
        assert run is not None and run.status == "failed"  # to be taken up again
    smtp_server.clear_script()
    async with running(settings, clock, "worker-b") as worker:
        await smtp_server.wait_for(200, within=30)
        await eventually(lambda: "deliveries" in worker.last)
    recipients = Counter(smtp_server.recipients())
    assert len(recipients) == 200 and set(recipients.values()) == {1}


async def test_the_worker_retries_a_deferred_delivery_when_it_is_due(
    project: Path, database_url: str, smtp_server: SmtpServer
) -> None:
    drop_mail_section(project)
    extra = smtp_config(smtp_server, 'retry_backoff = "10m"', pool=1)
    settings = configure(project, database_url, extra)
    async with await Store.open(settings.database_url) as store:
        await subscribe(store, "flaky@example.org")
        await subscribe(store, "fine@example.org")
    smtp_server.fail(1, code=451, stage="RCPT")  # the first message meets a 451
    clock = FrozenClock(NOW + timedelta(minutes=30))
    async with running(settings, clock, "worker-a") as worker:
        await smtp_server.wait_for(1, within=20)
        await eventually(lambda: "deliveries" in worker.last)
        deliveries = worker.scheduler.get_job("deliveries")
        assert deliveries is not None

        # The minutely check before the retry is due sends nothing...
        clock.advance(timedelta(minutes=5))
        worker.last.clear()
        deliveries.modify(next_run_time=datetime.now(UTC))
        await eventually(lambda: "deliveries" in worker.last)
        assert len(smtp_server.messages) == 1
        # ... and the one after it sends the deferred message.
        clock.advance(timedelta(minutes=5))
        worker.last.clear()
        deliveries.modify(next_run_time=datetime.now(UTC))
        await smtp_server.wait_for(2, within=20)
    assert sorted(smtp_server.recipients()) == ["fine@example.org", "flaky@example.org"]


async def test_a_stop_cancels_a_hung_poll_and_releases_its_lease(
    project: Path, database_url: str, http_server: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    http_server.route("/hung.rss", never_ending(interval=0.5))
    settings = configure(
        project,
        database_url,
        f'\n[[sources]]\nname = "hung"\nurl = "{http_server.url_for("/hung.rss")}"\n',
    )
    clock = FrozenClock(NOW - timedelta(days=1))
    async with await Store.open(settings.database_url) as store:
        worker = Worker(settings, store, clock, owner="worker-a")
        await worker.start()
        await eventually(lambda: bool(http_server.requests_to("/hung.rss")))
        with caplog.at_level(logging.WARNING, logger="syndicate.worker"):
            await worker.stop(grace=0.5)
        # Cut off at its grace, rather than left to run (or finishing: it never ends).
        assert "stopping: cancelled poll:hung" in [r.getMessage() for r in caplog.records]
        lease = await store.get_run("poll:hung")
        assert lease is not None and lease.status == "done"
        assert await store.lease_run(
            "poll:hung", "next", clock.now(), expired_before=clock.now() - timedelta(hours=1)
        )


def test_settings_reload_sees_the_new_file(project: Path) -> None:
    # Guards the helper above: without_source really removes exactly one block.
    config = project / "config.toml"
    without_source(config, "field-notes")
    assert [s.name for s in load_settings(config).sources] == [
        "riverside-news",
        "wetland-alliance",
    ]
