"""Which file a source URL names: one rule (syndicate.config.local_path) for reading the
config and for fetching, so a URL the config accepts is one the fetcher can read."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicate.config import load_settings, local_path
from syndicate.errors import ConfigError, FetchError
from syndicate.ingest.fetch import Fetcher, Validators

MINIMAL = '[site]\ntitle = "T"\nurl = "https://example.org/"\n'


def test_what_a_source_url_names(tmp_path: Path) -> None:
    assert local_path("https://example.org/feed.xml", tmp_path) is None
    assert local_path("http://example.org/feed.xml") is None
    assert local_path("file:///srv/a%20b.xml") == Path("/srv/a b.xml")
    assert local_path("file://localhost/srv/feed.xml") == Path("/srv/feed.xml")
    assert local_path("feeds/../feeds/a.xml", tmp_path) == tmp_path.resolve() / "feeds/a.xml"
    assert local_path("/srv/feed.xml") == Path("/srv/feed.xml")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file://elsewhere.example/srv/feed.xml", "cannot fetch a file on another host"),
        ("ftp://example.org/feed.xml", "unsupported URL scheme 'ftp'"),
        ("feeds/a.xml", "relative path 'feeds/a.xml'"),
        ("http://[::1/feed", "invalid URL"),
    ],
)
def test_urls_that_name_no_readable_file_say_why(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        local_path(url)


async def test_a_file_on_another_host_is_refused_by_the_config_as_by_the_fetcher(
    tmp_path: Path,
) -> None:
    # The path exists here, but the URL names it on another machine: the config used to
    # accept it, and every poll then failed.
    feed = tmp_path / "feed.xml"
    feed.write_text("<rss/>")
    url = f"file://elsewhere.example{feed}"
    config = tmp_path / "config.toml"
    config.write_text(MINIMAL + f'[[sources]]\nname = "a"\nurl = "{url}"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    assert any("not an http(s) URL or existing file" in p for p in refused.value.problems)
    async with Fetcher(user_agent="test") as fetcher:
        with pytest.raises(FetchError, match="cannot fetch a file on another host"):
            await fetcher.fetch("a", url, Validators())
    # The same file by a local file: URL is accepted and read.
    config.write_text(MINIMAL + f'[[sources]]\nname = "a"\nurl = "{feed.as_uri()}"\n')
    assert load_settings(config).sources[0].url == feed.as_uri()
    async with Fetcher(user_agent="test") as fetcher:
        assert (await fetcher.fetch("a", feed.as_uri(), Validators())).body == b"<rss/>"
