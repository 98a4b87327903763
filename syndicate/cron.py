"""Crontab expressions as admins write them, turned into APScheduler 3 triggers.

Three things differ between crontab and APScheduler 3's `CronTrigger`, and each is read the
crontab way here:

- Days of the week: `CronTrigger.from_crontab` passes the field through as its own
  `day_of_week`, where 0 is Monday; in crontab 0 (and 7) is Sunday and 1 is Monday. So
  "0 8 * * 1", Monday morning to anyone who knows cron, would fire on Tuesdays. Numeric days
  are read the crontab way and handed over as names (mon, tue, ...), which both agree on;
  names and "*" pass through unchanged.
- Day of month *or* day of week: when both fields are restricted, cron fires on a day that
  matches either ("0 9 1 * mon" is the 1st and every Monday); `CronTrigger` wants both. Such
  a schedule becomes an `OrTrigger` of two cron triggers, one per field. As in Vixie cron
  (Debian's `cron`), a field counts as unrestricted when it starts with "*", so "*/2" in one
  field still narrows the other rather than adding days.
- A schedule no date can match ("0 9 31 2 *", February 31st) is a mistake, not a trigger
  that never fires: it is refused, found by a bounded search (see `_fires_at_all`).
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NUMERIC = re.compile(r"^(\*|\d+)(?:-(\d+))?(?:/(\d+))?$")
# The Gregorian calendar repeats itself, weekdays included, every 400 years (146,097 days, a
# whole number of weeks), so a schedule that fires at all fires within any 400-year window.
_CYCLE_START = datetime(2000, 1, 1)
_CYCLE_END = datetime(2400, 1, 1)


class NeverFires(ValueError):
    """A well-formed expression that no date matches, such as February 31st."""


def cron_trigger(expression: str, timezone: tzinfo | str) -> BaseTrigger:
    """The trigger for a five-field crontab expression; ValueError naming what is wrong,
    including a schedule that can never fire."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, day_of_week = fields
    weekdays = _day_names(day_of_week)

    def part(days: str, weekdays: str, end: datetime | None = None) -> CronTrigger:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=days,
            month=month,
            day_of_week=weekdays,
            timezone=timezone,
            end_date=end,
        )

    if day.startswith("*") or day_of_week.startswith("*"):
        # Vixie cron: either field "*"-led means both must match, as CronTrigger does.
        trigger = part(day, weekdays)
        if not _fires_at_all(part(day, weekdays, _CYCLE_END)):
            raise NeverFires(f"day of month {day} does not occur in month {month}")
        return trigger
    # Both restricted: a day matching either field fires. Every month has every weekday,
    # so the weekday half always fires and the schedule as a whole cannot be empty. A day
    # half that never fires ("31 2 mon": Mondays in February) is left out, as it would
    # otherwise search to the year 9999 at every fire time asked for.
    weekday_half = part("*", weekdays)
    if not _fires_at_all(part(day, "*", _CYCLE_END)):
        return weekday_half
    return OrTrigger([part(day, "*"), weekday_half])


def _fires_at_all(bounded: CronTrigger) -> bool:
    """Whether a trigger ending at _CYCLE_END fires in one whole calendar cycle. Bounded, so
    an empty schedule answers in milliseconds instead of searching to the year 9999."""
    start = _CYCLE_START.replace(tzinfo=bounded.timezone)
    return bounded.get_next_fire_time(None, start) is not None


def _day_names(field: str) -> str:
    if field == "*":
        return field
    days: list[str] = []
    for part in field.split(","):
        match = _NUMERIC.match(part)
        if match is None:  # names (mon-fri, sun), left to APScheduler
            days.append(part)
            continue
        first, last, step = match.groups()
        if first == "*":
            low, high = 0, 6
        else:
            low = int(first)
            high = int(last) if last is not None else (6 if step else low)
        if not 0 <= low <= 7 or not 0 <= high <= 7 or low > high:
            raise ValueError(f"day of week out of range (0-7): {part!r}")
        numbers = range(low, high + 1, int(step) if step else 1)
        days.extend(_NAMES[number % 7] for number in numbers)
    return ",".join(dict.fromkeys(days))
