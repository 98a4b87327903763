"""Stage `posts` of bench/scale.py: 100,000 stored posts (issue 18, item 5).

    python bench/scale.py --stage posts --scale 0.01 --database sqlite

- Posts: when the database holds fewer than 100,000 (the `sources` stage leaves 5,000 x 20),
  the rest are inserted directly, untimed: 20 sources, five years of months, the site's
  categories and some feed tags, content of a few KB each.
- `syndicate publish` into an empty feeds folder (full), then again with nothing changed
  (target: under 10% of the full time, and no file written: inode and mtime compared).
- `syndicate serve`: 200 sequential requests each to / and to the newest month's archive
  page (median and p99 under 50 ms), then / under 100 concurrent connections for 10 s with
  `wrk` (>= 1,000 requests/s). The server's RSS at start and at the end.
- `syndicate ingest` of one local file source with 10,000 entries (peak RSS < 150 MB).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
from scalekit import SYNDICATE, Row, Space, free_port, status_mib

POSTS = 100_000
SOURCES = 20
MONTHS = 60
SEQUENTIAL = 200
CONCURRENCY = 100
LOAD_SECONDS = 10
FEED_ITEMS = 10_000
CATEGORIES = ("Rivers", "Wildlife", "Gardens", "Volunteering", "Events", "Policy")
TAGS = ("drought", "otters", "compost", "litter pick", "planning", "flood", "bees", "trees")


def run(space: Space) -> list[Row]:
    db = space.database
    ensure_posts(space, space.sized(POSTS))
    rows = publish_rows(space)
    rows += web_rows(space)
    rows += ingest_rows(space)
    for row in rows:
        row.database = db
    return rows


# -- data ---------------------------------------------------------------------------------


def ensure_posts(space: Space, wanted: int) -> int:
    """Insert posts until the database holds `wanted`; returns how many there are."""
    import sqlalchemy as sa

    from syndicate.store.tables import posts

    space.syndicate("db", "upgrade")
    engine = sa.create_engine(_sync_url(space.database_url))
    try:
        with engine.connect() as conn:
            have = conn.execute(sa.select(sa.func.count()).select_from(posts)).scalar_one()
        missing = wanted - have
        if missing <= 0:
            return have
        names = [f"blog-{n:02d}" for n in range(SOURCES)]
        space.write_config(*(_source_block(name) for name in names))
        rng = random.Random(18)
        now = datetime.now(UTC).replace(microsecond=0)
        span = timedelta(days=30.4 * MONTHS)
        batch: list[dict[str, object]] = []
        with engine.begin() as conn:
            for n in range(have, have + missing):
                batch.append(_post_row(n, names[n % SOURCES], now - span * rng.random(), rng))
                if len(batch) == 2_000:
                    conn.execute(sa.insert(posts), batch)
                    batch.clear()
            if batch:
                conn.execute(sa.insert(posts), batch)
        # What autovacuum (PostgreSQL) or a long-lived database would have done by now:
        # statistics, and the visibility map that lets counts use the index alone.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE posts" if _is_postgres(space) else "ANALYZE"))
        return wanted
    finally:
        engine.dispose()


def _is_postgres(space: Space) -> bool:
    return space.database == "postgresql"


def _sync_url(url: str) -> str:
    return url  # sqlite:///..., postgresql+psycopg://... are both synchronous URLs


def _source_block(name: str) -> str:
    category = CATEGORIES[int(name[-2:]) % len(CATEGORIES)]
    return (
        f'[[sources]]\nname = "{name}"\nurl = "https://{name}.example.org/feed.xml"\n'
        f'title = "{name.replace("-", " ").title()}"\ncategory = "{category}"\n'
    )


def _post_row(n: int, source: str, published: datetime, rng: random.Random) -> dict[str, object]:
    paragraphs = rng.randint(4, 10)
    body = "".join(
        f"<p>Paragraph {p} of post {n}: volunteers met by the river to count what they "
        f'found, with <a href="https://{source}.example.org/notes/{n}/{p}">notes</a> and '
        f"<strong>photographs</strong> from the day, and plans for next time.</p>"
        for p in range(paragraphs)
    )
    categories = rng.sample((*CATEGORIES, *TAGS), rng.randint(1, 3))
    return {
        "source": source,
        "guid": f"https://{source}.example.org/?p={n}",
        "url": f"https://{source}.example.org/{published:%Y/%m}/post-{n}/",
        "title": f"Post {n}: what we saw at the weir this week",
        "authors": [f"Author {n % 17}"],
        "categories": categories,
        "published": published,
        "updated": published,
        "first_seen": published,
        "summary_html": body[:300],
        "content_html": body,
        "excerpt": f"Paragraph 0 of post {n}: volunteers met by the river to count what "
        "they found, with notes and photographs from the day.",
        "image_url": f"https://{source}.example.org/images/{n}.jpg" if n % 3 == 0 else None,
        "image_alt": "The weir at dawn" if n % 3 == 0 else None,
        "image_width": None,
        "image_height": None,
        "enclosure": None,
        "comments_url": None,
        "language": "en",
        "content_hash": hashlib.sha256(body.encode()).hexdigest(),
        # Linked already, as a site's older posts are ("feed": its comments link, none).
        "discussion_url": None,
        "forum_topic_id": None,
        "reply_count": None,
        "forum_checked_at": published,
        "discussion_key": "feed",
    }


# -- publish ------------------------------------------------------------------------------


def publish_rows(space: Space) -> list[Row]:
    feeds = space.root / "feeds"
    shutil.rmtree(feeds, ignore_errors=True)
    full = space.syndicate("publish")
    before = _snapshot(feeds)
    again = space.syndicate("publish")
    after = _snapshot(feeds)
    written = sum(1 for path, key in after.items() if before.get(path) != key)
    limit = 0.1 * full.seconds
    return [
        Row(
            "posts: publish full",
            "",
            len(after),
            "files",
            full.seconds,
            full.peak_rss_mib,
            "-",
            None,
            _last_line(full.stdout),
        ),
        Row(
            "posts: publish unchanged",
            "",
            len(after),
            "files",
            again.seconds,
            again.peak_rss_mib,
            f"< {limit:,.2f} s (10% of full), 0 written",
            again.seconds < limit and written == 0,
            f"{written} files written",
        ),
    ]


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for path in folder.rglob("*"):
        if path.is_file():
            info = path.stat()
            found[str(path.relative_to(folder))] = (info.st_ino, info.st_mtime_ns)
    return found


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:80] if lines else ""


# -- web ----------------------------------------------------------------------------------


def web_rows(space: Space) -> list[Row]:
    # The newest whole month (the current one has only begun).
    months = sorted((space.root / "feeds" / "archive").glob("????-??.html"))
    month = months[-2] if len(months) > 1 else months[-1] if months else None
    archive = f"/feeds/archive/{month.name}" if month else "/feeds/archive/index.html"
    with serving(space) as (url, pid):
        start_rss = status_mib(pid) or 0.0
        rows = [_sequential(url, "/", "home"), _sequential(url, archive, "archive page")]
        rows.append(_load(url + "/"))
        peak = status_mib(pid, "VmHWM") or 0.0
    rows[0].note += f"; server RSS {start_rss:,.0f} MiB at start"
    for row in rows:
        row.peak_rss_mib = peak
    return rows


@contextlib.contextmanager
def serving(space: Space) -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(
        [*SYNDICATE, "serve", "--port", str(port), "--no-access-log"],
        env=space.env(),
        cwd=space.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
                raise SystemExit(f"syndicate serve exited: {error}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(url + "/healthz", timeout=1)
                break
            if time.monotonic() > deadline:
                raise SystemExit("syndicate serve did not start")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _sequential(url: str, path: str, label: str) -> Row:
    times = []
    with httpx.Client(base_url=url, timeout=30) as client:
        started = time.perf_counter()
        client.get(path).raise_for_status()  # the first one renders (or reads) the page
        first = time.perf_counter() - started
        for _ in range(SEQUENTIAL):
            started = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - started)
            response.raise_for_status()
    times.sort()
    median = statistics.median(times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return Row(
        f"posts: GET {label}",
        "",
        SEQUENTIAL,
        "requests",
        sum(times),
        None,
        "median and p99 < 50 ms",
        p99 < 0.05,
        f"{path}: median {median * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"first {first * 1000:.0f} ms, {len(response.content):,} bytes; {_load_average()}",
    )


def _load(url: str) -> Row:
    label = f"posts: GET home x{CONCURRENCY}"
    target = ">= 1,000 requests/s"
    if shutil.which("wrk") is None:
        note = "wrk not found (apt-get install wrk)"
        return Row(label, "", 0, "requests", 0, None, target, None, note)
    threads = min(4, os.cpu_count() or 1)
    command = ["wrk", f"-t{threads}", f"-c{CONCURRENCY}", f"-d{LOAD_SECONDS}s", "--latency", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: .*", output)
    note = f"p99 {p99.group(1)} {p99.group(2)}" if p99 else "p99 ?"
    note += f"; {_load_average()}"
    if errors:
        note += f"; {errors.group(1)} non-2xx"
    if sockets:
        note += f"; {sockets.group(0)}"
    met = rate >= 1000 and not errors
    return Row(label, "", total, "requests", total / rate, None, target, met, note)


def _load_average() -> str:
    """The machine's load: other work on it shows in the latencies."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


