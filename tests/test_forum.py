"""Forum linking with the feed and template strategies, and relinking on change."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest
from click.testing import CliRunner

from syndicate.cli import cli
from syndicate.clock import FrozenClock
from syndicate.config import load_settings
from syndicate.config.settings import Settings
from syndicate.forum.linker import external_id, link_discussions
from syndicate.forum.template import post_id, template_url
from syndicate.ingest.poll import ingest
from syndicate.links import public_url
from syndicate.models import Post
from syndicate.store import Store

NOW = datetime(2015, 12, 20, 12, 0, tzinfo=UTC)


def a_post(**changes: object) -> Post:
    values = {
        "source": "blog",
        "guid": "https://blog.example/?p=7",
        "url": "https://blog.example/2015/12/fish-survey/",
        "title": "Fish & <Ships>",
        "published": datetime(2015, 11, 30, 23, 30, tzinfo=UTC),
        "updated": datetime(2015, 11, 30, 23, 30, tzinfo=UTC),
        "first_seen": NOW,
        "content_hash": "h",
    }
    values.update(changes)
    return Post(**values)


def test_template_placeholders() -> None:
    post = a_post()
    template = "https://forum.example/t/{source}/{year}/{month}/{slug}-{id}"
    # 23:30 UTC on 30 November is already December in Auckland.
    assert template_url(template, post, ZoneInfo("Pacific/Auckland")) == (
        f"https://forum.example/t/blog/2015/12/fish-survey-{post_id(post)}"
    )
    assert template_url(template, post, ZoneInfo("UTC")).startswith(
        "https://forum.example/t/blog/2015/11/"
    )
    numeric = a_post(url="https://blog.example/?p=7")
    assert template_url("https://f.example/{slug}", numeric, ZoneInfo("UTC")) == (
        "https://f.example/fish-ships"
    )
    assert post_id(post) == post_id(a_post(title="Edited title")) != post_id(a_post(guid="x"))


def test_a_hostile_post_cannot_steer_the_template() -> None:
    """The post's values are slugs, quoted: whatever its URL or title, the template's own
    http(s) start stays the start, and the result is one public URL."""
    template = "https://forum.example/t/{source}/{slug}"
    for url, title in [
        ("javascript:alert(1)//x/%0a<script>", "t"),
        ("", "javascript:alert(1) <b onmouseover=x>"),
        ("https://blog.example/a b/\u202e\"'>", "t"),
    ]:
        result = template_url(template, a_post(url=url, title=title), ZoneInfo("UTC"))
        assert result.startswith("https://forum.example/t/blog/")
        assert public_url(result) == result


async def test_a_template_result_that_is_no_public_url_is_dropped(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, store = await linked_project(project)
    # Valid as a template (it starts with http://host), but {id} is no port number.
    broken = settings.model_copy(
        update={
            "forum": settings.forum.model_copy(
                update={"url_template": "http://forum.example:{id}/"}
            )
        }
    )
    async with store:
        with caplog.at_level(logging.WARNING, logger="syndicate"):
            report = await link_discussions(broken, store, FrozenClock(NOW))
        posts = await store.recent_posts(100)
    assert (report.linked, report.without_link) == (14, 14)  # riverside-news uses "feed"
    assert all(p.discussion_url is None for p in posts if p.source != "riverside-news")
    warned = {r.source for r in caplog.records if "discussion URL 'http://forum" in r.getMessage()}
    assert warned == {"wetland-alliance", "field-notes"}


def test_external_id_fits_discourse() -> None:
    long_source = a_post(source="a-very-long-source-name-that-goes-on-and-on-and-on")
    for post in (a_post(), long_source):
        value = external_id(post)
        assert len(value) <= 50
        assert all(ch.isalnum() or ch in "_-" for ch in value)
    assert external_id(a_post()) == external_id(a_post(title="changed"))


async def linked_project(project: Path) -> tuple[Settings, Store]:
    settings = load_settings(project / "config.toml")
    store = await Store.open(settings.database_url)
    await ingest(settings, store, FrozenClock(NOW))
    return settings, store


async def test_every_example_post_gets_a_discussion_link(project: Path) -> None:
    settings, store = await linked_project(project)
    async with store:
        report = await link_discussions(settings, store, FrozenClock(NOW))
        posts = await store.recent_posts(100)
        again = await link_discussions(settings, store, FrozenClock(NOW))
    assert (report.linked, report.without_link, report.failed) == (28, 0, 0)
    assert (again.linked, again.without_link) == (0, 0)  # nothing to redo
    by_source: dict[str, list[Post]] = {}
    for post in posts:
        by_source.setdefault(post.source, []).append(post)
    for post in by_source["riverside-news"]:  # strategy "feed": the RSS <comments>
        assert post.discussion_url == post.comments_url
        assert post.discussion_url.startswith("https://forum.riverside-commons.example/t/")
    beavers = next(p for p in by_source["wetland-alliance"] if p.title.startswith("Beavers"))
    assert beavers.discussion_url == (  # "template" wins over the feed's own replies link
        "https://forum.riverside-commons.example/t/wetland-alliance-beavers-upper-wend"
    )
    for post in by_source["field-notes"]:
        assert post.discussion_url.startswith(
            "https://forum.riverside-commons.example/t/field-notes-"
        )


async def test_a_changed_template_relinks_only_its_sources(project: Path) -> None:
    settings, store = await linked_project(project)
    async with store:
        await link_discussions(settings, store, FrozenClock(NOW))
        changed = settings.model_copy(
            update={
                "forum": settings.forum.model_copy(
                    update={"url_template": "https://talk.example/{year}/{slug}"}
                )
            }
        )
        report = await link_discussions(changed, store, FrozenClock(NOW))
        posts = await store.recent_posts(100)
    assert report.linked == 14  # the 8 + 6 posts of the two template sources
    assert all(
        p.discussion_url.startswith("https://talk.example/2015/")
        for p in posts
        if p.source != "riverside-news"
    )


async def test_strategy_none_and_a_feed_without_comments(project: Path) -> None:
    settings, store = await linked_project(project)
    sources = [
        s.model_copy(update={"forum": "none" if s.name == "field-notes" else "feed"})
        for s in settings.sources
    ]
    changed = settings.model_copy(update={"sources": sources})
    async with store:
        await link_discussions(settings, store, FrozenClock(NOW))
        report = await link_discussions(changed, store, FrozenClock(NOW))
        posts = {p.title: p for p in await store.recent_posts(100)}
    # wetland-alliance now uses its feed: one entry has a replies link, seven have none.
    assert (report.linked, report.without_link) == (1, 13)
    assert posts["Beavers on the upper Wend? Not yet, and here is why"].discussion_url == (
        "https://community.wetland-alliance.example/t/123"
    )
    assert all(p.discussion_url is None for p in posts.values() if p.source == "field-notes")


def test_cli_ingest_links_and_feeds_show_every_link(project: Path) -> None:
    config = str(project / "config.toml")
    result = CliRunner().invoke(cli, ["--config", config, "ingest"])
    assert result.exit_code == 0, result.output
    feeds = project / "feeds"
    rss = feedparser.parse(io.BytesIO((feeds / "index.rss").read_bytes()))
    assert len(rss.entries) == 28
    assert all(entry.get("comments") for entry in rss.entries)
    atom = feedparser.parse(io.BytesIO((feeds / "index.atom").read_bytes()))
    assert all(any(link.rel == "replies" for link in e.links) for e in atom.entries)
    data = json.loads((feeds / "index.json").read_text())
    assert all(item["_syndicate"]["discussion_url"] for item in data["items"])
    page = (feeds / "archive" / "2015-09.html").read_text()
    assert "https://forum.riverside-commons.example/t/wetland-alliance-beavers-upper-wend" in page
    relinked = CliRunner().invoke(cli, ["--config", config, "forum", "relink"])
    assert relinked.exit_code == 0
    assert "discussion links: 28 linked, 0 without a thread, 0 failed" in relinked.stdout
    assert ": 0 written," in relinked.stdout  # same links, same bytes
