"""The discourse strategy end to end, against the contract server in discourse_contract.py
(written from Discourse's API documentation; it is not Discourse)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from discourse_contract import DiscourseContract
from httpserver import HttpServer

from syndicate.clock import FrozenClock
from syndicate.config import load_settings
from syndicate.config.settings import Settings
from syndicate.forum.linker import link_discussions
from syndicate.ingest.poll import ingest
from syndicate.publish.build import publish
from syndicate.store import Store

NOW = datetime(2015, 12, 20, 12, 0, tzinfo=UTC)
KEY = "contract-test-key-123"


@pytest.fixture
def contract(http_server: HttpServer, monkeypatch: pytest.MonkeyPatch) -> DiscourseContract:
    monkeypatch.setenv("DISCOURSE_API_KEY", KEY)
    return DiscourseContract(http_server, api_key=KEY, api_username="system")


def discourse_config(project: Path, contract: DiscourseContract) -> Settings:
    """The bundled config with every source on the discourse strategy."""
    config = project / "config.toml"
    text = config.read_text().replace('strategy = "feed"', 'strategy = "discourse"')
    text = text.replace('forum = "template"\n', "")
    table = f'[forum.discourse]\nurl = "{contract.url}"\napi_username = "system"\ncategory = 5\n'
    config.write_text(text.replace("\n[publish]", f"\n{table}\n[publish]", 1))
    return load_settings(config)


async def test_a_topic_per_post_and_never_twice(project: Path, contract: DiscourseContract) -> None:
    settings = discourse_config(project, contract)
    async with await Store.open(settings.database_url) as store:
        await ingest(settings, store, FrozenClock(NOW))
        report = await link_discussions(settings, store, FrozenClock(NOW))
        assert (report.linked, report.failed) == (28, 0)
        first = {p.id: (p.discussion_url, p.forum_topic_id) for p in await store.recent_posts(99)}
        again = await link_discussions(settings, store, FrozenClock(NOW), everything=True)
        second = {p.id: (p.discussion_url, p.forum_topic_id) for p in await store.recent_posts(99)}
    assert again.linked == 28
    assert len(contract.topics) == 28  # the re-run found every topic, created none
    assert first == second
    assert all(url.startswith(f"{contract.url}/t/") for url, _ in first.values())
    created = contract.topics[0]
    assert created.embed_url.startswith("https://") and len(created.external_id) <= 50


async def test_a_forum_that_is_down_blocks_nothing(
    project: Path, contract: DiscourseContract
) -> None:
    settings = discourse_config(project, contract)
    async with await Store.open(settings.database_url) as store:
        await ingest(settings, store, FrozenClock(NOW))
        contract.fail_next(502, times=28)  # one request per post, none retried
        down = await link_discussions(settings, store, FrozenClock(NOW))
        published = await publish(settings, store, FrozenClock(NOW))
        assert down.failed == 28 and down.linked == 0
        assert "HTTP 502" in down.errors[0]
        assert "index.rss" in published.written  # publishing went on without links
        back = await link_discussions(settings, store, FrozenClock(NOW))
    assert (back.linked, back.failed) == (28, 0)
    assert len(contract.topics) == 28


async def test_a_long_rate_limit_stops_asking(project: Path, contract: DiscourseContract) -> None:
    settings = discourse_config(project, contract)
    async with await Store.open(settings.database_url) as store:
        await ingest(settings, store, FrozenClock(NOW))
        contract.fail_next(429, times=1, headers={"Retry-After": "3600"})
        limited = await link_discussions(settings, store, FrozenClock(NOW))
        later = await link_discussions(settings, store, FrozenClock(NOW + timedelta(hours=1)))
    assert (limited.linked, limited.failed) == (0, 1)  # one refusal, then it stopped asking
    assert later.linked == 28


async def test_reply_counts_are_refreshed_and_published(
    project: Path, contract: DiscourseContract
) -> None:
    settings = discourse_config(project, contract)
    async with await Store.open(settings.database_url) as store:
        await ingest(settings, store, FrozenClock(NOW))
        await link_discussions(settings, store, FrozenClock(NOW))
        topic = contract.topics[0]
        for _ in range(12):
            contract.add_reply(topic.id)
        report = await link_discussions(settings, store, FrozenClock(NOW + timedelta(hours=2)))
        posts = {p.forum_topic_id: p for p in await store.recent_posts(99)}
        await publish(settings, store, FrozenClock(NOW))
    assert report.refreshed == 28
    assert posts[topic.id].reply_count == 12
    atom = (project / "feeds" / "index.atom").read_text()
    assert 'thr:count="12"' in atom


async def test_a_missing_api_key_is_named(
    project: Path, contract: DiscourseContract, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = discourse_config(project, contract)
    monkeypatch.delenv("DISCOURSE_API_KEY")
    async with await Store.open(settings.database_url) as store:
        await ingest(settings, store, FrozenClock(NOW))
        report = await link_discussions(settings, store, FrozenClock(NOW))
    assert report.failed == 28
    assert report.errors == [
        "forum.discourse.api_key_env: environment variable "
        "DISCOURSE_API_KEY is not set; 28 posts left unlinked"
    ]
    assert contract.topics == []