# -- ingest -------------------------------------------------------------------------------


def ingest_rows(space: Space) -> list[Row]:
    items = space.sized(FEED_ITEMS)
    feed = space.root / "big-feed.xml"
    feed.write_bytes(_big_feed(items))
    space.write_config(f'[[sources]]\nname = "big-feed"\nurl = "{feed}"\n')
    result = space.syndicate("ingest", "--source", "big-feed", "--no-publish")
    return [
        Row(
            "posts: ingest 10,000-item feed",
            "",
            items,
            "entries",
            result.seconds,
            result.peak_rss_mib,
            "peak RSS < 150 MB",
            result.peak_rss_mib * 1.048576 < 150,
            f"{feed.stat().st_size / 1e6:.1f} MB file",
        )
    ]


def _big_feed(items: int) -> bytes:
    """An RSS 2.0 file of `items` entries, about 800 bytes each (under [ingest] max_size)."""
    now = datetime.now(UTC)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        "<title>A big feed</title><link>https://big.example.org/</link>"
        "<description>Ten thousand entries</description>"
    ]
    for n in range(items):
        when = (now - timedelta(hours=n)).strftime("%a, %d %b %Y %H:%M:%S +0000")
        body = (
            f"<p>Entry {n}: the otters were back at the weir this morning, and the "
            f'<a href="https://big.example.org/otters/{n}">survey</a> counted '
            f"<strong>{n % 7} of them</strong>.</p><p>More next week, weather allowing; "
            "bring boots, a flask and a notebook. We meet at the car park by the mill at "
            "eight, and walk down the east bank to the weir; the path is muddy after rain, "
            "so allow an hour. Tea afterwards at the village hall.</p>"
        )
        parts.append(
            f"<item><title>Entry {n} from the weir</title>"
            f"<link>https://big.example.org/{n}/</link>"
            f'<guid isPermaLink="false">big-{n}</guid><pubDate>{when}</pubDate>'
            f"<category>otters</category><category>Rivers</category>"
            f"<description>{escape(body)}</description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()
