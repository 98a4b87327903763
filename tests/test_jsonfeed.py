"""JSON Feed parsing: every field we map, both versions, the errors, leniency inside items."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicate.ingest.jsonfeed import looks_like_json_feed, parse_json_feed
from syndicate.ingest.raw import RawEnclosure

FEED_URL = "https://blog.example/feed.json"

FEED_11: dict[str, Any] = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Example Blog",
    "home_page_url": "https://blog.example/",
    "feed_url": FEED_URL,
    "language": "en-GB",
    "authors": [{"name": "Feed Author", "url": "https://blog.example/about/"}],
    "items": [
        {
            "id": "tag:blog.example,2026:1",
            "url": "https://blog.example/2026/06/first/",
            "title": "First post",
            "content_html": "<p>Hello <a href='/about/'>there</a></p>",
            "content_text": "Hello there",
            "summary": "A first post.",
            "date_published": "2026-06-01T09:30:00Z",
            "date_modified": "2026-06-02T10:00:00+02:00",
            "authors": [{"name": "Ann"}, {"name": "Bo", "url": "https://bo.example/"}],
            "tags": ["news", "June"],
            "image": "https://blog.example/img/1.jpg",
            "banner_image": "https://blog.example/img/banner.jpg",
            "attachments": [
                {
                    "url": "https://blog.example/media/1.mp3",
                    "mime_type": "audio/mpeg",
                    "size_in_bytes": 12345,
                },
                {"url": "report.pdf", "mime_type": "application/pdf"},
            ],
            "language": "cy",
            "_syndicate": {"discussion_url": "https://forum.example/t/first/1"},
        },
        {
            "id": 42,
            "external_url": "https://elsewhere.example/story",
            "content_text": "Just text.\n\nTwo paragraphs.",
            "banner_image": "https://blog.example/img/banner.jpg",
        },
    ],
}

FEED_10: dict[str, Any] = {
    "version": "https://jsonfeed.org/version/1",
    "title": "Old Blog",
    "home_page_url": "https://old.example/",
    "author": {"name": "Feed Author"},
    "items": [
        {
            "id": "1",
            "url": "/posts/1",
            "title": "Old post",
            "content_html": "<p>old</p>",
            "date_published": "2017-05-17T10:02:12-07:00",
            "author": {"name": "Item Author"},
        },
        {"id": "2", "url": "https://old.example/posts/2", "content_text": "no author here"},
    ],
}


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def test_json_feed_11() -> None:
    feed = parse_json_feed(encode(FEED_11), FEED_URL)
    assert (feed.format, feed.title, feed.link, feed.language, feed.warning) == (
        "json11",
        "Example Blog",
        "https://blog.example/",
        "en-GB",
        None,
    )
    first, second = feed.entries
    assert first.id == "tag:blog.example,2026:1"
    assert first.link == "https://blog.example/2026/06/first/"
    assert (first.title, first.title_type) == ("First post", "text")
    assert (first.content, first.content_type) == (
        "<p>Hello <a href='/about/'>there</a></p>",
        "html",
    )  # content_html wins over content_text
    assert (first.summary, first.summary_type) == ("A first post.", "text")
    assert first.published == datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
    assert first.updated == datetime(2026, 6, 2, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    assert first.authors == ["Ann", "Bo"]
    assert first.categories == ["news", "June"]
    assert first.image == "https://blog.example/img/1.jpg"
    assert first.enclosures == [
        RawEnclosure("https://blog.example/media/1.mp3", "audio/mpeg", 12345),
        RawEnclosure("report.pdf", "application/pdf", None),
    ]
    assert first.comments_url == "https://forum.example/t/first/1"
    assert first.language == "cy"
    assert first.base_url == "https://blog.example/2026/06/first/"

    assert second.id == "42"  # a number id becomes a string
    assert second.link == "https://elsewhere.example/story"  # external_url when no url
    assert second.title is None
    assert (second.content, second.content_type) == ("Just text.\n\nTwo paragraphs.", "text")
    assert second.summary is None
    assert second.published is None and second.updated is None
    assert second.authors == ["Feed Author"]  # falls back to the feed's authors
    assert second.image == "https://blog.example/img/banner.jpg"
    assert second.language == "en-GB"  # falls back to the feed's language
    assert second.base_url == "https://blog.example/"  # no item url: the home page
    assert second.comments_url is None
    assert second.enclosures == []


def test_json_feed_10() -> None:
    feed = parse_json_feed(encode(FEED_10), "https://old.example/feed.json")
    assert (feed.format, feed.title, feed.link, feed.language) == (
        "json10",
        "Old Blog",
        "https://old.example/",
        None,
    )
    first, second = feed.entries
    assert first.authors == ["Item Author"]
    assert second.authors == ["Feed Author"]
    assert first.published == datetime(2017, 5, 17, 17, 2, 12, tzinfo=UTC)
    assert first.link == "/posts/1"  # left as written; normalising resolves it against base_url
    assert first.base_url == "https://old.example/posts/1"
    assert first.language is None


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("https://jsonfeed.org/version/1", "json10"),
        ("https://jsonfeed.org/version/1.0", "json10"),
        ("https://jsonfeed.org/version/1.1", "json11"),
        ("https://jsonfeed.org/version/1.1/", "json11"),
        ("http://jsonfeed.org/version/1", "json10"),
        ("https://jsonfeed.org/version/1.2", "json11"),
    ],
)
def test_versions(version: str, expected: str) -> None:
    assert parse_json_feed(encode({"version": version, "items": []}), FEED_URL).format == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<rss></rss>", "not JSON"),
        (b"", "not JSON"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b"[1, 2]", "the document is a JSON list"),
        (b'"jsonfeed"', "the document is a JSON str"),
        (b'{"items": []}', 'no "version"'),
        (b'{"version": 1.1, "items": []}', 'no "version"'),
        (b'{"version": "https://example.org/version/1", "items": []}', "unknown version"),
        (b'{"version": "https://jsonfeed.org/version/2", "items": []}', "unsupported"),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', '"items" is missing'),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', "not a list"),
    ],
)
def test_errors(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_json_feed(body, FEED_URL)


def test_items_without_id_or_not_objects_are_skipped_with_a_warning() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [
            {"title": "no id, no url"},
            {"id": "", "title": "empty id"},
            {"id": None, "url": "https://blog.example/p/", "title": "url stands in for the id"},
            {"id": True, "title": "a boolean is no id"},
            "a string",
            None,
            {"id": 7.0, "title": "float id"},
            {"id": float("inf"), "title": "infinity is no id"},
        ],
    }
    feed = parse_json_feed(encode(document), FEED_URL)
    assert [(e.id, e.title) for e in feed.entries] == [
        ("https://blog.example/p/", "url stands in for the id"),
        ("7.0", "float id"),
    ]
    assert feed.warning == "skipped 6 of 8 items: not an object, or no id or url"


def test_authors_key_from_either_version_is_read() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "authors": [],
        "author": {"name": "Old-style feed author"},
        "items": [
            {"id": "1", "author": {"name": "Old-style item author"}},
            {"id": "2", "authors": [{"url": "https://no-name.example/"}]},
        ],
    }
    feed = parse_json_feed(encode(document), FEED_URL)
    assert [e.authors for e in feed.entries] == [
        ["Old-style item author"],
        ["Old-style feed author"],
    ]


def test_wrong_types_inside_items_are_ignored() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": ["not", "a", "string"],
        "home_page_url": 5,
        "language": {"en": True},
        "authors": "Someone",
        "items": [
            {
                "id": "x",
                "url": 12,
                "title": {"text": "t"},
                "content_html": None,
                "content_text": 3,
                "summary": [],
                "date_published": 1496000000,
                "date_modified": "yesterday",
                "authors": [None, "Ann", {"name": 5}, {"name": " Bo "}],
                "tags": ["ok", 1, None, "", "  "],
                "image": False,
                "attachments": [
                    "x",
                    {"url": None},
                    {"url": "a.mp3", "size_in_bytes": "12"},
                    {"url": "b.mp3", "size_in_bytes": True, "mime_type": 1},
                    {"url": "c.mp3", "size_in_bytes": -1},
                    {"url": "d.mp3", "size_in_bytes": 2.0},
                ],
                "_syndicate": "https://forum.example/",
            },
            {"id": "y", "attachments": {"url": "a.mp3"}, "tags": "news", "_syndicate": {}},
        ],
    }
    feed = parse_json_feed(encode(document), FEED_URL)
    assert (feed.title, feed.link, feed.language) == (None, None, None)
    first, second = feed.entries
    assert first.link is None and first.title is None and first.summary is None
    assert first.content is None
    assert first.published is None and first.updated is None
    assert first.authors == ["Bo"]
    assert first.categories == ["ok"]
    assert first.image is None
    assert first.enclosures == [
        RawEnclosure("a.mp3"),
        RawEnclosure("b.mp3"),
        RawEnclosure("c.mp3"),
        RawEnclosure("d.mp3", None, 2),
    ]
    assert first.comments_url is None
    assert first.base_url == FEED_URL  # no usable item url or home page: the fetch URL
    assert second.enclosures == [] and second.categories == [] and second.comments_url is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-06-01T09:30:00Z", datetime(2026, 6, 1, 9, 30, tzinfo=UTC)),
        ("2026-06-01t09:30:00z", datetime(2026, 6, 1, 9, 30, tzinfo=UTC)),
        ("2026-06-01T09:30:00.123456789+01:00", datetime(2026, 6, 1, 8, 30, 0, 123456, tzinfo=UTC)),
        ("2026-06-01T09:30:00.25-05:00", datetime(2026, 6, 1, 14, 30, 0, 250000, tzinfo=UTC)),
        (" 2026-06-01T09:30:00+00:00 ", datetime(2026, 6, 1, 9, 30, tzinfo=UTC)),
        ("2026-06-01T09:30:00", datetime(2026, 6, 1, 9, 30, tzinfo=UTC)),  # no offset: UTC
        ("2026-06-01", datetime(2026, 6, 1, tzinfo=UTC)),
        ("2026-02-30T00:00:00Z", None),
        ("2026-06-01T23:59:60Z", None),  # a leap second Python cannot represent
        ("Mon, 01 Jun 2026 09:30:00 GMT", None),
        ("", None),
        ("Z", None),
    ],
)
def test_dates(value: str, expected: datetime | None) -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [{"id": "1", "date_published": value}],
    }
    published = parse_json_feed(encode(document), FEED_URL).entries[0].published
    assert published == expected
    assert published is None or published.tzinfo is not None


def test_bytes_bom_bad_utf8_and_escaped_slashes() -> None:
    body = (
        b'\xef\xbb\xbf{"version": "https:\\/\\/jsonfeed.org\\/version\\/1.1", '
        b'"title": "Caf\xc3\xa9 \xff", "items": [{"id": "1", "title": "\\u00e9t\\u00e9"}]}'
    )
    assert looks_like_json_feed(body)
    feed = parse_json_feed(body, FEED_URL)
    assert feed.title == "Café \ufffd"  # a bad byte costs one character, not the feed
    assert feed.entries[0].title == "été"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', True),
        (b'\xef\xbb\xbf\n  {"version": "https://jsonfeed.org/version/1", "items": []}', True),
        (b'{"items": [], "version": "https://jsonfeed.org/version/1.1"}', True),
        (b'{"version": "https:\\/\\/jsonfeed.org\\/version\\/1.1"}', True),
        (b'{"type": "something else"}', False),
        (b'<?xml version="1.0"?><rss><channel><link>https://jsonfeed.org/</link></channel>', False),
        (b"", False),
    ],
)
def test_looks_like_json_feed(body: bytes, expected: bool) -> None:
    assert looks_like_json_feed(body) is expected


def test_a_large_feed_parses_whole() -> None:
    # How fast is bench/parsing.py's to print.
    items = [
        {
            "id": f"https://big.example/{n}/",
            "url": f"https://big.example/{n}/",
            "title": f"Post {n}",
            "content_html": f"<p>Body of post {n}</p>" * 5,
            "date_published": "2026-06-01T09:30:00+01:00",
            "tags": ["a", "b"],
            "authors": [{"name": "Ann"}],
        }
        for n in range(10_000)
    ]
    body = encode({"version": "https://jsonfeed.org/version/1.1", "items": items})
    feed = parse_json_feed(body, FEED_URL)
    assert len(feed.entries) == 10_000
    assert feed.entries[-1].title == "Post 9999"


def test_the_example_field_notes_feed(project: Path) -> None:
    body = (project / "examples" / "field-notes.json").read_bytes()
    assert looks_like_json_feed(body)
    feed = parse_json_feed(body, "https://notes.riverside-commons.example/feed.json")
    assert (feed.format, feed.title, feed.link, feed.language) == (
        "json11",
        "Riverside Field Notes",
        "https://notes.riverside-commons.example/",
        "en",
    )
    assert [e.title for e in feed.entries] == [
        "Otter spraint under the railway bridge",
        "Leaf litter and the autumn oxygen dip",
        "Where we sample: map and grid references",
        "Dry August: flows at their lowest in our records",
        "A late mayfly hatch on the middle Wend",
        "First readings of the season at Mill Weir",
    ]
    assert [e.published for e in feed.entries] == [
        datetime(2015, 11, 16, 8, 40, tzinfo=UTC),
        datetime(2015, 10, 5, 16, 30, tzinfo=UTC),
        datetime(2015, 9, 15, 18, 5, tzinfo=UTC),
        datetime(2015, 8, 31, 21, 10, tzinfo=UTC),
        datetime(2015, 7, 22, 20, 45, tzinfo=UTC),
        datetime(2015, 6, 11, 7, 20, tzinfo=UTC),
    ]
    leaf, dry, mayfly = feed.entries[1], feed.entries[3], feed.entries[4]
    assert leaf.updated == datetime(2015, 10, 9, 11, 15, tzinfo=UTC)
    assert dry.content_type == "text" and dry.content and dry.content.startswith("The gauge")
    assert mayfly.image == "https://notes.riverside-commons.example/images/2015/07/mayfly.jpg"
    assert mayfly.authors == ["Kwame Boateng", "Priya Nandakumar"]
    assert all(e.content_type == "html" for e in feed.entries if e is not dry)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)
ITEM_KEYS = st.sampled_from(
    ["id", "url", "external_url", "title", "content_html", "content_text", "summary",
     "date_published", "date_modified", "authors", "author", "tags", "image", "banner_image",
     "attachments", "language", "_syndicate"]
)  # fmt: skip


@settings(max_examples=300)
@given(st.lists(st.dictionaries(ITEM_KEYS, JSON) | JSON, max_size=5), JSON)
def test_any_json_inside_items_never_crashes(items: list[Any], extra: Any) -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "home_page_url": extra if isinstance(extra, str) else "https://blog.example/",
        "authors": extra,
        "items": items,
    }
    feed = parse_json_feed(encode(document), FEED_URL)
    assert len(feed.entries) <= len(items)


@settings(max_examples=300)
@given(st.binary())
def test_any_bytes_parse_or_raise_value_error(body: bytes) -> None:
    with contextlib.suppress(ValueError):
        parse_json_feed(body, FEED_URL)
    looks_like_json_feed(body)
