"""The parser pool, with its real spawned processes: a process that dies costs only the feed
that kills it, and the kernel ends a feed that runs over its CPU limit.

The crashing and spinning parses come from tests/parserhooks.py (the pool's `task`, a seam
for tests): a real process exit and a real SIGXCPU, with nothing mocked.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import pytest
from parserhooks import CRASH, SPIN, crash_or_parse

from syndicate.ingest.parse import ParseError
from syndicate.ingest.workers import ParsedSource, ParserPool, parse_and_normalise

NOW = datetime(2015, 12, 20, 12, 0, tzinfo=UTC)
URL = "https://blog.example/feed"


def feed(n: int, marker: bytes = b"") -> bytes:
    return (
        b'<?xml version="1.0"?>' + marker + b'<rss version="2.0"><channel><title>t</title>'
        b"<item><title>Post %d</title><link>https://blog.example/%d/</link></item>"
        b"</channel></rss>" % (n, n)
    )


async def parse_all(pool: ParserPool, feeds: dict[str, bytes]) -> dict[str, object]:
    # gather() submits every feed before the pool's first process has started (spawning
    # takes far longer), and the first process ready takes the first feed: when that one
    # kills its process at once, the feeds after it are all still in the pool.
    results = await asyncio.gather(
        *(pool.parse(body, URL, None, name, None, NOW) for name, body in feeds.items()),
        return_exceptions=True,
    )
    return dict(zip(feeds, results, strict=True))


async def test_a_crash_fails_only_the_feed_whose_own_process_dies_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = ParserPool(workers=2, task=crash_or_parse)
    bystanders = {f"ok{n}": feed(n) for n in range(4)}
    try:
        with caplog.at_level(logging.INFO, logger="syndicate"):
            outcomes = await parse_all(
                pool, {"crash": feed(99, CRASH), **bystanders, "garbage": b"just some text"}
            )
            after = await pool.parse(feed(7), URL, None, "later", None, NOW)
    finally:
        await pool.aclose()
    crashed = outcomes.pop("crash")
    assert isinstance(crashed, ParseError)
    assert str(crashed) == "the parser process exited with status 70 reading this feed, twice"
    # A bystander's own error, raised in its process of its own, is still its own.
    garbage = outcomes.pop("garbage")
    assert isinstance(garbage, ParseError) and str(garbage).startswith("not a feed")
    for name, outcome in outcomes.items():
        assert isinstance(outcome, ParsedSource), (name, outcome)
        assert [post.url for post in outcome.posts] == [f"https://blog.example/{name[2:]}/"]
    # The broken pool was replaced once, and its successor parses.
    died = [r for r in caplog.records if r.getMessage().startswith("a parser process died")]
    assert len(died) == 1
    assert [post.url for post in after.posts] == ["https://blog.example/7/"]


async def test_a_feed_over_its_cpu_limit_is_killed_and_fails_alone() -> None:
    pool = ParserPool(workers=2, cpu_limit=1, task=crash_or_parse)
    try:
        outcomes = await parse_all(pool, {"spin": feed(99, SPIN), "ok": feed(1)})
    finally:
        await pool.aclose()
    assert str(outcomes["spin"]) == (
        "the parser process ran over its CPU limit of 1 s ([ingest] parse_cpu_limit) "
        "reading this feed, twice"
    )
    assert isinstance(outcomes["ok"], ParsedSource) and len(outcomes["ok"].posts) == 1


def test_an_entry_too_deep_is_skipped_and_named_safely() -> None:
    hostile_id = "https://blog.example/1/\x1b[31m\nFAKE LOG LINE\u202e"
    items = [
        {"id": "https://blog.example/0/", "content_html": "<p>fine</p>"},
        {"id": hostile_id, "content_html": "<div>" * 1_000},
        {"id": "https://blog.example/2/", "content_html": "<p>fine</p>"},
    ]
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}).encode()
    parsed = parse_and_normalise(body, URL, "application/feed+json", "blog", None, NOW)
    assert [post.url for post in parsed.posts] == [
        "https://blog.example/0/",
        "https://blog.example/2/",
    ]
    assert parsed.skipped == [
        "entry 1 (https://blog.example/1/?[31m?FAKE LOG LINE?) skipped: "
        "HTML nests elements more than 256 deep"
    ]
