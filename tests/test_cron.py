"""Crontab days of the week read the crontab way (syndicate.cron), not APScheduler 3's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from syndicate.cron import cron_trigger

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
