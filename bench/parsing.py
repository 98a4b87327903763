"""Benchmark: what parsing a large JSON Feed and a billion-laughs RSS document costs.

    python bench/parsing.py [--repeat 5]

The timing halves of two tests (tests/test_jsonfeed.py, a large feed parses whole;
tests/test_parse.py, billion laughs does not expand), which check only the behaviour: wall
clock bounds in a test fail on a busy machine and prove nothing on an idle one. Prints the
best of --repeat runs of parse_feed for each. Targets: 10,000 JSON Feed items well under
2 s; the billion laughs well under a second (it is refused or read unexpanded).
"""

from __future__ import annotations

import argparse
import json
import time

from syndicate.ingest.parse import ParseError, parse_feed

URL = "https://big.example/feed.json"


def large_json_feed(items: int = 10_000) -> bytes:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [
                {
                    "id": f"https://big.example/{n}/",
                    "url": f"https://big.example/{n}/",
                    "title": f"Post {n}",
                    "content_html": f"<p>Body of post {n}</p>" * 5,
                    "date_published": "2026-06-01T09:30:00+01:00",
                    "tags": ["a", "b"],
                    "authors": [{"name": "Ann"}],
                }
                for n in range(items)
            ],
        }
    ).encode()


def billion_laughs() -> bytes:
    lol = b"".join(b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10))
    return (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY lol0 "lol">' + lol + b"]>"
        b'<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title>'
        b"<link>https://e.org/1</link></item></channel></rss>"
    )


def best(repeat: int, body: bytes) -> tuple[float, str]:
    times, outcome = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            feed = parse_feed(body, URL)
            outcome = f"{len(feed.entries):,} entries"
        except ParseError as error:
            outcome = f"refused: {error}"
        times.append(time.perf_counter() - started)
    return min(times), outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for name, body in (
        ("JSON Feed, 10,000 items", large_json_feed()),
        ("RSS, billion laughs", billion_laughs()),
    ):
        elapsed, outcome = best(args.repeat, body)
        print(f"{name:<26} {len(body):>11,} bytes {elapsed * 1000:>9.1f} ms  {outcome}")


if __name__ == "__main__":
    main()
