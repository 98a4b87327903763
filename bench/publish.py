"""Benchmark: publish 10,000 posts in 100 categories and 20 sources.

    python bench/publish.py [--posts 10000] [--categories 100] [--sources 20]

Prints the time of a full build into an empty folder, and of a second build with nothing
changed (target: under 10% of the full build, 0 files written).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syndicate.clock import FrozenClock
from syndicate.config.settings import Settings
from syndicate.models import Post
from syndicate.publish.build import publish
from syndicate.store import Store

NOW = datetime(2016, 1, 15, tzinfo=UTC)
# The config "lives" in the repository, so the bundled templates are used.
REPO_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"


def make_posts(count: int, categories: int, sources: int) -> dict[str, list[Post]]:
    rng = random.Random(7)
    start = NOW - timedelta(days=3 * 365)
    by_source: dict[str, list[Post]] = {}
    for n in range(count):
        source = f"source-{n % sources:02d}"
        published = start + timedelta(minutes=rng.randint(0, 3 * 365 * 24 * 60))
        body = "".join(
            f'<p>Paragraph {p} of post {n}, with <a href="https://example.org/{n}">'
            f"a link</a> and <strong>some emphasis</strong>.</p>"
            for p in range(8)
        )
        post = Post(
            source=source,
            guid=f"https://blog.example/?p={n}",
            url=f"https://blog.example/{n}/",
            title=f"Post number {n} about things",
            published=published,
            updated=published,
            first_seen=published,
            content_hash=hashlib.sha256(body.encode()).hexdigest(),
            authors=(f"Author {n % 7}",),
            categories=tuple(f"Category {rng.randrange(categories)}" for _ in range(2)),
            summary_html=body[:200],
            content_html=body,
            excerpt=f"Paragraph 0 of post {n}",
            discussion_url=f"https://forum.example/t/{n}",
            reply_count=n % 13,
        )
        by_source.setdefault(source, []).append(post)
    return by_source


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        folder = Path(workdir)
        data = {
            "site": {"title": "Bench", "url": "https://bench.example", "timezone": "Europe/London"},
            "storage": {"database": f"sqlite:///{folder / 'bench.db'}"},
            "publish": {"dir": str(folder / "feeds")},
            "sources": [
                {"name": f"source-{i:02d}", "url": f"https://s{i}.example/feed"}
                for i in range(args.sources)
            ],
        }
        settings = Settings.model_validate(data, context={"base_dir": folder}).model_copy(
            update={"path": REPO_CONFIG}
        )
        clock = FrozenClock(NOW)
        async with await Store.open(settings.database_url) as store:
            await store.sync_sources((s.name, s.url) for s in settings.sources)
            for source, posts in make_posts(args.posts, args.categories, args.sources).items():
                await store.upsert_posts(source, posts, NOW)
            started = time.perf_counter()
            full = await publish(settings, store, clock)
            full_time = time.perf_counter() - started
            started = time.perf_counter()
            again = await publish(settings, store, clock)
            again_time = time.perf_counter() - started
    rows = [
        ("posts / categories / sources", f"{args.posts} / {args.categories} / {args.sources}"),
        ("full build", f"{full_time:.2f} s, {len(full.written)} files written"),
        (
            "second build, nothing changed",
            f"{again_time:.3f} s, {len(again.written)} files written, {again.unchanged} unchanged",
        ),
        ("second / full", f"{again_time / full_time:.1%} (target < 10%, 0 written)"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--categories", type=int, default=100)
    parser.add_argument("--sources", type=int, default=20)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
