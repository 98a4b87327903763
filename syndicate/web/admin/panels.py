"""The dashboard's panels: the store's numbers (store/dashboard.py) made into charts.

Each panel is a Chart (charts.py: the SVG and a table of the same numbers) and, where the
chart cannot say everything, rows for a table of details. Nothing here reads a subscriber's
address or name: only counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from syndicate.models import SourceState
from syndicate.statuses import DeliveryStatus, SubscriberStatus
from syndicate.store import Store
from syndicate.store.dashboard import STATUSES, IssueDeliveries, QueueNow
from syndicate.web.admin.charts import Chart, Series, bars, strips

MONTHS_SHOWN = 12
ISSUES_SHOWN = 12
POLLS_SHOWN = 10

STATUS_SERIES = {
    SubscriberStatus.PENDING: Series("pending", "#bf8700"),
    SubscriberStatus.ACTIVE: Series("active", "#1a7f37"),
    SubscriberStatus.UNSUBSCRIBED: Series("unsubscribed", "#6e7781"),
    SubscriberStatus.BOUNCED: Series("bounced", "#cf222e"),
}
DELIVERY_SERIES = (
    Series("sent", "#1a7f37"),
    Series("deferred", "#bf8700"),
    Series("failed", "#cf222e"),
    Series("bounced", "#8250df"),
    Series("unsubscribed after it", "#6e7781"),
)
POLL_STATES = (Series("succeeded", "#1a7f37"), Series("failed", "#cf222e"))
QUEUE_SERIES = (Series("rows", "#0969da"),)


@dataclass(frozen=True, slots=True)
class SourceRow:
    """A source's state now, for the table under its poll chart (text, ready to show)."""

    name: str
    posts: int
    last_polled: str
    last_success: str
    last_status: str
    failures: int
    next_poll: str
    problem: str  # the last error, or why it is disabled; "" when none


async def subscribers_chart(store: Store, now: datetime) -> Chart:
    points = month_points(now, MONTHS_SHOWN)
    history = await store.subscriber_history([at for _, at in points])
    series = [STATUS_SERIES[SubscriberStatus(name)] for name in STATUSES]
    values = [[counts[name] for name in STATUSES] for counts in history]
    return bars(
        "Subscribers by status, at the end of each month",
        [label for label, _ in points],
        series,
        values,
        label_name="Month",
        stacked=True,
    )


def month_points(now: datetime, count: int) -> list[tuple[str, datetime]]:
    """(label, moment) for the ends of the `count` - 1 months before `now`'s and for now:
    ("2015-11", 2015-12-01 00:00 UTC) ... ("now", now)."""
    now = now.astimezone(UTC)
    year, month = now.year, now.month
    points = [("now", now)]
    for _ in range(count - 1):
        end = datetime(year, month, 1, tzinfo=UTC)
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        points.append((f"{year:04d}-{month:02d}", end))
    return points[::-1]


async def issues_chart(store: Store) -> tuple[Chart, list[IssueDeliveries]]:
    issues = await store.issue_deliveries(ISSUES_SHOWN)
    values = [
        [
            issue.count(DeliveryStatus.SENT),
            issue.count(DeliveryStatus.DEFERRED),
            issue.count(DeliveryStatus.FAILED),
            issue.bounced,
            issue.unsubscribed_after,
        ]
        for issue in issues
    ]
    chart = bars(
        "Each issue's deliveries",
        [f"{issue.period}: {issue.subject}" for issue in issues],
        DELIVERY_SERIES,
        values,
        label_name="Issue",
    )
    return chart, issues


async def sources_chart(store: Store) -> tuple[Chart, list[SourceRow]]:
    states = await store.source_states()
    posts = await store.post_counts()
    columns = [
        "Source",
        *(f"poll {index - POLLS_SHOWN}" for index in range(1, POLLS_SHOWN)),
        "last poll",
    ]
    chart = strips(
        "Each source's last polls (oldest left)",
        [state.name for state in states],
        [last_polls(state, POLLS_SHOWN) for state in states],
        POLL_STATES,
        columns=columns,
        unknown="not recorded",
    )
    rows = [
        SourceRow(
            name=state.name,
            posts=posts.get(state.name, 0),
            last_polled=when(state.last_polled_at),
            last_success=when(state.last_success_at),
            last_status=str(state.last_status) if state.last_status is not None else "",
            failures=state.consecutive_failures,
            next_poll=when(state.next_poll_at),
            problem=(f"disabled: {state.disabled_reason}" if state.disabled_reason else "")
            or (state.last_error or "" if state.consecutive_failures else ""),
        )
        for state in states
    ]
    return chart, rows


def last_polls(state: SourceState, count: int) -> list[str | None]:
    """What the store tells of a source's last `count` polls, oldest first. It keeps no
    history of polls, only the state after the last: the newest `consecutive_failures`
    polls failed and, if it ever succeeded, the poll before them succeeded; older polls
    (and those of a source never polled) are None, "not recorded"."""
    known: list[str | None] = []
    if state.last_polled_at is not None:
        known = ["failed"] * min(state.consecutive_failures, count)
        if len(known) < count and state.last_success_at is not None:
            known.insert(0, "succeeded")
    return [None] * (count - len(known)) + known


async def queue_chart(store: Store) -> tuple[Chart, QueueNow]:
    queue = await store.queue_now()
    chart = bars(
        "The queue now: ledger rows not yet sent",
        ["pending", "sending", "deferred"],
        QUEUE_SERIES,
        [[queue.pending], [queue.sending], [queue.deferred]],
        label_name="Status",
    )
    return chart, queue


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""
