"""The dashboard's charts carry the database's numbers, on SQLite and PostgreSQL, and text
from the database (an issue's subject, a source's name) is escaped in the SVG and the HTML.

The page is fetched from the real server after logging in; its numbers are read from the
tables under the charts (the same numbers the SVG draws, charts.py) and compared with
counts the test works out itself from the store's rows.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from adminsite import (
    HASH,
    HOSTILE,
    NOW,
    PASSWORD,
    VARIABLE,
    Seeded,
    admin_config,
    log_in,
    running,
    seed,
    session_of,
)

from syndicate.clock import FrozenClock
from syndicate.config import load_settings
from syndicate.models import SourceState
from syndicate.statuses import BounceKind
from syndicate.store import Store
from syndicate.web.admin.charts import Series, bars, nice_ceiling
from syndicate.web.admin.panels import month_points
from syndicate.web.app import create_app


class Tables(HTMLParser):
    """Every <table> with a <caption>: caption -> rows of cell texts (header row first)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._caption: str | None = None
        self._rows: list[list[str]] | None = None
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._rows, self._caption = [], None
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th", "caption"):
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption" and self._text is not None:
            self._caption = "".join(self._text).strip()
            self._text = None
        elif tag in ("td", "th") and self._text is not None and self._rows:
            self._rows[-1].append("".join(self._text).strip())
            self._text = None
        elif tag == "table" and self._rows is not None:
            if self._caption:
                self.tables[self._caption] = self._rows
            self._rows = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


@pytest.fixture
def served(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str, Seeded]]:
    monkeypatch.setenv("SYNDICATE_SECRET", "admin-test-secret-" * 3)
    monkeypatch.setenv(VARIABLE, HASH)
    settings = load_settings(admin_config(project, database=database_url))

    async def fill() -> Seeded:
        async with await Store.open(settings.database_url) as store:
            seeded = await seed(store)
            await store.sync_sources([(HOSTILE, "https://feeds.example/a"), ("calm", "file:x")])
            await store.save_source_states(
                [
                    SourceState(
                        HOSTILE,
                        "https://feeds.example/a",
                        last_polled_at=NOW,
                        last_success_at=datetime(2015, 12, 1, tzinfo=UTC),
                        consecutive_failures=3,
                        last_status=503,
                        last_error=f"HTTP 503 {HOSTILE}",
                    ),
                    SourceState("calm", "file:x", last_polled_at=NOW, last_success_at=NOW),
                ]
            )
            return seeded

    seeded = asyncio.run(fill())
    with running(create_app(settings, clock=FrozenClock(NOW))) as url, httpx.Client() as client:
        cookie = session_of(log_in(client, url, PASSWORD))
        page = client.get(f"{url}admin", headers={"Cookie": f"syndicate_admin={cookie}"})
        assert page.status_code == 200, page.text
    yield page.text, settings.database_url, seeded


async def expected(url: str) -> dict[str, object]:
    """The numbers worked out here from the store's rows, independently of its queries."""
    async with await Store.open(url) as store:
        people = await store.list_subscribers()
        events = {p.id: await store.bounce_events_of(p.id) for p in people}
        ledgers = {p.id: await store.deliveries_of(p.id) for p in people}
        issues = await store.issues()
        per_issue = {i.period: await store.delivery_counts(i.id) for i in issues}
        now_counts = {s: await store.count_subscribers(s) for s in ("pending", "active")}
        now_counts |= {s: await store.count_subscribers(s) for s in ("unsubscribed", "bounced")}
        queue = await store.delivery_counts()

    def status_at(person, at):  # the derivation the dashboard's page states
        if person.consented_at > at:
            return None
        if person.status == "unsubscribed" and (person.unsubscribed_at or at) <= at:
            return "unsubscribed"
        if person.status == "bounced":
            dates = [e.received_at for e in events[person.id] if e.kind in ("hard", "soft")]
            bounced_at = max(dates) if dates else person.confirmed_at or person.consented_at
            if bounced_at <= at:
                return "bounced"
        active_from = person.confirmed_at
        if person.status == "active" and active_from is None:
            active_from = person.consented_at
        if active_from is not None and active_from <= at:
            return "active"
        return "pending"

    months = {}
    for label, at in month_points(NOW, 12):
        counted = Counter(status_at(p, at) for p in people)
        months[label] = [counted[s] for s in ("pending", "active", "unsubscribed", "bounced")]
    sent_at = {i.period: i.snapshot_at for i in issues}
    periods = sorted(sent_at)
    rows = {}
    for index, period in enumerate(periods):
        following = sent_at[periods[index + 1]] if index + 1 < len(periods) else None
        issue_id = next(i.id for i in issues if i.period == period)
        bounced = {
            pid
            for pid, found in events.items()
            for e in found
            if e.issue_id == issue_id and e.kind in (BounceKind.HARD, BounceKind.SOFT)
        }
        recipients = {pid for pid, copies in ledgers.items() if any(c[0] == period for c in copies)}
        gone = [
            p
            for p in people
            if p.id in recipients
            and p.unsubscribed_at is not None
            and p.unsubscribed_at >= sent_at[period]
            and (following is None or p.unsubscribed_at < following)
        ]
        counts = per_issue[period]
        rows[period] = [
            counts.get("sent", 0),
            counts.get("deferred", 0),
            counts.get("failed", 0),
            len(bounced),
            len(gone),
        ]
    return {
        "months": months,
        "now": now_counts,
        "issues": rows,
        "queue": [queue.get(s, 0) for s in ("pending", "sending", "deferred")],
    }


