"""Crontab expressions as admins write them, turned into APScheduler 3 triggers.

APScheduler 3's `CronTrigger.from_crontab` passes the day-of-week field through as its own
`day_of_week`, where 0 is Monday; in crontab 0 (and 7) is Sunday and 1 is Monday. So
"0 8 * * 1", Monday morning to anyone who knows cron, would fire on Tuesdays. Here numeric
days of the week are read the crontab way and handed over as names (mon, tue, ...), which
both agree on; names and "*" pass through unchanged.
"""

from __future__ import annotations

import re
from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger

_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NUMERIC = re.compile(r"^(\*|\d+)(?:-(\d+))?(?:/(\d+))?$")


def cron_trigger(expression: str, timezone: tzinfo | str) -> CronTrigger:
    """The trigger for a five-field crontab expression; ValueError naming what is wrong."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, day_of_week = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_day_names(day_of_week),
        timezone=timezone,
    )


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
