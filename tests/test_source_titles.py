"""A source's display title: one rule (SourceSettings.display_title) for the published
feeds and archive pages (publish) and the home page (web)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from syndicate.config import load_settings
from syndicate.publish.build import _source_infos
from syndicate.store import Store
from syndicate.web.home import source_links

CONFIG = """[site]
title = "T"
url = "https://example.org/"

[[sources]]
name = "titled"
url = "https://a.example.org/feed"
title = "Configured"

[[sources]]
name = "from-feed"
url = "https://b.example.org/feed"

[[sources]]
name = "never-polled"
url = "https://c.example.org/feed"

[[sources]]
name = "empty-title"
url = "https://d.example.org/feed"
"""

EXPECTED = {
    "titled": "Configured",  # the config wins over the feed
    "from-feed": "Feed B",
    "never-polled": "never-polled",
    "empty-title": "empty-title",  # a feed with an empty <title> is credited by name
}


async def test_publish_and_the_home_page_credit_sources_alike(tmp_path: Path, store: Store) -> None:
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    settings = load_settings(tmp_path / "config.toml")
    await store.sync_sources((s.name, s.url) for s in settings.sources)
    feed_titles = {"titled": "Feed A", "from-feed": "Feed B", "empty-title": ""}
    states = {state.name: state for state in await store.source_states()}
    await store.save_source_states(
        [replace(states[name], feed_title=title) for name, title in feed_titles.items()]
    )
    for source in settings.sources:
        assert source.display_title(feed_titles.get(source.name)) == EXPECTED[source.name]
    published = await _source_infos(settings, store, "https://example.org/feeds")
    assert {name: info.title for name, info in published.items()} == EXPECTED
    home = source_links(settings, await store.source_states())
    assert {name: link.title for name, link in home.items()} == EXPECTED
