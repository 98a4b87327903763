"""Benchmark: ingest 1,000 feeds x 20 entries from a local HTTP server, cold then warm.

    python bench/ingest.py [--feeds 1000] [--entries 20]

Prints entries/s, the cold ingest (fetch, parse, normalise, sanitise, store) against plain
`feedparser.parse` with its defaults over the same bytes in the same run, and the warm run
(every source answers 304). Targets: cold at least 2x faster than feedparser alone; warm
1,000 sources in <= 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import feedparser
from feeds import write_feeds

from syndicate.clock import SystemClock
from syndicate.config.settings import Settings
from syndicate.ingest.poll import ingest
from syndicate.store import Store

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(folder: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "feedserver.py"), str(folder), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    return server, f"http://127.0.0.1:{port}"


def settings_for(base_url: str, paths: list[Path], workdir: Path) -> Settings:
    data = {
        "site": {"title": "Bench", "url": "https://bench.example"},
        "storage": {"database": f"sqlite:///{workdir / 'bench.db'}"},
        "sources": [
            {"name": f"feed-{i:04d}", "url": f"{base_url}/{path.name}"}
            for i, path in enumerate(paths)
        ],
    }
    settings = Settings.model_validate(data, context={"base_dir": workdir})
    return settings.model_copy(update={"path": workdir / "config.toml"})


async def run_ingest(settings: Settings) -> tuple[float, int, int]:
    async with await Store.open(settings.database_url) as store:
        started = time.perf_counter()
        report = await ingest(settings, store, SystemClock())
        elapsed = time.perf_counter() - started
    assert not report.failed, report.failed[:3]
    new = sum(source.new for source in report.sources)
    not_modified = sum(source.status == "not modified" for source in report.sources)
    return elapsed, new, not_modified


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument(
        "--style",
        choices=["wordpress", "plain"],
        default="wordpress",
        help="content markup: block-editor HTML, or bare paragraphs",
    )
    args = parser.parse_args()

    data = HERE / "data" / f"feeds-{args.feeds}x{args.entries}-{args.style}"
    paths = write_feeds(data, args.feeds, args.entries, args.style)
    bodies = [path.read_bytes() for path in paths]
    total_entries = args.feeds * args.entries

    started = time.perf_counter()
    for body in bodies:
        feedparser.parse(body)
    reference = time.perf_counter() - started

    server, base_url = start_server(data)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            settings = settings_for(base_url, paths, Path(workdir))
            cold, new, _ = asyncio.run(run_ingest(settings))
            warm, _, not_modified = asyncio.run(run_ingest(settings))
    finally:
        server.terminate()
        server.wait()

    assert new == total_entries, f"stored {new} of {total_entries} entries"
    assert not_modified == args.feeds, f"{not_modified} of {args.feeds} answered 304"
    rows = [
        (
            "feeds x entries",
            f"{args.feeds} x {args.entries}, {args.style} HTML "
            f"({sum(map(len, bodies)) / 1e6:.1f} MB)",
        ),
        (
            "feedparser.parse, defaults (reference)",
            f"{reference:.2f} s  {total_entries / reference:,.0f} entries/s",
        ),
        (
            "cold ingest: fetch+parse+sanitise+store",
            f"{cold:.2f} s  {total_entries / cold:,.0f} entries/s",
        ),
        ("cold ingest vs feedparser alone", f"{reference / cold:.2f}x faster (target >= 2x)"),
        ("warm ingest, all 304", f"{warm:.2f} s for {args.feeds} sources (target <= 2 s)"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    main()
