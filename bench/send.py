"""Benchmark: send one 30-post digest issue to 100,000 subscribers over SMTP, end to end.

    python bench/send.py [--count 100000] [--pool 16] [--uvloop]
                         [--database postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
                         [--processes 2]   # PostgreSQL only: that many senders share the ledger

Both sides talk to postfix's `smtp-sink` on 127.0.0.1, started here in its own process. The
reference is postfix's `smtp-source` sending the same number of messages of the same size over
as many parallel, reused sessions (-d) as our pool. Ours is the whole of IssueSender.run() on
a fresh database holding `--count` active subscribers and one stored issue: the snapshot into
the delivery ledger, claims, personalising, building each message, SMTP, recording outcomes.
Target: >= 50% of smtp-source's rate, and peak memory that does not grow with the count.

Needs `smtp-sink` and `smtp-source` (Debian: apt-get install postfix). Setting up the database
(bulk-inserting the subscribers) is not timed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import json
import os
import pstats
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from digest import REPO_CONFIG, make_context, max_rss_mib
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from syndicate.clock import SystemClock
from syndicate.config import load_settings
from syndicate.config.settings import Settings
from syndicate.digest.build import renderer_for
from syndicate.digest.context import DigestSubscriber
from syndicate.mail.message import MessageFactory
from syndicate.mail.send import IssueSender
from syndicate.mail.smtp import SmtpTransport
from syndicate.models import Subscriber
from syndicate.store import Store
from syndicate.store.tables import subscribers

SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
INSTALL = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postfix"
PERIOD = "2015-12"
SENDER = "newsletter@riverside-commons.example"
INSERT_CHUNK = 5_000  # subscribers per INSERT: keeps the (untimed) set-up's memory flat


# --- smtp-sink and smtp-source ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sink:
    """smtp-sink on 127.0.0.1:<free port>: accepts any number of messages per connection,
    answers 250 at once, throws the mail away. `-c` prints running counters, read here."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.counters = workdir / "sink.out"
        command = [SINK, "-c", "-m", "1024"]
        if os.geteuid() == 0:  # it refuses to run as root without dropping privileges
            command += ["-u", "nobody"]
        command += [f"127.0.0.1:{self.port}", "1024"]  # backlog
        self._out = self.counters.open("wb")
        self.process = subprocess.Popen(command, stdout=self._out, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    error = self.process.stderr.read().decode() if self.process.stderr else ""
                    raise SystemExit(f"smtp-sink did not start: {error.strip()}") from None
                time.sleep(0.05)
        # That probe was a session of its own; wait until it is counted.
        self._wait_for(lambda sessions, _: sessions >= 1)

    def messages(self) -> int:
        return self._last()[1]

    def settle(self, expected: int, timeout: float = 10) -> int:
        """The message count once it reaches `expected` (or stops moving)."""
        self._wait_for(lambda _, mesg: mesg >= expected, timeout)
        return self.messages()

    def _last(self) -> tuple[int, int]:
        # Counters are rewritten in place with \r: "sess=3 quit=3 mesg=2000\r".
        data = self.counters.read_bytes()[-200:].decode("ascii", "replace")
        found = re.findall(r"sess=(\d+) quit=\d+ mesg=(\d+)", data)
        return (int(found[-1][0]), int(found[-1][1])) if found else (0, 0)

    def _wait_for(self, done, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not done(*self._last()) and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self._out.close()


def reference(sink: Sink, count: int, size: int, sessions: int) -> float:
    """smtp-source: `count` messages of `size` bytes over `sessions` reused connections;
    the elapsed wall-clock seconds."""
    before = sink.messages()
    command = [
        SOURCE,
        "-s", str(sessions),
        "-d",  # do not disconnect after each message: reuse the session, as our pool does
        "-m", str(count),
        "-l", str(size),
        "-f", SENDER,
        "-t", "subscriber@example.org",
        f"127.0.0.1:{sink.port}",
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True)
    elapsed = time.perf_counter() - started
    received = sink.settle(before + count) - before
    if received != count:
        raise SystemExit(f"smtp-source: the sink counted {received:,} of {count:,} messages")
    return elapsed


# --- our side -----------------------------------------------------------------------------------


def settings_for(database: str, port: int, pool: int) -> Settings:
    """The repository's config.toml (its templates), with SMTP to the sink and the bench DB."""
    base = load_settings(REPO_CONFIG)
    smtp = base.mail.smtp.model_copy(
        update={"host": "127.0.0.1", "port": port, "tls": "none", "pool": pool, "rate": 0}
    )
    return base.model_copy(
        update={
            "storage": base.storage.model_copy(update={"database": database}),
            "mail": base.mail.model_copy(update={"transport": "smtp", "smtp": smtp}),
        }
    )


def sample_message(settings: Settings) -> bytes:
    """One real message of the issue, to size smtp-source's messages like ours (8bit bodies:
    smtp-sink offers 8BITMIME, so that is what IssueSender sends it)."""
    rendered = renderer_for(settings).render(make_context(30))
    factory = MessageFactory(
        site_title=settings.site.title,
        site_url=settings.site.url,
        sender=settings.digest.sender,
        subject=rendered.subject,
        archive_url=f"{settings.site.url}/feeds/archive/index.html",
        eight_bit=True,
    )
    person = Subscriber(
        id=54321,
        email="subscriber54321@example.org",
        name="Subscriber 54321",
        status="active",
        categories=(),
        consent_source="bench",
        consented_at=datetime(2015, 1, 1, tzinfo=UTC),
    )
    link = f"{settings.site.url}/unsubscribe/{'x' * 40}"
    html, text = rendered.personalise(DigestSubscriber.of(person.name, person.email), link, link)
    return factory.build(person, html, text, link, factory.message_id(1, person.id))


@contextlib.contextmanager
def database(url: str | None, workdir: Path) -> Iterator[str]:
    """A fresh SQLite file in `workdir`, or a temporary database on the PostgreSQL server of
    `url`, dropped afterwards (as tests/conftest.py does)."""
    if url is None:
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    import psycopg

    server = make_url(url)
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"syndicate_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def populate(settings: Settings, count: int) -> None:
    """`count` active subscribers (bulk INSERTs, a chunk at a time) and the stored issue."""
    store = await Store.open(settings.database_url)
    try:
        now = datetime(2015, 12, 1, tzinfo=UTC)
        async with store.engine.begin() as conn:
            for start in range(0, count, INSERT_CHUNK):
                rows = [
                    {
                        "email": f"subscriber{n}@example.org",
                        "name": f"Subscriber {n}" if n % 5 else "",
                        "status": "active",
                        "categories": [],
                        "consent_source": "bench",
                        "consented_at": now,
                        "confirmed_at": now,
                        "bounce_count": 0,
                    }
                    for n in range(start, min(count, start + INSERT_CHUNK))
                ]
                await conn.execute(insert(subscribers), rows)
        rendered = renderer_for(settings).render(make_context(30))
        await store.create_issue(
            PERIOD, rendered.subject, list(range(1, 31)), rendered.html, rendered.text, now
        )
    finally:
        await store.close()


async def send(settings: Settings, profile: cProfile.Profile | None = None) -> dict:
    """IssueSender.run() over a fresh SmtpTransport; what it did and how long it took."""
    store = await Store.open(settings.database_url)
    try:
        issue = await store.issue(PERIOD)
        assert issue is not None
        clock = SystemClock()
        transport = SmtpTransport(settings.mail.smtp)
        marks: list[float] = []  # when each tenth of the messages was done: a flat rate?

        def progress(counts) -> None:
            if counts.total and counts.done * 10 >= counts.total * (len(marks) + 1):
                marks.append(time.perf_counter())

        sender = IssueSender(settings, store, clock, issue, transport, on_progress=progress)
        original = store.snapshot_deliveries
        snapshot = [0.0]

        async def timed_snapshot(*args, **kwargs):  # the snapshot's share of the run
            began = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                snapshot[0] = time.perf_counter() - began

        store.snapshot_deliveries = timed_snapshot  # type: ignore[method-assign]
        rss_before = max_rss_mib()
        if profile is not None:
            profile.enable()
        started = time.perf_counter()
        report = await sender.run()
        await transport.close()
        elapsed = time.perf_counter() - started
        if profile is not None:
            profile.disable()
        tenth = report.counts.total / 10
        edges = [started, *marks]
        return {
            "elapsed": elapsed,
            "deciles": [round(tenth / (b - a)) for a, b in itertools.pairwise(edges)],
            "snapshot": snapshot[0],
            "sent": report.counts.sent,
            "ledger": report.ledger,
            "errors": report.errors[:3],
            "rss_before": rss_before,
            "rss_after": max_rss_mib(),
        }
    finally:
        await store.close()


def run_loop(coroutine, use_uvloop: bool):
    if use_uvloop:
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def worker(args: argparse.Namespace) -> None:
    """One of several sender processes (--processes): set up, say "ready", wait for "go"."""
    settings = settings_for(args.worker_database, args.worker_port, args.pool)
    print("ready", flush=True)
    sys.stdin.readline()
    result = run_loop(send(settings), args.uvloop)
    print(json.dumps(result), flush=True)


def send_in_processes(args: argparse.Namespace, database_url: str, port: int) -> dict:
    command = [sys.executable, __file__, "--pool", str(args.pool)]
    command += ["--worker-database", database_url, "--worker-port", str(port)]
    command += ["--uvloop"] if args.uvloop else []
    children = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(args.processes)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = [json.loads(child.communicate()[0]) for child in children]
    elapsed = time.perf_counter() - started
    return {
        "elapsed": elapsed,
        "snapshot": max(result["snapshot"] for result in results),
        "sent": sum(result["sent"] for result in results),
        "ledger": results[-1]["ledger"],
        "errors": [error for result in results for error in result["errors"]][:3],
        "rss_before": max(result["rss_before"] for result in results),
        "rss_after": max(result["rss_after"] for result in results),
        "per_process": [result["sent"] for result in results],
    }


# --- the benchmark ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="subscribers (messages)")
    parser.add_argument("--pool", type=int, default=16, help="SMTP connections / sessions")
    parser.add_argument("--uvloop", action="store_true", help="run our side on uvloop")
    parser.add_argument("--database", help="a PostgreSQL URL (default: a temp SQLite file)")
    parser.add_argument("--processes", type=int, default=1, help="senders (PostgreSQL only)")
    parser.add_argument("--no-reference", action="store_true", help="skip smtp-source")
    parser.add_argument("--profile", metavar="FILE", help="cProfile our side into FILE")
    parser.add_argument("--worker-database", help=argparse.SUPPRESS)
    parser.add_argument("--worker-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("SYNDICATE_SECRET", "bench-secret-not-for-production")
    if args.worker_database:
        worker(args)
        return

    missing = [tool for tool in (SINK, SOURCE) if not os.access(tool, os.X_OK)]
    if missing:
        print(f"missing {', '.join(missing)}: install postfix's test tools with\n  {INSTALL}")
        sys.exit(2)
    if args.processes > 1 and not (args.database or "").startswith("postgresql"):
        parser.error("--processes > 1 needs --database postgresql+psycopg://...")

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sink = Sink(workdir)
        try:
            with database(args.database, workdir) as url:
                settings = settings_for(url, sink.port, args.pool)
                size = len(sample_message(settings))
                ref = None
                if not args.no_reference:
                    ref = reference(sink, args.count, size, args.pool)
                run_loop(populate(settings, args.count), args.uvloop)
                before = sink.messages()
                profile = cProfile.Profile() if args.profile else None
                if args.processes > 1:
                    ours = send_in_processes(args, url, sink.port)
                else:
                    ours = run_loop(send(settings, profile), args.uvloop)
                received = sink.settle(before + args.count) - before
        finally:
            sink.close()
    if profile is not None:
        profile.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(25)

    ledger_ok = ours["ledger"] == {"sent": args.count}
    rate = args.count / ours["elapsed"]
    backend = "PostgreSQL" if args.database else "SQLite"
    pool = f"{args.pool}" if args.processes == 1 else f"{args.pool} x {args.processes} processes"
    rows = [
        ("subscribers / posts", f"{args.count:,} / 30"),
        ("message size", f"{size:,} bytes"),
        ("pool (sessions)", pool),
        ("event loop", "uvloop" if args.uvloop else "asyncio"),
        ("database", backend),
    ]
    if ref is not None:
        ref_rate = args.count / ref
        rows.append(("smtp-source", f"{ref:.2f} s, {ref_rate:,.0f} msg/s"))
    rows += [
        ("ours (IssueSender.run)", f"{ours['elapsed']:.2f} s, {rate:,.0f} msg/s"),
        ("  of which snapshot", f"{ours['snapshot'] * 1000:.0f} ms"),
        ("  rate by tenths", " ".join(f"{tenth:,}" for tenth in ours.get("deciles", []))),
    ]
    if ref is not None:
        rows.append(("ratio", f"{rate / ref_rate:.0%} of smtp-source (target >= 50%)"))
    rows += [
        (
            "peak memory",
            f"{ours['rss_after']:.0f} MiB max RSS ({ours['rss_before']:.0f} MiB before sending)",
        ),
        (
            "checks",
            f"ledger {ours['ledger']}{'' if ledger_ok else ' (EXPECTED all sent)'}; "
            f"sink counted {received:,}",
        ),
    ]
    if "per_process" in ours:
        rows.append(("sent per process", " / ".join(f"{n:,}" for n in ours["per_process"])))
    if ours["errors"]:
        rows.append(("errors", "; ".join(ours["errors"])))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    if not ledger_ok or received != args.count:
        sys.exit(1)


if __name__ == "__main__":
    main()
