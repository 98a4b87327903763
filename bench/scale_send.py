"""Stage `send` of bench/scale.py: `syndicate digest send` to 1,000,000 active subscribers
into postfix's smtp-sink, against smtp-source (issue 18, item 3).

For a small digest (5 posts, about 20 KB a message) and a large one (30 posts), each a period
of its own (so each is a fresh issue), it runs `syndicate -v digest send --month PERIOD` as a
new process with [mail] transport = "smtp" to a smtp-sink on 127.0.0.1, a pool of 16 (as
bench/send.py's reference), and measures:

- the whole command, from process start-up to its exit (after the summary line), against
  `smtp-source -s 16 -d` sending as many messages (at most REFERENCE_MAX) of the same size
  (one of ours, built from the stored issue) to the same sink: target >= 50% of its rate;
- the send loop's rate over each tenth of the send, from the command's log (-v): flat if
  nothing grows with the list;
- the snapshot (the active subscribers copied into the issue's delivery ledger), from the
  command's own log line: target < 10 s;
- peak RSS (wait4) and VmRSS sampled every second: target <= 100 MiB, and flat (the highest
  sample of the last minute at most FLAT_MIB above that of the first minute; on a run shorter
  than four minutes, a quarter of it each).

Set-up, untimed: the active subscribers the stage before left (its import) are topped up to
space.sized(1,000,000) with INSERT ... SELECT over a generated series, and the posts of the
two periods are stored directly. Each run also checks that the sink counted every message.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scalekit import SYNDICATE, Measured, Row, Space, print_table, status_mib
from send import Sink, reference

FULL = 1_000_000
POOL = 16  # connections, and smtp-source sessions: as bench/send.py
DIGESTS = (("small", "2003-01", 5), ("large", "2003-02", 30))
RSS_LIMIT_MIB = 100.0
FLAT_MIB = 10.0  # "flat": the last minute's highest RSS at most this above the first's
SNAPSHOT_LIMIT_S = 10.0
RATIO_TARGET = 0.5
# smtp-source's rate does not depend on the count: past this many, its run is only longer.
REFERENCE_MAX = 200_000
CATEGORIES = ("Rivers", "Wildlife", "Gardens", "Volunteering", "Events", "Policy")


# --- set-up (untimed) ---------------------------------------------------------------------------


async def _prepare(space: Space, wanted: int) -> int:
    """Top the active subscribers up to `wanted` and store the digests' posts; how many
    subscribers were added."""
    from sqlalchemy import JSON, bindparam, text

    from syndicate.store import Store
    from syndicate.store.types import UTCDateTime

    now = datetime(2002, 12, 1, tzinfo=UTC)
    async with await Store.open(space.database_url) as store:
        active = await store.count_subscribers("active")
        missing = max(0, wanted - active)
        if missing:
            postgres = store.engine.dialect.name == "postgresql"
            series = (
                "generate_series(1, :missing) AS seq(n)"
                if postgres
                else "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s"
                " WHERE n < :missing) SELECT n FROM s) AS seq"
            )
            concat = "'scale-send-' || seq.n || '@example.org'"
            # Most subscribers take every category; some chose a few (a copy of their own).
            statement = text(
                "INSERT INTO subscribers (email, name, status, categories, consent_source,"
                " consented_at, confirmed_at, bounce_count, created_at)"
                f" SELECT {concat},"
                " CASE WHEN seq.n % 5 = 0 THEN '' ELSE 'Subscriber ' || seq.n END,"
                " 'active',"
                " CASE seq.n % 20 WHEN 0 THEN :some WHEN 1 THEN :other ELSE :every END,"
                " 'bench', :now, :now, 0, :now"
                f" FROM {series}"
                # (WHERE: without it SQLite reads ON CONFLICT as a join's ON)
                " WHERE 1 = 1 ON CONFLICT (email) DO NOTHING"
            ).bindparams(
                bindparam("now", type_=UTCDateTime()),
                bindparam("every", type_=JSON()),
                bindparam("some", type_=JSON()),
                bindparam("other", type_=JSON()),
            )
            async with store.write() as conn:
                await conn.execute(
                    statement,
                    {
                        "missing": missing,
                        "now": now,
                        "every": [],
                        "some": ["Wildlife"],
                        "other": ["Rivers", "Events"],
                    },
                )
        for _, period, count in DIGESTS:
            await store.upsert_posts("scale-send", _posts(period, count), now)
    return missing


def _posts(period: str, count: int) -> list:
    from syndicate.models import Post

    year, month = (int(part) for part in period.split("-"))
    start = datetime(year, month, 2, 9, tzinfo=UTC)
    paragraph = (
        "<p>The volunteers met on Saturday to clear the towpath and plant two hundred trees "
        "along the <a href='https://riverside-commons.example/towpath/'>towpath</a>; the "
        "council has promised to fund the next stretch if the survey goes well.</p>"
    )
    made = []
    for n in range(count):
        url = f"https://riverside-commons.example/{period}/post-{n}/"
        made.append(
            Post(
                source="scale-send",
                guid=url,
                url=url,
                title=f"Post {n} of {period}: the river & the commons",
                published=start + timedelta(hours=17 * n),
                updated=start + timedelta(hours=17 * n),
                first_seen=start + timedelta(hours=17 * n),
                content_hash=f"{period}-{n}",
                authors=(f"Author {n % 7}",),
                categories=(CATEGORIES[n % len(CATEGORIES)],),
                summary_html=paragraph,
                content_html=paragraph * 4,
                excerpt=(
                    f"Post {n}: the volunteers met on Saturday to clear the towpath and plant "
                    "two hundred trees; the council has promised to fund the next stretch if "
                    "the survey goes well. The school's pond dipping day found newts, water "
                    "boatmen and a heron that would not leave, and the allotment society is "
                    "looking for help with the new beds before the frost comes."
                ),
                image_url=f"https://riverside-commons.example/images/{n}.jpg" if n % 3 else None,
                comments_url=f"https://forum.riverside-commons.example/t/{n}" if n % 4 else None,
            )
        )
    return made


def _configure(space: Space, port: int) -> None:
    """The space's config with [mail] transport = "smtp" to the sink: no TLS, POOL
    connections, no rate limit. (write_config() with no blocks rewrites it as it was.)"""
    space.write_config()
    text = space.config.read_text(encoding="utf-8")
    head, mail, rest = text.partition("\n[mail]\n")
    section, smtp, after = rest.partition("\n[mail.smtp]\n")
    smtp_end = after.index("\n[", 1)
    smtp_body = after[:smtp_end]
    for key, value in (
        ("host", '"127.0.0.1"'),
        ("port", str(port)),
        ("tls", '"none"'),
        ("pool", str(POOL)),
        ("rate", "0"),
    ):
        smtp_body, found = re.subn(
            rf"^{key} = [^\n#]*", f"{key} = {value} ", smtp_body, count=1, flags=re.M
        )
        assert found, f"[mail.smtp] {key} not in the config"
    section, found = re.subn(r'^transport = "outbox"', 'transport = "smtp"', section, flags=re.M)
    assert found, "[mail] transport not in the config"
    space.config.write_text(
        head + mail + section + smtp + smtp_body + after[smtp_end:], encoding="utf-8"
    )


async def _message_size(space: Space, period: str) -> int:
    """The size of one message of the stored issue, built as IssueSender builds it (8bit
    bodies: smtp-sink offers 8BITMIME), for a subscriber of the list."""
    from sqlalchemy import select

    from syndicate.clock import SystemClock
    from syndicate.config import load_settings
    from syndicate.digest.context import DigestSubscriber
    from syndicate.digest.render import RenderedDigest
    from syndicate.mail.message import MessageFactory
    from syndicate.mail.wire import MailCopy
    from syndicate.models import Recipient
    from syndicate.store import Store
    from syndicate.store.tables import subscribers
    from syndicate.tokens import Tokens, signing_secret

    os.environ.update(space.env())
    settings = load_settings(space.config)
    clock = SystemClock()
    async with await Store.open(space.database_url) as store:
        issue = await store.issue(period)
        assert issue is not None, f"no issue {period}"
        async with store.read() as conn:
            row = (
                await conn.execute(
                    select(subscribers.c.id, subscribers.c.email, subscribers.c.name)
                    .where(subscribers.c.status == "active", subscribers.c.name != "")
                    .order_by(subscribers.c.id)
                    .limit(1)
                )
            ).one()
    person = Recipient(row.id, row.email, row.name, "active", ())
    factory = MessageFactory.for_issue(settings, issue, clock=clock, eight_bit=True)
    site = settings.site.url.rstrip("/")
    copy = MailCopy(
        RenderedDigest(subject=issue.subject, html=issue.html, text=issue.text, home_url=f"{site}/")
    )
    tokens = Tokens(signing_secret(settings), clock)
    unsubscribe = tokens.link(site, "unsubscribe", person)
    preferences = tokens.link(site, "preferences", person)
    html, text = copy.bodies(
        DigestSubscriber.of(person.name, person.email), unsubscribe, preferences
    )
    raw = factory.build(person, html, text, unsubscribe, factory.message_id(issue.id, person.id))
    return len(raw)


# --- measuring a command with its RSS over time -------------------------------------------------


@dataclass
class Sampled:
    measured: Measured
    samples: list[tuple[float, float]]  # (seconds since start, VmRSS in MiB), every second


def measure_sampled(space: Space, *args: str, every: float = 1.0) -> Sampled:
    """scalekit.measure() for a long command: also VmRSS from /proc every `every` seconds.
    Output goes to files (nothing to drain); exit is polled with wait4(WNOHANG)."""
    import subprocess

    samples: list[tuple[float, float]] = []
    with (
        tempfile.TemporaryFile(dir=space.root) as out,
        tempfile.TemporaryFile(dir=space.root) as err,
    ):
        started = time.perf_counter()
        process = subprocess.Popen(
            [*SYNDICATE, *args],
            env=space.env(),
            cwd=space.root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        next_sample = started
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            now = time.perf_counter()
            if now >= next_sample:
                rss = status_mib(process.pid)
                if rss is not None:
                    samples.append((now - started, rss))
                next_sample += every
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        measured = Measured(
            seconds=seconds,
            peak_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
            returncode=process.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )
    return Sampled(measured, samples)


def flatness(samples: list[tuple[float, float]], seconds: float) -> tuple[float, float]:
    """The highest RSS of the first and of the last window (a minute, or a quarter of a
    run shorter than four minutes)."""
    window = min(60.0, seconds / 4)
    first = [rss for at, rss in samples if at <= window]
    last = [rss for at, rss in samples if at >= seconds - window]
    return (max(first, default=0.0), max(last, default=0.0))


# --- the stage ----------------------------------------------------------------------------------


def run(space: Space) -> list[Row]:
    wanted = space.sized(FULL)
    added = asyncio.run(_prepare(space, wanted))
    if added:
        print(f"   set-up: {added:,} active subscribers added (untimed)", flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=space.root) as tmp:
        sink = Sink(Path(tmp))
        try:
            _configure(space, sink.port)
            for label, period, posts in DIGESTS:
                found = _send_one(space, sink, label, period, posts, wanted)
                print_table(found)  # as soon as it is known: a full-size send takes long
                rows += found
        finally:
            sink.close()
            space.write_config()  # back to the outbox for the stages after this one
    return rows


def _send_one(
    space: Space, sink: Sink, label: str, period: str, posts: int, wanted: int
) -> list[Row]:
    db = space.database
    stage = f"send {label} ({posts} posts)"
    before = sink.messages()
    sampled = measure_sampled(space, "-v", "digest", "send", "--month", period)
    result = sampled.measured
    if result.returncode != 0:
        raise SystemExit(f"digest send exited {result.returncode}:\n{result.stderr[-3000:]}")
    summary = re.search(r"sent (\d+), deferred (\d+), failed (\d+), skipped (\d+)", result.stdout)
    assert summary, f"no summary in {result.stdout!r}"
    sent, _, _, skipped = (int(n) for n in summary.groups())
    received = sink.settle(before + sent, timeout=30) - before
    found = re.search(r"snapshot: (\d+) recipients in ([\d.]+) s", result.stderr)
    snapshot_rows, snapshot_s = (int(found[1]), float(found[2])) if found else (0, 0.0)

    tenths = [int(r) for r in re.findall(r"(\d+) msg/s over the last tenth", result.stderr)]

    size = asyncio.run(_message_size(space, period))
    reference_count = min(sent, REFERENCE_MAX)
    reference_s = reference(sink, reference_count, size, POOL)
    ours_rate = sent / result.seconds
    ref_rate = reference_count / reference_s
    ratio = ours_rate / ref_rate
    first, last = flatness(sampled.samples, result.seconds)
    peak = max([result.peak_rss_mib, *(rss for _, rss in sampled.samples)])
    top_at, top_rss = max(sampled.samples, key=lambda sample: sample[1], default=(0.0, 0.0))
    checks = []
    if received != sent:
        checks.append(f"sink counted {received:,}")
    if sent + skipped < wanted:
        checks.append(f"only {sent + skipped:,} of {wanted:,} handled")
    note = f"{size:,} B a message; {skipped:,} skipped" + "".join(f"; {c}" for c in checks)
    return [
        Row(
            f"{stage}: snapshot",
            db,
            snapshot_rows,
            "rows",
            snapshot_s,
            None,
            f"< {SNAPSHOT_LIMIT_S:.0f} s",
            snapshot_s < SNAPSHOT_LIMIT_S if found else None,
            "" if found else "no snapshot line in the log",
        ),
        Row(
            f"{stage}: smtp-source",
            db,
            reference_count,
            "msg",
            reference_s,
            None,
            "reference",
            None,
            f"-s {POOL} -d -l {size}",
        ),
        Row(
            stage,
            db,
            sent,
            "msg",
            result.seconds,
            peak,
            f">= {RATIO_TARGET:.0%} of smtp-source",
            ratio >= RATIO_TARGET and not checks,
            f"{ratio:.0%} of {ref_rate:,.0f} msg/s; {note}",
        ),
        Row(
            f"{stage}: rate by tenths",
            db,
            sent,
            "msg",
            result.seconds,
            None,
            "flat",
            None,
            " ".join(f"{rate:,}" for rate in tenths) + " msg/s (the send loop, from its log)",
        ),
        Row(
            f"{stage}: RSS",
            db,
            len(sampled.samples),
            "samples",
            result.seconds,
            peak,
            f"<= {RSS_LIMIT_MIB:.0f} MiB, flat (+{FLAT_MIB:.0f})",
            peak <= RSS_LIMIT_MIB and last - first <= FLAT_MIB,
            f"first {min(60, result.seconds / 4):.0f} s max {first:.0f} MiB, "
            f"last max {last:.0f} MiB; highest sample {top_rss:.0f} MiB at {top_at:.0f} s, "
            f"wait4 {result.peak_rss_mib:.0f} MiB",
        ),
    ]
