"""Benchmark: the /admin dashboard at the size of a real list (issue 21).

    python bench/dashboard.py [--database sqlite --database postgresql]
                              [--subscribers 1000000] [--issues 12] [--repeat 5]

For each database (a SQLite file, or a fresh PostgreSQL database `bench_dashboard_<random>`
dropped at the end), the real schema (`Store.open` runs the migrations) is filled with
set-based SQL (`INSERT ... SELECT` over `generate_series` / a recursive CTE):

    subscribers   N, consenting over the two years before now (more each month); about 85%
                  active, 8% unsubscribed, 4% bounced, 3% pending, with their dates
    issues        one digest a month for the last `--issues` months, each with a ledger row
                  per subscriber active when it was sent (about 8M rows at 1M subscribers):
                  mostly sent, 0.5% failed; the newest issue still has 1% deferred rows
    bounces       a hard bounce report (and its inbound mail) per bounced subscriber, naming
                  the issue before it; a soft one for 1% of the active
    sources       20 sources with their poll state (two failing), 10,000 posts

then ANALYZE (`--vacuum`: VACUUM ANALYZE on PostgreSQL, as autovacuum would where it is
on; the ledger's counts can then read its index alone). It measures what the admin waits
for: `syndicate serve` in a process of its own on a free port of 127.0.0.1 (the bundled
config.toml and templates/, this database, `[web] admin_password_env` set to a hash made by
`syndicate admin hash-password`), logged in through POST /admin/login with the form's CSRF
token, then GET /admin, the whole page with its charts: the first request and the median
of `--repeat` more (httpx). Then each query the page runs, in this process through the
store (first and median), and as the reference, in the same run on the same database:
`SELECT count(*) FROM subscribers` and the ledger's
`SELECT issue_id, status, count(*) FROM deliveries GROUP BY 1, 2`. The ratio is each time
over the reference. Also printed: the fill time and the server's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scalekit import REPO, SYNDICATE, free_port, print_lines, status_mib

from syndicate.store import Store
from syndicate.web.admin.panels import ISSUES_SHOWN, MONTHS_SHOWN, month_points

POSTGRES_SERVER = "127.0.0.1:5432"
PASSWORD = "bench dashboard password"
PASSWORD_VARIABLE = "SYNDICATE_BENCH_ADMIN_PASSWORD"
SECRET = "bench-secret-not-for-production-0123456789"
SOURCES = 20
POSTS = 10_000
DAY = 86_400
HISTORY_DAYS = 730  # consents spread over two years


@dataclass
class Timing:
    name: str
    first: float
    median: float


@dataclass
class Result:
    database: str
    subscribers: int
    deliveries: int
    fill_seconds: float
    vacuumed: bool
    page: Timing
    page_bytes: int
    server_peak_mib: float | None
    queries: list[Timing]
    references: list[Timing]


# --- the database ---------------------------------------------------------------------------


class Database:
    """An empty database of one kind with the schema migrated, and raw SQL on it."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.postgres_name: str | None = None
        if kind == "sqlite":
            self.path = folder / "syndicate.db"
            self.url = f"sqlite:///{self.path}"
        else:
            self.postgres_name = f"bench_dashboard_{uuid.uuid4().hex[:8]}"
            _postgres_admin(f'CREATE DATABASE "{self.postgres_name}"')
            self.url = f"postgresql+psycopg://postgres@{POSTGRES_SERVER}/{self.postgres_name}"

    def drop(self) -> None:
        if self.postgres_name:
            _postgres_admin(f'DROP DATABASE IF EXISTS "{self.postgres_name}" WITH (FORCE)')

    @contextmanager
    def raw(self) -> Iterator[Callable[[str, Sequence[Any]], Any]]:
        """A function running one statement with positional parameters (`?` in the SQL),
        in one transaction committed at the end."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.path)
            conn.execute("PRAGMA cache_size=-524288")  # 512 MiB for the fill's index writes
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA temp_store=MEMORY")
            try:
                with conn:
                    yield lambda sql, params=(): conn.execute(sql, params)
            finally:
                conn.close()
        else:
            assert self.postgres_name is not None
            url = f"postgresql://postgres@{POSTGRES_SERVER}/{self.postgres_name}"
            with psycopg.connect(url) as pg:
                # The fill writes consistent rows: skip the per-row foreign-key triggers.
                pg.execute("SET session_replication_role = replica")
                pg.execute("SET maintenance_work_mem = '512MB'")
                yield lambda sql, params=(): pg.execute(_pyformat(sql), params)


def _pyformat(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (and a literal `%` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _postgres_admin(statement: str) -> None:
    url = f"postgresql://postgres@{POSTGRES_SERVER}/postgres"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def _ts(kind: str, seconds: str) -> str:
    """SQL turning an expression of epoch seconds into the column's stored form (SQLite: the
    text SQLAlchemy writes and compares, PostgreSQL: timestamptz)."""
    if kind == "sqlite":
        return f"(strftime('%Y-%m-%d %H:%M:%S', {seconds}, 'unixepoch') || '.000000')"
    return f"to_timestamp({seconds})"


def _numbers(kind: str, count: int) -> str:
    """A FROM clause of the integers 1..count as column x."""
    if kind == "sqlite":
        return (
            f"(WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {count}) "
            "SELECT x FROM n) AS n"
        )
    return f"generate_series(1::bigint, {count}::bigint) AS n(x)"


def issue_moments(now: datetime, issues: int) -> list[tuple[str, datetime]]:
    """(period, when its ledger was written) of one issue a month, the newest the last month
    whose first day at 08:00 UTC has passed."""
    year, month = now.year, now.month
    moments: list[tuple[str, datetime]] = []
    while len(moments) < issues:
        at = datetime(year, month, 1, 8, tzinfo=UTC)
        if at <= now:
            moments.append((f"{year:04d}-{month:02d}", at))
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return moments[::-1]


def fill(
    db: Database, size: int, issues: int, now: datetime, *, vacuum: bool = False
) -> tuple[float, int]:
    """Fill the schema, then ANALYZE (VACUUM ANALYZE on PostgreSQL with `vacuum`);
    (seconds taken, delivery rows)."""
    kind = db.kind
    end = int(now.timestamp())
    start = end - HISTORY_DAYS * DAY
    started = time.perf_counter()
    with db.raw() as sql:
        # Each subscriber's fate is a function of its id: r picks the status (85/8/4/3%),
        # f how far between confirming and now it unsubscribed or bounced. Consent dates
        # grow with the id, denser towards now (a list that grows).
        span = HISTORY_DAYS * DAY
        people = f"""
            SELECT x,
                   (x * 7919) % 1000 AS r,
                   (x * 6151) % 1000 AS f,
                   {start} + CAST({span}.0 * (1.0 - (1.0 - x * 1.0 / {size}) *
                       (1.0 - x * 1.0 / {size})) AS INTEGER) - (x * 104729) % 3600 AS c
            FROM {_numbers(kind, size)}
        """
        status = (
            "CASE WHEN r < 850 THEN 'active' WHEN r < 930 THEN 'unsubscribed' "
            "WHEN r < 970 THEN 'bounced' ELSE 'pending' END"
        )
        confirmed = "(c + 3600 + (x % 47) * 3600)"
        left = f"({confirmed} + ({end} - {confirmed}) * f / 1000)"  # unsubscribed or bounced
        sql(
            f"""
            INSERT INTO subscribers (id, email, name, status, categories, consent_source,
                consented_at, confirmed_at, unsubscribed_at, bounce_count, created_at)
            SELECT x, 'reader' || x || '@bench.example', '', {status}, '[]', 'bench',
                {_ts(kind, "c")},
                CASE WHEN r < 970 THEN {_ts(kind, confirmed)} END,
                CASE WHEN r >= 850 AND r < 930 THEN {_ts(kind, left)} END,
                CASE WHEN r >= 930 AND r < 970 THEN 1 ELSE 0 END,
                {_ts(kind, "c")}
            FROM ({people}) AS p
            """,
            (),
        )
        if kind == "postgresql":
            sql("SELECT setval('subscribers_id_seq', ?)", (size,))
        # The issues, then the bounces (each naming the issue sent before it), then each
        # issue's ledger: its recipients are the subscribers active when it was sent.
        moments = issue_moments(now, issues)
        for number, (period, at) in enumerate(moments, start=1):
            sql(
                "INSERT INTO digest_issues (id, period, subject, post_ids, html, text, "
                "created_at, snapshot_at, version, awaiting_review) "
                f"VALUES (?, ?, ?, '[]', '<p>digest</p>', 'digest', {_ts(kind, '?')}, "
                f"{_ts(kind, '?')}, 1, ?)",
                (
                    number,
                    period,
                    f"News for {period}",
                    int(at.timestamp()) - 3600,
                    int(at.timestamp()),
                    False,
                ),
            )
        if kind == "postgresql":
            sql("SELECT setval('digest_issues_id_seq', ?)", (len(moments),))
        # Hard bounces for the bounced, soft ones for 1% of the active; one inbound mail each.
        bounced = f"""
            SELECT * FROM (
                SELECT x, CASE WHEN r < 850 THEN 'soft' ELSE 'hard' END AS kind,
                       CASE WHEN r < 850 THEN c + (x % 300) * {DAY} ELSE {left} END AS at
                FROM ({people}) AS p
                WHERE (r >= 930 AND r < 970) OR (r < 850 AND x % 100 = 0)
            ) AS e WHERE at <= {end}
        """
        sha = "printf('%064d', x)" if kind == "sqlite" else "lpad(x::text, 64, '0')"
        sql(
            f"""
            INSERT INTO inbound_mail (id, sha256, origin, kind, outcome, detail, received_at)
            SELECT x, {sha}, 'file', 'dsn', 'applied', 'bench', {_ts(kind, "at")}
            FROM ({bounced}) AS b
            """,
            (),
        )
        sql(
            f"""
            INSERT INTO bounce_events (subscriber_id, issue_id, mail_id, kind, status_code,
                diagnostic, received_at)
            SELECT x, (SELECT max(i.id) FROM digest_issues AS i
                       WHERE i.snapshot_at <= {_ts(kind, "at")}),
                   x, kind, CASE kind WHEN 'hard' THEN '5.1.1' ELSE '4.2.2' END,
                   'bench', {_ts(kind, "at")}
            FROM ({bounced}) AS b
            """,
            (),
        )
        newest = len(moments)
        for number, (_, at) in enumerate(moments, start=1):
            moment = int(at.timestamp())
            # 0.5% failed; in the newest issue 1% still deferred, due again in an hour.
            roll = "((s.id * 31 + i.id * 17) % 1000)"
            delivery_status = (
                f"CASE WHEN {roll} < 5 THEN 'failed' "
                f"WHEN i.id = {newest} AND {roll} < 15 THEN 'deferred' ELSE 'sent' END"
            )
            sql(
                f"""
                INSERT INTO deliveries (issue_id, subscriber_id, status, attempts,
                    next_attempt_at, message_id, sent_at)
                SELECT i.id, s.id, {delivery_status}, 1,
                    CASE WHEN i.id = {newest} AND {roll} >= 5 AND {roll} < 15
                         THEN {_ts(kind, str(end + 3600))} END,
                    '<' || i.id || '.' || s.id || '@bench.example>',
                    CASE WHEN {roll} >= 15 OR i.id <> {newest}
                         THEN {_ts(kind, str(moment + 600))} END
                FROM digest_issues AS i, subscribers AS s
                WHERE i.id = ? AND s.confirmed_at <= i.snapshot_at
                  AND (s.unsubscribed_at IS NULL OR s.unsubscribed_at > i.snapshot_at)
                  AND NOT (s.status = 'bounced' AND EXISTS (
                      SELECT 1 FROM bounce_events AS b WHERE b.subscriber_id = s.id
                      AND b.kind = 'hard' AND b.received_at <= i.snapshot_at))
                ORDER BY s.id
                """,
                (number,),
            )
        # Sources and their posts: the source panel reads each source's state and counts.
        for number in range(SOURCES):
            failing = number in (3, 11)
            sql(
                "INSERT INTO sources (name, url, last_polled_at, last_success_at, last_status, "
                f"last_error, consecutive_failures, next_poll_at) VALUES (?, ?, "
                f"{_ts(kind, '?')}, {_ts(kind, '?')}, ?, ?, ?, {_ts(kind, '?')})",
                (
                    f"source-{number:02d}",
                    f"https://source{number}.example/feed",
                    end - 600,
                    end - (7200 if failing else 600),
                    503 if failing else 200,
                    "HTTP 503" if failing else None,
                    3 if failing else 0,
                    end + 1800,
                ),
            )
        published = f"{end} - x * 3600"
        sql(
            f"""
            INSERT INTO posts (source, guid, url, title, authors, categories, published,
                updated, first_seen, summary_html, content_html, excerpt, zawgyi,
                content_hash)
            SELECT 'source-' || substr('0' || (x % {SOURCES}), -2), 'guid-' || x,
                'https://example.org/post/' || x, 'Post ' || x, '[]', '[]',
                {_ts(kind, published)}, {_ts(kind, published)}, {_ts(kind, published)},
                '<p>summary</p>', '<p>content</p>', 'summary', {_false(kind)}, 'hash' || x
            FROM {_numbers(kind, POSTS)}
            """,
            (),
        )
        delivered = sql("SELECT count(*) FROM deliveries", ()).fetchone()[0]
    if vacuum and db.postgres_name:
        # What autovacuum does on a server where it is on (it is off on the development
        # server): the visibility map lets the ledger's counts read its index alone.
        url = f"postgresql://postgres@{POSTGRES_SERVER}/{db.postgres_name}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    else:
        with db.raw() as sql:
            sql("ANALYZE", ())
    return time.perf_counter() - started, int(delivered)


def _false(kind: str) -> str:
    return "0" if kind == "sqlite" else "false"


# --- the server and the page ----------------------------------------------------------------


def write_project(folder: Path, url: str) -> Path:
    """The bundled config.toml (no [[sources]]: the database has its own) and templates/,
    copied as tests/conftest.py's bundled_project does, with this database and the
    dashboard on."""
    body = (REPO / "config.toml").read_text(encoding="utf-8")
    head, _, _ = body.partition("# One [[sources]] block per feed")
    tail = body[body.index("# Feed tags that belong") :]
    body = head.replace('database = "sqlite:///var/syndicate.db"', f'database = "{url}"') + tail
    switch = '# admin_password_env = "SYNDICATE_ADMIN_PASSWORD"'
    assert switch in body, "the bundled config's [web] section changed"
    body = body.replace(switch, f'admin_password_env = "{PASSWORD_VARIABLE}"')
    config = folder / "config.toml"
    config.write_text(body, encoding="utf-8")
    for name in ("templates", "locales", "examples"):
        if (REPO / name).is_dir() and not (folder / name).exists():
            shutil.copytree(REPO / name, folder / name)
    return config


def server_env(config: Path, password_hash: str) -> dict[str, str]:
    return {
        **os.environ,
        "SYNDICATE_CONFIG": str(config),
        "SYNDICATE_SECRET": SECRET,
        PASSWORD_VARIABLE: password_hash,
        "PYTHONUNBUFFERED": "1",
    }


def hash_password(config: Path) -> str:
    made = subprocess.run(
        [*SYNDICATE, "admin", "hash-password", "--password", PASSWORD],
        env=server_env(config, ""),
        cwd=config.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.splitlines()[0].strip()


def measure_page(config: Path, repeat: int) -> tuple[Timing, int, float | None]:
    """Serve, log in, GET /admin: (first and median of `repeat`, page bytes, peak RSS)."""
    port = free_port()
    env = server_env(config, hash_password(config))
    log = (config.parent / "serve.log").open("wb")
    server = subprocess.Popen(
        [*SYNDICATE, "serve", "--port", str(port), "--no-access-log"],
        env=env,
        cwd=config.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=600) as client:
            for _ in range(600):
                try:
                    if client.get("/healthz").status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None:
                    raise SystemExit(f"syndicate serve stopped: see {log.name}")
                time.sleep(0.1)
            form = client.get("/admin/login")
            found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert found, form.text
            answer = client.post(
                "/admin/login",
                data={"csrf_token": found.group(1), "password": PASSWORD},
                headers={"Origin": base},
            )
            cookie = re.match(r"syndicate_admin=([^;]+);", answer.headers.get("set-cookie", ""))
            assert answer.status_code == 303 and cookie, (answer.status_code, answer.text)
            # The cookie is Secure (HTTPS only): sent by hand over this plain-HTTP loopback.
            headers = {"Cookie": f"syndicate_admin={cookie.group(1)}"}
            times = []
            size = 0
            for _ in range(repeat + 1):
                started = time.perf_counter()
                page = client.get("/admin", headers=headers)
                times.append(time.perf_counter() - started)
                assert page.status_code == 200 and "Dashboard" in page.text, page.status_code
                size = len(page.content)
        peak = status_mib(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    return Timing("GET /admin (whole page)", times[0], statistics.median(times[1:])), size, peak


# --- each query alone, and the references ---------------------------------------------------


async def measure_queries(url: str, repeat: int) -> tuple[list[Timing], list[Timing]]:
    store = await Store.open(url)
    try:
        now = datetime.now(UTC)
        points = [at for _, at in month_points(now, MONTHS_SHOWN)]
        queries: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("subscriber_history (12 months)", lambda: store.subscriber_history(points)),
            ("issue_deliveries (12 issues)", lambda: store.issue_deliveries(ISSUES_SHOWN)),
            ("queue_now", store.queue_now),
            ("source_states + post_counts", lambda: _both(store)),
            ("issues_awaiting_review", store.issues_awaiting_review),
        ]
        timed = [await _time(name, call, repeat) for name, call in queries]

        async def statement(sql: str) -> object:
            async with store.read() as conn:
                return (await conn.execute(text(sql))).all()

        references = [
            await _time(
                "ref: SELECT count(*) FROM subscribers",
                lambda: statement("SELECT count(*) FROM subscribers"),
                repeat,
            ),
            await _time(
                "ref: deliveries GROUP BY issue_id, status",
                lambda: statement(
                    "SELECT issue_id, status, count(*) FROM deliveries GROUP BY 1, 2"
                ),
                repeat,
            ),
        ]
    finally:
        await store.close()
    return timed, references


async def _both(store: Store) -> object:
    return await store.source_states(), await store.post_counts()


async def _time(name: str, call: Callable[[], Awaitable[object]], repeat: int) -> Timing:
    times = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return Timing(name, times[0], statistics.median(times[1:]))


# --- the run and the table ------------------------------------------------------------------


def run(kind: str, size: int, issues: int, repeat: int, vacuum: bool) -> Result:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-dashboard-{kind}-"))
    db = Database(kind, folder)
    try:
        print(f"{kind}: migrating and filling {size:,} subscribers...", flush=True)

        async def migrate() -> None:
            await (await Store.open(db.url)).close()

        asyncio.run(migrate())
        now = datetime.now(UTC) - timedelta(minutes=1)
        fill_seconds, delivered = fill(db, size, issues, now, vacuum=vacuum)
        print(f"{kind}: filled in {fill_seconds:.1f} s ({delivered:,} deliveries)", flush=True)
        config = write_project(folder, db.url)
        page, page_bytes, peak = measure_page(config, repeat)
        print(f"{kind}: GET /admin first {page.first:.2f} s, median {page.median:.2f} s")
        queries, references = asyncio.run(measure_queries(db.url, repeat))
        return Result(
            kind,
            size,
            delivered,
            fill_seconds,
            vacuum and kind == "postgresql",
            page,
            page_bytes,
            peak,
            queries,
            references,
        )
    finally:
        db.drop()
        shutil.rmtree(folder, ignore_errors=True)


def print_table(results: Sequence[Result]) -> None:
    header = ("db", "measure", "first", "median", "/ count(*)", "/ GROUP BY", "note")
    lines = [header]
    for result in results:
        count_ref, group_ref = (ref.median for ref in result.references)
        rss = f"{result.server_peak_mib:,.0f} MiB" if result.server_peak_mib else "-"
        notes = {
            result.page.name: f"{result.page_bytes:,} B; server peak RSS {rss}",
        }
        for timing in [result.page, *result.queries, *result.references]:
            lines.append(
                (
                    result.database,
                    timing.name,
                    f"{timing.first:.3f} s",
                    f"{timing.median:.3f} s",
                    f"{timing.median / count_ref:.1f}x",
                    f"{timing.median / group_ref:.2f}x",
                    notes.get(timing.name, ""),
                )
            )
        lines.append(
            (
                result.database,
                f"fill (set-based SQL, then {'VACUUM ' if result.vacuumed else ''}ANALYZE)",
                f"{result.fill_seconds:.1f} s",
                "",
                "",
                "",
                f"{result.subscribers:,} subscribers, {result.deliveries:,} deliveries",
            )
        )
    print_lines(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", action="append", choices=("sqlite", "postgresql"), dest="databases"
    )
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--issues", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs after the first")
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="VACUUM ANALYZE the PostgreSQL database after filling, as autovacuum would",
    )
    args = parser.parse_args()
    results = [
        run(kind, args.subscribers, args.issues, args.repeat, args.vacuum)
        for kind in args.databases or ["sqlite", "postgresql"]
    ]
    print()
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
