"""Stage `sources` of bench/scale.py: a Planet-style site of 5,000 sources x 20 entries.

The feeds (bench/feeds.py, WordPress-style markup) are served by bench/feedserver.py in a
process of its own, with strong ETags and 304s. Each command runs as the user runs it, a new
`syndicate` process on the workspace's config:

    ingest --no-publish   cold: every source fetched, parsed, stored, its posts linked
    ingest                warm: every source answers 304 (target: <= 10 s for 5,000)
    forum relink          every post's discussion link again (half the sources on the
      --no-publish        template strategy, half on the feed's own comments link)
    publish               full (a feed per source and format, archives), then unchanged
    status, sources       every source's health
    run --once            every source due (`every = "1s"`): poll (304s), link, publish,
                          the digest if one is due

"Linear" is shown by running the same commands on a fifth of the sources (1,000 at full
size) in a workspace of its own first: the time per source at full size must stay within
LINEAR_SLACK of the time per source at a fifth. The full-size workspace keeps its 100,000
posts for the `posts` stage.

    python bench/scale.py --stage sources --scale 0.01 --database sqlite
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from feeds import write_feeds
from ingest import start_server
from scalekit import Measured, Row, Space

HERE = Path(__file__).resolve().parent
SOURCES = 5_000
ENTRIES = 20
STYLE = "wordpress"
WARM_TARGET = 10.0  # seconds for 5,000 sources answering 304 (the target)
LINEAR_SLACK = 1.5  # time per source at full size / at a fifth: at most this is "linear"
TEMPLATE_EVERY = 2  # every other source links by the [forum] url_template


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    args: tuple[str, ...]
    unit: str  # what the size counts: "sources", "posts", "files"
    check: Callable[[Measured, int, int], int]  # (result, sources, entries) -> size done


def run(space: Space) -> list[Row]:
    full = space.sized(SOURCES)
    fifth = max(1, full // 5)
    folder = HERE / "data" / f"feeds-{SOURCES}x{ENTRIES}-{STYLE}"
    print(f"   writing {full} feeds into {folder} (kept for the next run)", flush=True)
    write_feeds(folder, full, ENTRIES, STYLE)
    server, base_url = start_server(folder)  # bench/feedserver.py, its own process
    try:
        small = Space.create(
            space.root.parent / f"{space.root.name}-sources-fifth", space.database, space.scale
        )
        try:
            print(f"   {fifth} sources (for the per-source ratio)", flush=True)
            reference = _steps(small, base_url, fifth)
        finally:
            small.close()
        print(f"   {full} sources", flush=True)
        measured = _steps(space, base_url, full)
    finally:
        server.terminate()
        server.wait()
    return [
        _row(space, name, result, reference.get(name), full, fifth)
        for name, result in measured.items()
    ]


@dataclass(frozen=True, slots=True)
class _Result:
    measured: Measured
    size: int
    unit: str


def _steps(space: Space, base_url: str, count: int) -> dict[str, _Result]:
    """Every command on `count` sources, in order; what each did, checked from its output.

    The sources are polled `every = "1s"` while this runs, so that the last step finds them
    all due; then the config goes back to the usual `every`, for the stages after this one.
    """
    _configure(space, base_url, count, every="1s")
    posts = count * ENTRIES
    results: dict[str, _Result] = {}

    def step(name: str, *args: str, unit: str, size: Callable[[Measured], int]) -> Measured:
        measured = space.syndicate(*args)
        done = size(measured)
        results[name] = _Result(measured, done, unit)
        print(
            f"   {name:<22} {measured.seconds:8.2f} s  {done:>8,} {unit}  "
            f"{measured.peak_rss_mib:6.0f} MiB",
            flush=True,
        )
        return measured

    step("ingest, cold", "ingest", "--no-publish", unit="sources", size=_ingested(count, "ok"))
    step(
        "ingest, warm (304)",
        "ingest",
        unit="sources",
        size=_ingested(count, "not modified"),
    )
    step(
        "forum relink",
        "forum",
        "relink",
        "--no-publish",
        unit="posts",
        size=lambda m: _number(m.stdout, r"discussion links: (\d+) linked", at_least=posts),
    )
    step(
        "publish, full",
        "publish",
        unit="files",
        size=lambda m: _number(m.stdout, r": (\d+) written", at_least=count),
    )
    step(
        "publish, unchanged",
        "publish",
        unit="files",
        size=lambda m: _unchanged(m.stdout, count),
    )
    step("status", "status", unit="sources", size=_listed(count))
    step("sources", "sources", unit="sources", size=_listed(count))
    # Every source due: `run --once` polls them all (304s), links, publishes, looks at the
    # digest.
    time.sleep(1.1)
    step(
        "run --once (all due)",
        "run",
        "--once",
        unit="sources",
        size=lambda m: _number(m.stdout, r"polled (\d+) of \d+ sources", at_least=count),
    )
    _configure(space, base_url, count)
    return results


def _configure(space: Space, base_url: str, count: int, every: str | None = None) -> None:
    """The workspace's config with `count` [[sources]] on the feed server (replacing any
    written before). The server is on 127.0.0.1: a source's own host may be private."""
    blocks = []
    for number in range(count):
        lines = [
            "[[sources]]",
            f'name = "feed-{number:04d}"',
            f'url = "{base_url}/feed-{number:04d}.xml"',
        ]
        if number % TEMPLATE_EVERY == 0:
            lines.append('forum = "template"')
        if every:
            lines.append(f'every = "{every}"')
        blocks.append("\n".join(lines) + "\n")
    space.extra_config = []
    space.write_config(*blocks)


