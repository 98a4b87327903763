"""Digest periods: calendar months or ISO weeks, in the site's time zone."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from syndicate.digest.context import DigestPeriod
from syndicate.errors import UsageError
from syndicate.i18n import Translator
from syndicate.months import month_key, month_label

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_WEEK = re.compile(r"^(\d{4})-W(0[1-9]|[1-4]\d|5[0-3])$")


def month(key: str, tz: ZoneInfo) -> DigestPeriod:
    match = _MONTH.match(key)
    if not match:
        raise UsageError(f"not a month: {key!r} (use YYYY-MM, e.g. 2015-12)")
    year, number = int(match[1]), int(match[2])
    start = datetime(year, number, 1, tzinfo=tz)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=tz)
    return DigestPeriod(key, month_label(key), start, end)


def week(key: str, tz: ZoneInfo) -> DigestPeriod:
    match = _WEEK.match(key)
    if not match:
        raise UsageError(f"not an ISO week: {key!r} (use YYYY-Www, e.g. 2015-W49)")
    year, number = int(match[1]), int(match[2])
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError:
        raise UsageError(f"{year} has no week {number}") from None
    start = datetime(monday.year, monday.month, monday.day, tzinfo=tz)
    following = monday + timedelta(days=7)
    end = datetime(following.year, following.month, following.day, tzinfo=tz)
    return DigestPeriod(key, f"Week {number}, {year}", start, end)


def localised(period: DigestPeriod, words: Translator) -> DigestPeriod:
    """`period` with its label in the language of `words`: "ธันวาคม 2015", "สัปดาห์ที่ 49, 2015".
    English labels are the ones month() and week() give."""
    if _MONTH.match(period.key):
        label = words.month_label(period.key)
    else:
        year, number = period.key.split("-W")
        label = words.gettext("Week %(week)s, %(year)s") % {"week": int(number), "year": year}
    return replace(period, label=label)


def parse(key: str, kind: str, tz: ZoneInfo) -> DigestPeriod:
    return week(key, tz) if kind == "week" else month(key, tz)


def containing(moment: datetime, kind: str, tz: ZoneInfo) -> DigestPeriod:
    local = moment.astimezone(tz)
    if kind == "week":
        year, number, _ = local.isocalendar()
        return week(f"{year}-W{number:02d}", tz)
    return month(month_key(local, tz), tz)


def just_ended(moment: datetime, kind: str, tz: ZoneInfo) -> DigestPeriod:
    """The last period that ended at or before `moment` (what a scheduled digest sends)."""
    current = containing(moment, kind, tz)
    return containing(current.start - timedelta(days=1), kind, tz)
