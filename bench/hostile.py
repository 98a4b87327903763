"""Benchmark: what hostile HTML costs to ingest, next to ordinary feeds.

    python bench/hostile.py [--repeat 3]

1. One feed per case, parsed and normalised as a parser process does it
   (`parse_and_normalise`, best of --repeat): ordinary feeds, the issue's 1.5 MB item of
   300,000 nested <div>s, the deepest nesting still accepted filling 1.5 MB, and formatting
   elements re-opened at every paragraph. Targets: a refused item costs no more than reading
   its bytes; accepted nesting costs about what ordinary markup of the same size does.
2. What nh3 alone spends on those shapes without the nesting check, at sizes small enough to
   finish: the time grows with the square of the depth.
3. The nesting check's share of parsing the WordPress-style benchmark feeds (bench/feeds.py).
   Target: a few percent.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime

import nh3
from feeds import feed_xml

from syndicate.ingest.parse import parse_feed
from syndicate.ingest.workers import parse_and_normalise
from syndicate.markup.nesting import MAX_DEPTH, check_nesting

NOW = datetime(2015, 12, 20, tzinfo=UTC)
URL = "https://blog.example/feed"
MB = 1_500_000


def rss(*bodies: str) -> bytes:
    items = "".join(
        f"<item><title>Post {n}</title><link>https://blog.example/{n}/</link>"
        f"<description><![CDATA[{body}]]></description></item>"
        for n, body in enumerate(bodies)
    )
    channel = f"<channel><title>t</title>{items}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


def best(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def paragraph(n: int) -> str:
    return f'<p>Paragraph {n} with <a href="/p/{n}">a link</a> and <em>some</em> text.</p>'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    ordinary = "".join(paragraph(n) for n in range(MB // 70))
    deepest = "<div>" * (MAX_DEPTH - 1) + "x" + "</div>" * (MAX_DEPTH - 1)
    cases = {
        "20 WordPress-style entries": feed_xml(0, 20, "wordpress"),
        "1.5 MB item of ordinary paragraphs": rss("<p>a</p>", ordinary),
        "the issue's item: 300,000 nested <div>s (1.5 MB)": rss("<p>a</p>", "<div>" * 300_000),
        f"<div>s {MAX_DEPTH - 1} deep, repeated to 1.5 MB": rss(
            "<p>a</p>", deepest * (MB // len(deepest))
        ),
        "5,000 paragraphs re-opening every <b> (94 KB)": rss(
            "<p>a</p>", "".join(f"<p><b id={n}>x</p>" for n in range(5_000))
        ),
    }
    print("1. parse_and_normalise, one feed per case")
    print(f"   {'case':<52} {'bytes':>10} {'time':>9}  result")
    for name, body in cases.items():
        parsed = parse_and_normalise(body, URL, None, "bench", None, NOW)
        elapsed = best(
            args.repeat, lambda b=body: parse_and_normalise(b, URL, None, "b", None, NOW)
        )
        result = f"{len(parsed.posts)} stored, {len(parsed.skipped)} skipped"
        print(f"   {name:<52} {len(body):>10,} {elapsed * 1000:>7.1f} ms  {result}")

    print("\n2. nh3 alone, without the nesting check (what the check saves)")
    elapsed = best(args.repeat, lambda: nh3.clean(ordinary))
    print(f"   for scale, 1.5 MB of ordinary paragraphs ({len(ordinary):,} bytes): {elapsed:.2f} s")
    for depth in (5_000, 10_000, 20_000):
        html = "<div>" * depth + "x" + "</div>" * depth
        elapsed = best(args.repeat, lambda h=html: nh3.clean(h))
        print(f"   {depth:>6,} nested <div>s ({len(html):>7,} bytes): {elapsed:6.2f} s")
    for count in (500, 1_000, 2_000):
        html = "".join(f"<p><b id={n}>x</p>" for n in range(count))
        elapsed = best(args.repeat, lambda h=html: nh3.clean(h))
        print(
            f"   {count:>6,} paragraphs re-opening <b>s ({len(html):>6,} bytes): {elapsed:6.2f} s"
        )

    print("\n3. the nesting check's share of parsing 50 WordPress-style feeds x 20 entries")
    bodies = [feed_xml(n, 20, "wordpress") for n in range(50)]
    fragments = [
        html
        for body in bodies
        for entry in parse_feed(body, URL).entries
        for html in (entry.content, entry.summary)
        if html
    ]
    check = best(args.repeat, lambda: [check_nesting(html) for html in fragments])
    whole = best(
        args.repeat,
        lambda: [parse_and_normalise(body, URL, None, "bench", None, NOW) for body in bodies],
    )
    entries = len(bodies) * 20
    print(
        f"   check {check / entries * 1e6:.0f} µs per entry, parse+normalise "
        f"{whole / entries * 1e6:.0f} µs per entry: {check / whole:.1%}"
    )


if __name__ == "__main__":
    main()