def _ingested(count: int, status: str) -> Callable[[Measured], int]:
    def check(measured: Measured) -> int:
        # A line of the table: "feed-0001 │ not modified │  304 │ ..."
        row = rf"^\s*feed-\d+\s*│?\s*{status}\s*│"
        found = len(re.findall(row, measured.stdout, re.MULTILINE))
        # Past 50 sources the quiet ones are counted in one line, not listed (cli/ingest.py).
        quiet = re.search(r"^([\d,]+) more sources: nothing new", measured.stdout, re.MULTILINE)
        if quiet and status == "not modified":
            found += int(quiet.group(1).replace(",", ""))
        if found != count:
            raise SystemExit(
                f"ingest: {found} of {count} sources {status}:\n{measured.stdout[-2000:]}"
            )
        return count

    return check


def _listed(count: int) -> Callable[[Measured], int]:
    def check(measured: Measured) -> int:
        found = len(set(re.findall(r"\bfeed-\d{4}\b", measured.stdout)))
        if found != count:
            raise SystemExit(f"{found} of {count} sources listed:\n{measured.stdout[-2000:]}")
        return count

    return check


def _number(text: str, pattern: str, *, at_least: int) -> int:
    match = re.search(pattern, text)
    if match is None or int(match.group(1)) < at_least:
        raise SystemExit(f"expected {pattern!r} >= {at_least:,} in:\n{text[-2000:]}")
    return int(match.group(1))


def _unchanged(text: str, count: int) -> int:
    match = re.search(r": (\d+) written, (\d+) unchanged", text)
    if match is None or int(match.group(1)) != 0 or int(match.group(2)) < count:
        raise SystemExit(f"an unchanged publish wrote files:\n{text[-2000:]}")
    return int(match.group(2))


def _row(
    space: Space, name: str, result: _Result, reference: _Result | None, full: int, fifth: int
) -> Row:
    seconds = result.measured.seconds
    per_source = seconds / full
    note = f"{per_source * 1000:.2f} ms/source"
    ratio = None
    if reference is not None and fifth < full:
        reference_per_source = reference.measured.seconds / fifth
        ratio = per_source / reference_per_source
        note += f" ({reference_per_source * 1000:.2f} at {fifth:,}: x{ratio:.2f})"
    if name.startswith("ingest, warm"):
        # Start-up alone is about a second, so the target is only judged at full size.
        target = f"<= {WARM_TARGET:g} s at {SOURCES:,}"
        met: bool | None = seconds <= WARM_TARGET if full == SOURCES else None
    else:
        target = f"linear (x{LINEAR_SLACK:g} per source at most)"
        met = None if ratio is None else ratio <= LINEAR_SLACK
    if result.unit != "sources":
        note = f"{result.size:,} {result.unit}; {note}"
    return Row(
        stage=f"sources: {name}",
        database=space.database,
        size=full,
        unit="sources",
        seconds=seconds,
        peak_rss_mib=result.measured.peak_rss_mib,
        target=target,
        met=met,
        note=note,
    )
