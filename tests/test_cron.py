"""Crontab expressions read the crontab way (syndicate.cron), not APScheduler 3's: days of the
week, day of month *or* day of week, and schedules that can never fire refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger

from syndicate.cron import NeverFires, cron_trigger

MONDAY = datetime(2015, 12, 7, tzinfo=UTC)


def weekdays(expression: str) -> list[str]:
    """The names of the days the expression fires on in the week from MONDAY."""
    trigger = cron_trigger(expression, "UTC")
    fired, moment = [], MONDAY - timedelta(seconds=1)
    while (moment := trigger.get_next_fire_time(None, moment + timedelta(seconds=1))) < (
        MONDAY + timedelta(days=7)
    ):
        fired.append(moment.strftime("%a"))
    return fired


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        ("0 8 * * 1", ["Mon"]),
        ("0 8 * * 0", ["Sun"]),
        ("0 8 * * 7", ["Sun"]),
        ("0 8 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 8 * * */2", ["Tue", "Thu", "Sat", "Sun"]),
        ("0 8 * * 1,3", ["Mon", "Wed"]),
        ("0 8 * * mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 8 * * *", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
    ],
)
def test_days_of_the_week_as_cron_means_them(expression: str, days: list[str]) -> None:
    assert weekdays(expression) == days


@pytest.mark.parametrize("bad", ["0 8 * *", "0 8 * * 8", "0 8 * * 5-2", "61 * * * *"])
def test_mistakes_are_value_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        cron_trigger(bad, "UTC")


def fire_times(expression: str, start: datetime, end: datetime, tz: str = "UTC") -> list[str]:
    """Every time the expression fires from start (inclusive) to end, as "Mon 2026-12-07 09:00"."""
    trigger = cron_trigger(expression, tz)
    fired: list[str] = []
    moment = trigger.get_next_fire_time(None, start)
    while moment is not None and moment < end:
        fired.append(moment.strftime("%a %Y-%m-%d %H:%M"))
        moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
    return fired


DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)
FEBRUARY = datetime(2027, 2, 1, tzinfo=UTC)


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # Vixie cron: "0 9 1 * MON" is 09:00 on the 1st of every month *and* every Monday.
    assert fire_times("0 9 1 * MON", DECEMBER, FEBRUARY + timedelta(days=10)) == [
        "Tue 2026-12-01 09:00",
        "Mon 2026-12-07 09:00",
        "Mon 2026-12-14 09:00",
        "Mon 2026-12-21 09:00",
        "Mon 2026-12-28 09:00",
        "Fri 2027-01-01 09:00",
        "Mon 2027-01-04 09:00",
        "Mon 2027-01-11 09:00",
        "Mon 2027-01-18 09:00",
        "Mon 2027-01-25 09:00",
        "Mon 2027-02-01 09:00",  # both at once: fires once
        "Mon 2027-02-08 09:00",
    ]
    # Friday or the 13th, numeric weekday read the crontab way (5 is Friday).
    assert fire_times("0 9 13 * 5", DECEMBER, DECEMBER + timedelta(days=21)) == [
        "Fri 2026-12-04 09:00",
        "Fri 2026-12-11 09:00",
        "Sun 2026-12-13 09:00",
        "Fri 2026-12-18 09:00",
    ]
    # The month still applies to both: the 1st of January and Sundays in January.
    assert fire_times("0 9 1 1 0", DECEMBER, FEBRUARY) == [
        "Fri 2027-01-01 09:00",
        "Sun 2027-01-03 09:00",
        "Sun 2027-01-10 09:00",
        "Sun 2027-01-17 09:00",
        "Sun 2027-01-24 09:00",
        "Sun 2027-01-31 09:00",
    ]


def test_a_field_led_by_a_star_still_narrows_the_other() -> None:
    # As in Vixie cron (Debian's cron): "*/2" counts as unrestricted, so the two are ANDed:
    # odd days of the month that are Mondays.
    assert fire_times("0 9 */2 * 1", DECEMBER, FEBRUARY) == [
        "Mon 2026-12-07 09:00",
        "Mon 2026-12-21 09:00",
        "Mon 2027-01-11 09:00",
        "Mon 2027-01-25 09:00",
    ]
    assert fire_times("0 9 1-7 * */7", DECEMBER, FEBRUARY) == [  # the first Sunday
        "Sun 2026-12-06 09:00",
        "Sun 2027-01-03 09:00",
    ]


def test_an_impossible_day_with_a_weekday_fires_on_the_weekday() -> None:
    # "31 2 mon": no February 31st, but Mondays in February are as cron means.
    assert fire_times("0 9 31 2 mon", FEBRUARY, FEBRUARY + timedelta(days=366)) == [
        "Mon 2027-02-01 09:00",
        "Mon 2027-02-08 09:00",
        "Mon 2027-02-15 09:00",
        "Mon 2027-02-22 09:00",
    ]


@pytest.mark.parametrize(
    ("expression", "start", "days", "expected"),
    [
        ("0 9 1 * *", DECEMBER, 62, ["Tue 2026-12-01 09:00", "Fri 2027-01-01 09:00"]),
        ("0 0 15 1,12 *", DECEMBER, 62, ["Tue 2026-12-15 00:00", "Fri 2027-01-15 00:00"]),
        (
            "*/20 9 2 * *",
            DECEMBER,
            7,
            ["Wed 2026-12-02 09:00", "Wed 2026-12-02 09:20", "Wed 2026-12-02 09:40"],
        ),
        (
            "0 9 * 2 mon",
            FEBRUARY,
            28,
            [f"Mon 2027-02-{date:02} 09:00" for date in (1, 8, 15, 22)],
        ),
        (
            "30 7 * * 1-5",
            DECEMBER,
            7,
            [
                f"{day} 2026-12-{date:02} 07:30"
                for day, date in [("Tue", 1), ("Wed", 2), ("Thu", 3), ("Fri", 4), ("Mon", 7)]
            ],
        ),
        ("0 12 29 2 *", FEBRUARY, 3 * 365, ["Tue 2028-02-29 12:00"]),  # leap days only
    ],
)
def test_ordinary_schedules_are_unchanged(
    expression: str, start: datetime, days: int, expected: list[str]
) -> None:
    assert fire_times(expression, start, start + timedelta(days=days)) == expected
    assert isinstance(cron_trigger(expression, "UTC"), CronTrigger)  # one trigger, as before


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("0 9 31 2 *", "day of month 31 does not occur in month 2"),
        ("0 9 30 feb *", "day of month 30 does not occur in month feb"),
        ("0 9 31 4,6,9,11 *", "day of month 31 does not occur in month 4,6,9,11"),
        ("0 9 30-31 2 */2", "day of month 30-31 does not occur in month 2"),  # ANDed, see above
    ],
)
def test_a_schedule_that_never_fires_is_refused(expression: str, reason: str) -> None:
    with pytest.raises(NeverFires) as caught:
        cron_trigger(expression, "Europe/London")
    assert str(caught.value) == reason
