"""Calendar months as the site names them: keys ("2015-12") and labels ("December 2015").

Archives (publish), the home page (web), digests and the `date` template filter all use
these, so one month has one name everywhere. The names are fixed English words rather than
`calendar.month_name` or strftime's %B, which follow the process locale: the same page must
render to the same bytes on every machine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def month_key(moment: datetime, timezone: ZoneInfo) -> str:
    """The month `moment` falls in, in `timezone`: "2015-12"."""
    local = moment.astimezone(timezone)
    return f"{local.year}-{local.month:02d}"


def month_start(moment: datetime, timezone: ZoneInfo) -> datetime:
    """The first instant of the month `moment` falls in, in `timezone`, as aware UTC."""
    local = moment.astimezone(timezone)
    return datetime(local.year, local.month, 1, tzinfo=timezone).astimezone(UTC)


def month_label(key: str) -> str:
    """ "2015-12" -> "December 2015"."""
    year, month = key.split("-")
    return f"{MONTH_NAMES[int(month) - 1]} {year}"
