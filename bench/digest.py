"""Benchmark: personalise 100,000 digest emails of 30 posts from one shared render.

    python bench/digest.py [--count 100000] [--posts 30]

Prints the one-off cost of the shared render (templates + CSS inlining, cold and warm), then
personalised copies per second (HTML + text for each subscriber: the work of the sending
loop, without MIME or SMTP) and peak memory. Target: >= 5,000 personalised copies/s.

Then the same for a list that reads the bundled config's four languages (issue 20): the
posts spread over them (the Thai ones with Thai excerpts, wrapped by ICU), one render per
language, and copies personalised for subscribers cycling through the languages, each
greeted in theirs.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syndicate.config import load_settings
from syndicate.digest.build import (
    NEUTRAL_SUBSCRIBER,
    group,
    period_of,
    reader_words,
    renderer_for,
)
from syndicate.digest.context import (
    DigestContext,
    DigestPost,
    DigestSite,
    DigestSubscriber,
    DigestUrls,
)
from syndicate.digest.issue import IssueContent
from syndicate.digest.render import RenderedDigest

# The repository's own config, so the bundled templates (templates/email/) are measured.
REPO_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"
SUBSCRIBERS = 1_000  # distinct subscribers, cycled: building their values is not measured


def make_context(posts: int) -> DigestContext:
    settings = load_settings(REPO_CONFIG)
    site = settings.site
    period = period_of(settings, "2015-12")
    start = datetime(2015, 12, 1, 9, tzinfo=UTC)
    items = [
        DigestPost(
            title=f"Post number {n}: the river & the <commons>",
            url=f"{site.url}/2015/12/post-{n}/",
            excerpt=(
                f"Paragraph 0 of post {n}, long enough to be wrapped in the text part: the "
                "volunteers met on Saturday to clear the towpath and plant two hundred trees."
            ),
            image=f"{site.url}/images/post-{n}.jpg" if n % 3 == 0 else None,
            author=f"Author {n % 7}",
            category=f"Category {n % 5}",
            source="Riverside News",
            date=start + timedelta(hours=17 * n),
            discussion_url=f"https://forum.example/t/post-{n}/{n}" if n % 4 else None,
            reply_count=n % 13 if n % 2 else None,
            categories=(f"Category {n % 5}",),
        )
        for n in range(posts)
    ]
    base = f"{site.url}/feeds"
    return DigestContext(
        site=DigestSite(site.title, site.url, site.description, site.language, site.timezone),
        period=period,
        groups=group(items, "category"),
        posts=tuple(items),
        urls=DigestUrls(
            view_in_browser=f"{base}/digest/{period.key}.html",
            archive=f"{base}/archive/{period.key}.html",
            feeds=f"{base}/index.rss",
        ),
        subscriber=NEUTRAL_SUBSCRIBER,
        intro_html="<p>A <strong>busy</strong> month on the river.</p>",
        more=12,
        preheader=f"{posts} posts from {period.label}",
    )


def subscribers(site_url: str) -> list[tuple[DigestSubscriber, str, str]]:
    people = []
    for n in range(SUBSCRIBERS):
        name = f"Subscriber {n}" if n % 5 else ""  # some without a name
        greeting = f"Hello {name}," if name else "Hello,"
        token = f"{n:08d}.signed-token-of-about-forty-characters"
        people.append(
            (
                DigestSubscriber(name, f"subscriber{n}@example.org", greeting),
                f"{site_url}/unsubscribe/{token}",
                f"{site_url}/preferences/{token}",
            )
        )
    return people


def max_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--posts", type=int, default=30)
    args = parser.parse_args()

    context = make_context(args.posts)
    renderer = renderer_for(load_settings(REPO_CONFIG))
    started = time.perf_counter()
    rendered = renderer.render(context)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    renderer.render(context)
    warm = time.perf_counter() - started

    people = subscribers(context.site.url)
    rss_before = max_rss_mib()
    total = 0
    started = time.perf_counter()
    for n in range(args.count):
        subscriber, unsubscribe, preferences = people[n % SUBSCRIBERS]
        html, text = rendered.personalise(subscriber, unsubscribe, preferences)
        total += len(html) + len(text)  # use the result, as a sender would
    elapsed = time.perf_counter() - started
    rate = args.count / elapsed

    rows = [
        ("posts / copies", f"{args.posts} / {args.count:,}"),
        (
            "shared render",
            f"{cold * 1000:.1f} ms cold (compiles templates), {warm * 1000:.1f} ms warm",
        ),
        ("one copy", f"{len(html):,} chars HTML + {len(text):,} chars text"),
        ("personalise", f"{elapsed:.2f} s, {elapsed / args.count * 1e6:.1f} µs per copy"),
        ("copies/s", f"{rate:,.0f} (target >= 5,000)"),
        ("peak memory", f"{max_rss_mib():.0f} MiB max RSS ({rss_before:.0f} MiB before the loop)"),
        ("output", f"{total / 1e9:.2f} GB of HTML + text produced"),
    ]
    rows += languages(context, args.count)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


THAI_EXCERPT = (
    "อาสาสมัครสิบสองคนเดินทางไปยังท่าเรือประมงเพื่อแจกเอกสารสิทธิแรงงานและรับฟังปัญหาของลูกเรือ"
    "ที่ทำงานบนเรือประมงนอกน่านน้ำ หลายคนเล่าว่าไม่ได้รับค่าจ้างครบตามสัญญา"
)


def languages(context: DigestContext, count: int) -> list[tuple[str, str]]:
    """The multilingual run: one render per language, copies for readers of all of them."""
    settings = load_settings(REPO_CONFIG)
    offered = settings.site.offered_languages
    posts = tuple(
        replace(
            post,
            language=offered[n % len(offered)],
            excerpt=THAI_EXCERPT if offered[n % len(offered)] == "th" else post.excerpt,
        )
        for n, post in enumerate(context.posts)
    )
    content = IssueContent(
        context=replace(context, posts=posts, groups=group(list(posts), "category")),
        post_ids=tuple(range(len(posts))),
        left_out=(),
        group_by="category",
        languages=tuple(offered),
        other_languages="link",
    )
    renderer = renderer_for(settings)
    copies: list[tuple[RenderedDigest, DigestSubscriber]] = []
    renders = []
    for language in offered:
        words = reader_words(settings, language)
        started = time.perf_counter()
        rendered = renderer.render(content.for_reader(frozenset(), words))
        renders.append(f"{language} {(time.perf_counter() - started) * 1000:.1f}")
        copies.append((rendered, DigestSubscriber.of("Somchai", "s@example.org", words)))
    site_url = context.site.url
    started = time.perf_counter()
    total = 0
    for n in range(count):
        rendered, person = copies[n % len(copies)]
        token = f"{n:08d}.signed-token-of-about-forty-characters"
        html, text = rendered.personalise(
            person, f"{site_url}/unsubscribe/{token}", f"{site_url}/preferences/{token}"
        )
        total += len(html) + len(text)
    elapsed = time.perf_counter() - started
    return [
        ("languages", f"{', '.join(offered)}: posts spread over them, others linked"),
        ("render per language", f"{', '.join(renders)} ms (warm templates)"),
        ("copies/s, mixed list", f"{count / elapsed:,.0f} (target >= 5,000)"),
    ]


if __name__ == "__main__":
    main()