def numbers(row: list[str]) -> list[int]:
    return [int(cell) for cell in row[1:]]


def test_the_charts_show_the_databases_numbers(served: tuple[str, str, Seeded]) -> None:
    page, url, _ = served
    want = asyncio.run(expected(url))
    tables = Tables()
    tables.feed(page)
    found = tables.tables

    subscribers = found["Subscribers by status, at the end of each month"]
    assert subscribers[0] == ["Month", "pending", "active", "unsubscribed", "bounced"]
    assert {row[0]: numbers(row) for row in subscribers[1:]} == want["months"]
    now = numbers(subscribers[-1])
    assert now == [want["now"][s] for s in ("pending", "active", "unsubscribed", "bounced")]
    assert sum(now) == 12 and now[2] == 2 and now[3] == 1  # the seed, as a sanity check

    issues = found["Each issue's deliveries"]
    assert issues[0][1:] == ["sent", "deferred", "failed", "bounced", "unsubscribed after it"]
    shown = {row[0].split(":")[0]: numbers(row) for row in issues[1:]}
    assert shown == want["issues"]
    assert shown["2015-11"][3:] == [1, 1]  # a bounce and an unsubscribe between the issues

    queue = found["The queue now: ledger rows not yet sent"]
    assert [numbers(row)[0] for row in queue[1:]] == want["queue"]

    polls = found["Each source's last polls (oldest left)"]
    by_source = {row[0]: row[1:] for row in polls[1:]}
    assert by_source[HOSTILE][-4:] == ["succeeded", "failed", "failed", "failed"]
    assert by_source[HOSTILE][0] == "not recorded"
    assert by_source["calm"][-1] == "succeeded"


def test_text_from_the_database_is_escaped_in_svg_and_html(
    served: tuple[str, str, Seeded],
) -> None:
    page, _, seeded = served
    assert HOSTILE not in page
    assert "<script" not in page.lower()
    assert re.search(r"<svg[^>]*onload", page, re.IGNORECASE) is None
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;svg onload=alert(2)&gt;"
    svgs = re.findall(r"<svg.*?</svg>", page, re.DOTALL)
    assert len(svgs) == 4
    assert any(escaped in svg for svg in svgs), "the subject and source name in the tooltips"
    html = re.sub(r"<svg.*?</svg>", "", page, flags=re.DOTALL)
    assert html.count(escaped) >= 4  # the tables: issue label, subject, source, its error
    assert not any(email in page for email in seeded.subscriber_emails)


def test_a_bar_is_as_tall_as_its_number_and_says_it_in_its_title() -> None:
    chart = bars(
        "Deliveries",
        ["2015-11", '<b x="1">'],
        [Series("sent", "#080"), Series("<i>failed</i>", "#800")],
        [[10, 0], [5, 2]],
        label_name="Issue",
    )
    svg = str(chart.svg)
    # The bars (not the legend's squares: no <title>), label by label, series by series.
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" fill="#\d+"><title>', svg)]
    assert heights[0] == pytest.approx(2 * heights[2]) and heights[1] == 0
    assert heights[3] == pytest.approx(heights[0] / 5)
    assert "<title>2015-11: sent 10</title>" in svg
    assert "&lt;b x=&#34;1&#34;&gt;: &lt;i&gt;failed&lt;/i&gt; 2" in svg
    assert "<b " not in svg and "<i>" not in svg
    assert chart.columns == ("Issue", "sent", "<i>failed</i>")  # escaped by the template
    assert chart.rows == (("2015-11", "10", "0"), ('<b x="1">', "5", "2"))


@pytest.mark.parametrize(
    ("top", "axis"), [(0, 1), (1, 1), (3, 5), (12, 20), (100, 100), (101, 200), (7_001, 10_000)]
)
def test_the_axis_ends_at_a_round_number(top: int, axis: int) -> None:
    assert nice_ceiling(top) == axis
