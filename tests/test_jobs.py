"""The periodic jobs decided from the database (syndicate.jobs), with a driven clock: month ends
in the site's time zone, a DST gap, a leap year, a worker down across two due digests, a run
left behind by a crash, two workers at once, and deferred deliveries retried when due."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from smtpserver import SmtpServer
from test_mail_send import drop_mail_section, outbox_messages, prepared, smtp_config, subscribe

from syndicate.clock import FrozenClock
from syndicate.config import Settings
from syndicate.digest import period as periods
from syndicate.jobs import digest_if_due, due_time, latest_due_period, retry_deliveries
from syndicate.store import Store

LONDON_NINE_JAN_1 = datetime(2016, 1, 1, 9, 0, tzinfo=UTC)  # 09:00 in London in winter


def with_schedule(settings: Settings, schedule: str, period: str = "month") -> Settings:
    digest = settings.digest.model_copy(update={"schedule": schedule, "period": period})
    return settings.model_copy(update={"digest": digest})


async def test_a_month_is_due_at_the_first_schedule_time_after_it_ends(project: Path) -> None:
    settings, store = await prepared(project, f"sqlite:///{project / 'var' / 'x.db'}")
    await store.close()
    tz = settings.site.tz
    # "0 9 1 * *" in Europe/London: December 2015 is due at 09:00 on 1 January, London time.
    before = latest_due_period(settings, LONDON_NINE_JAN_1 - timedelta(seconds=1))
    at = latest_due_period(settings, LONDON_NINE_JAN_1)
    assert before is not None and before[0].key == "2015-11"  # December not due yet
    assert at is not None and at[0].key == "2015-12" and at[1] == LONDON_NINE_JAN_1
    # In summer time the same schedule is 08:00 UTC.
    assert due_time(settings, periods.month("2016-03", tz)) == datetime(2016, 4, 1, 8, tzinfo=UTC)
    # A schedule time that does not exist (01:30 on the night clocks go forward) still fires,
    # once, after the period's end.
    gap = due_time(with_schedule(settings, "30 1 27 * *"), periods.month("2016-02", tz))
    assert gap.astimezone(UTC) == datetime(2016, 3, 27, 1, 30, tzinfo=UTC)
    # Leap years: February 2016 ends with the 29th.
    february = periods.month("2016-02", tz)
    assert february.end - february.start == timedelta(days=29)
    leap = latest_due_period(settings, datetime(2016, 3, 1, 9, tzinfo=UTC))
    assert leap is not None and leap[0].key == "2016-02"
    # Weeks: an ISO week is due at the first schedule time after its Sunday.
    weekly = with_schedule(settings, "0 8 * * 1", period="week")
    week = latest_due_period(weekly, datetime(2015, 12, 7, 8, tzinfo=UTC))
    assert week is not None and week[0].key == "2015-W49"


async def test_the_due_digest_is_sent_once(project: Path, database_url: str) -> None:
    settings, store = await prepared(project, database_url)
    async with store:
        await subscribe(store, "ann@example.org")
        clock = FrozenClock(LONDON_NINE_JAN_1 + timedelta(minutes=5))
        run = await digest_if_due(settings, store, clock, "worker-a")
        assert run is not None and run.period.key == "2015-12"
        assert run.report is not None and run.report.counts.sent == 1
        # Later, or after a restart: the run is done, nothing is sent again.
        clock.advance(timedelta(hours=6))
        assert await digest_if_due(settings, store, clock, "worker-b") is None
        finished = await store.get_run("digest:2015-12")
        assert finished is not None and finished.status == "done"
    assert [m["Subject"] for m in outbox_messages(settings)] == [
        "Riverside Commons News: December 2015"
    ]


async def test_a_worker_down_across_two_digests_sends_the_latest_once(
    project: Path, database_url: str
) -> None:
    settings, store = await prepared(project, database_url)
    async with store:
        await subscribe(store, "ann@example.org")
        # Down since before November's digest (1 December) until 20 January.
        clock = FrozenClock(datetime(2016, 1, 20, 12, tzinfo=UTC))
        run = await digest_if_due(settings, store, clock, "worker-a")
        assert run is not None and run.period.key == "2015-12"
        assert await digest_if_due(settings, store, clock, "worker-a") is None
        assert await store.issue("2015-11") is None  # the older one is not sent late
    assert len(outbox_messages(settings)) == 1


async def test_a_run_left_running_by_a_crash_is_taken_over(
    project: Path, database_url: str
) -> None:
    settings, store = await prepared(project, database_url)
    async with store:
        await subscribe(store, "ann@example.org")
        now = LONDON_NINE_JAN_1 + timedelta(minutes=1)
        assert await store.begin_run("digest:2015-12", "crashed-worker", now)
        run = await digest_if_due(settings, store, FrozenClock(now), "worker-b")
        assert run is not None and run.report is not None and run.report.counts.sent == 1


async def test_two_workers_on_one_database_send_each_message_once(
    project: Path, database_url: str
) -> None:
    settings, store = await prepared(project, database_url)
    async with store:
        for n in range(40):
            await subscribe(store, f"reader{n}@example.org")
    stores = [await Store.open(settings.database_url) for _ in range(2)]
    clock = FrozenClock(LONDON_NINE_JAN_1 + timedelta(minutes=1))
    try:
        await asyncio.gather(
            *(digest_if_due(settings, s, clock, f"worker-{n}") for n, s in enumerate(stores))
        )
    finally:
        for opened in stores:
            await opened.close()
    recipients = Counter(m["To"].addresses[0].addr_spec for m in outbox_messages(settings))
    assert len(recipients) == 40 and set(recipients.values()) == {1}


async def test_deferred_deliveries_are_retried_when_due(
    project: Path, database_url: str, smtp_server: SmtpServer
) -> None:
    drop_mail_section(project)
    extra = smtp_config(smtp_server, 'retry_backoff = "10m"', pool=1)
    settings, store = await prepared(project, database_url, extra)
    async with store:
        await subscribe(store, "ann@example.org")
        clock = FrozenClock(LONDON_NINE_JAN_1)
        smtp_server.fail(1, code=451)
        run = await digest_if_due(settings, store, clock, "worker-a")
        assert run is not None and run.report is not None and run.report.counts.deferred == 1
        assert await retry_deliveries(settings, store, clock) == []  # not due yet
        clock.advance(timedelta(minutes=10))
        [retried] = await retry_deliveries(settings, store, clock)
        assert retried.counts.sent == 1 and retried.ledger == {"sent": 1}
        assert await retry_deliveries(settings, store, clock) == []
    assert smtp_server.recipients() == ["ann@example.org"]
