"""Burmese in Zawgyi: detected once per post, converted to Unicode at ingest, flagged.

The fixtures (tests/fixtures/zawgyi/) are a made-up Myanmar news feed, three items in Zawgyi
and one in Unicode, with the Unicode text each must become. Converting Unicode by mistake
would corrupt it, so every test of a Zawgyi case has its Unicode twin.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest

from syndicate.clock import FrozenClock
from syndicate.config.settings import Settings
from syndicate.ingest import zawgyi
from syndicate.ingest.normalise import MAX_TITLE, normalise_entry
from syndicate.ingest.poll import ingest
from syndicate.ingest.raw import RawEntry
from syndicate.ingest.workers import parse_and_normalise
from syndicate.ingest.zawgyi import (
    MAX_SAMPLE,
    html_to_unicode,
    is_zawgyi,
    post_text,
    text_to_unicode,
)
from syndicate.markup.sanitise import excerpt, sanitise_html
from syndicate.models import Post
from syndicate.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "zawgyi"
FEED = (FIXTURES / "feed.xml").read_bytes()
EXPECTED: dict[str, dict[str, Any]] = json.loads((FIXTURES / "expected.json").read_text())
FEED_URL = "https://myanmar-news.example/feed/"
NOW = datetime(2015, 12, 20, 12, 0, tzinfo=UTC)

ZAWGYI = "ျမန္မာႏိုင္ငံ ရန္ကုန္ၿမိဳ႕"
UNICODE = "မြန်မာနိုင်ငံ ရန်ကုန်မြို့"
# Shan uses code points that Zawgyi took over for its own shapes (U+1075-U+1082 and more);
# the model was trained on Shan too, so it must not take Shan for Zawgyi.
SHAN = "မႂ်ႇသုင်ၶႃႈ ၵႂၢမ်းတႆး"
THAI = "สวัสดีครับ ข่าววันนี้"


def parse(body: bytes = FEED) -> list[Post]:
    parsed = parse_and_normalise(body, FEED_URL, "application/rss+xml", "mm", None, NOW)
    return list(parsed.posts)


def normalise(entry: RawEntry) -> Post:
    return normalise_entry(
        entry,
        source="mm",
        feed_url=FEED_URL,
        feed_link="https://myanmar-news.example/",
        default_category=None,
        now=NOW,
    )


@pytest.fixture
def detector_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every text the detector is asked about, in order (the real detector answers)."""
    calls: list[str] = []
    real = zawgyi.zawgyi_probability

    def counting(text: str) -> float:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(zawgyi, "zawgyi_probability", counting)
    yield calls


# Detecting


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ZAWGYI, True),
        (UNICODE, False),
        ("Myanmar election results announced", False),
        (THAI, False),
        (SHAN, False),
        (f"Breaking: {ZAWGYI} (Reuters)", True),  # mixed with English: the Burmese decides
        (f"Breaking: {UNICODE} (Reuters)", False),
        ("", False),
        ("က", False),  # one letter means the same in both: not enough to convert
        ("ေ", False),
        ("၁၂၃", False),  # Myanmar digits only: nothing to decide on
    ],
)
def test_detection(text: str, expected: bool) -> None:
    assert is_zawgyi(text) is expected


@pytest.mark.parametrize("guid", list(EXPECTED))
def test_each_fixture_title_is_detected_as_what_it_is(guid: str) -> None:
    posts = {post.guid: post for post in parse()}
    raw_title = _feed_titles()[guid]
    assert is_zawgyi(raw_title) is EXPECTED[guid]["zawgyi"]
    assert is_zawgyi(posts[guid].title) is False  # what we store is Unicode


def test_text_without_myanmar_characters_never_reaches_the_detector(
    detector_calls: list[str],
) -> None:
    for text in ["Hello", THAI, "Ελληνικά", "", "https://myanmar-news.example/"]:
        assert is_zawgyi(text) is False
    html = '<p>English, linking to <a href="https://x.example/tag/ျမန္မာ/">a tag</a>.</p>'
    assert post_text("An English title", html, html) == zawgyi.PostText(
        "An English title", html, html
    )
    assert detector_calls == []


def test_one_decision_per_post_on_all_its_text(detector_calls: list[str]) -> None:
    title, summary = "ၿမိဳ႕", "<p>ျမန္မာႏိုင္ငံ</p>"
    content = "<p>ရန္ကုန္ <b>ၿမိဳ႕</b></p>"
    text = post_text(title, summary, content)
    assert len(detector_calls) == 1
    assert detector_calls[0] == "ၿမိဳ႕\nျမန္မာႏိုင္ငံ\nရန္ကုန္ \nၿမိဳ႕"
    assert (text.title, text.summary_html, text.content_html, text.zawgyi) == (
        "မြို့",
        "<p>မြန်မာနိုင်ငံ</p>",
        "<p>ရန်ကုန် <b>မြို့</b></p>",
        True,
    )


def test_a_huge_post_shows_the_detector_a_bounded_sample(detector_calls: list[str]) -> None:
    body = "<p>" + "ျမန္မာႏိုင္ငံ " * 50_000 + "</p>"
    text = post_text("", body, body)
    assert text.zawgyi
    assert len(detector_calls) == 1 and len(detector_calls[0]) == MAX_SAMPLE
    assert text.content_html == "<p>" + "မြန်မာနိုင်ငံ " * 50_000 + "</p>"


# Converting


@pytest.mark.parametrize(
    ("zawgyi_text", "unicode_text"),
    [
        ("ျမန္မာ", "မြန်မာ"),
        ("ၿမိဳ႕", "မြို့"),
        ("ေက်ာင္းသား", "ကျောင်းသား"),
        ("တကၠသိုလ္", "တက္ကသိုလ်"),  # a stacked consonant
        ("သႂကၤန္", "သင်္ကြန်"),  # kinzi
        ("ေလ်ွာ့", "လျှော့"),
        ("ေခ်ွ", "ချှေ"),  # E after ya-pin + ha-htoe: paraencoder alone gets this wrong
        ("၀န္ႀကီး", "ဝန်ကြီး"),  # zero for wa at the start of a text
        ("ပညာေရး၀န္ႀကီး", "ပညာရေးဝန်ကြီး"),  # and inside one
        ("၁၀ ရက္", "၁၀ ရက်"),  # a zero in a number stays a zero
        ("၂၀၁၅ ခုႏွစ္", "၂၀၁၅ ခုနှစ်"),
        ("၎", "၎င်း"),
        ("၎င္း", "၎င်း"),  # not "၎င်းင်း", as paraencoder and ICU give
        ("၄င္းတို႔", "၎င်းတို့"),
        ("Yangon (ရန္ကုန္) 2015", "Yangon (ရန်ကုန်) 2015"),
    ],
)
def test_text_to_unicode(zawgyi_text: str, unicode_text: str) -> None:
    assert text_to_unicode(zawgyi_text) == unicode_text


@pytest.mark.parametrize("guid", list(EXPECTED))
def test_each_fixture_item_becomes_the_expected_unicode(guid: str) -> None:
    post = {post.guid: post for post in parse()}[guid]
    expected = EXPECTED[guid]
    summary = sanitise_html(expected["description"], post.url)
    content = sanitise_html(expected["content"], post.url) if expected["content"] else summary
    assert post.title == expected["title"]
    assert post.summary_html == summary
    assert post.content_html == content
    assert post.excerpt == excerpt(summary)
    assert post.image_alt == expected["image_alt"]
    assert post.zawgyi is expected["zawgyi"]


@pytest.mark.parametrize("guid", list(EXPECTED))
def test_unicode_burmese_is_never_touched(guid: str, detector_calls: list[str]) -> None:
    """The expected Unicode of every item, fed in as a feed would give it, comes out as it
    went in: a false positive would corrupt it."""
    expected = EXPECTED[guid]
    entry = RawEntry(
        id=guid,
        link=guid,
        title=expected["title"],
        summary=expected["description"],
        content=expected["content"],
    )
    post = normalise(entry)
    # Not converted; its script says it is Burmese (syndicate.languages).
    assert not post.zawgyi and post.language == "my"
    assert post.title == expected["title"]
    assert post.content_html == sanitise_html(
        expected["content"] or expected["description"], post.url
    )
    assert len(detector_calls) == 1


def test_html_tags_attributes_and_urls_are_left_alone() -> None:
    html = (
        '<p title="ျမန္မာ &quot;&gt;">ျမန္မာ &amp; ၿမိဳ႕ &lt;b&gt;</p>'
        '<a href="https://myanmar-news.example/tag/ရန္ကုန္/?q=ၿမိဳ႕">ရန္ကုန္</a>'
        '<img src="https://myanmar-news.example/ျမန္မာ.jpg" alt="ၿမိဳ႕ > ျမန္မာ">'
        "<pre>ေက်ာင္း</pre>"
    )
    assert html_to_unicode(html) == (
        '<p title="ျမန္မာ &quot;&gt;">မြန်မာ &amp; မြို့ &lt;b&gt;</p>'
        '<a href="https://myanmar-news.example/tag/ရန္ကုန္/?q=ၿမိဳ႕">ရန်ကုန်</a>'
        '<img src="https://myanmar-news.example/ျမန္မာ.jpg" alt="ၿမိဳ႕ > ျမန္မာ">'
        "<pre>ကျောင်း</pre>"
    )


def test_the_fixture_links_keep_their_zawgyi_slug_byte_for_byte() -> None:
    post = {post.guid: post for post in parse()}[
        "https://myanmar-news.example/news/2015/12/yangon-rain/"
    ]
    assert 'href="https://myanmar-news.example/tag/ရန္ကုန္/"' in post.content_html
    assert 'title="ရန္ကုန္"' in post.content_html
    assert ">သတိပေးထားသည်</a>။" in post.content_html


def test_zawgyi_only_in_an_attribute_converts_nothing(detector_calls: list[str]) -> None:
    html = '<p>Photo: <img src="https://x.example/a.jpg" alt="ျမန္မာ"></p>'
    assert post_text("Photo of the day", html, html).zawgyi is False
    assert detector_calls == []


def test_plain_text_content_with_markup_characters() -> None:
    post = normalise(
        RawEntry(id="1", title="ၿမိဳ႕", content="a < b & ျမန္မာ\n\nၿမိဳ႕", content_type="text")
    )
    assert post.zawgyi
    assert post.content_html == "<p>a &lt; b &amp; မြန်မာ</p><p>မြို့</p>"


def test_a_long_title_is_cut_after_converting() -> None:
    post = normalise(RawEntry(id="1", title="ေက်ာင္း" * 200))
    assert post.zawgyi
    assert post.title == ("ကျောင်း" * 200)[:MAX_TITLE]


def test_json_feed_items_are_converted_too() -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "mm",
            "items": [
                {
                    "id": "1",
                    "url": "https://myanmar-news.example/1",
                    "title": "ရန္ကုန္ၿမိဳ႕",
                    "content_text": "ေက်ာင္းသားမ်ား",
                },
                {"id": "2", "url": "https://myanmar-news.example/2", "title": UNICODE},
            ],
        },
        ensure_ascii=False,
    ).encode()
    posts = parse_and_normalise(body, FEED_URL, "application/feed+json", "mm", None, NOW).posts
    assert [(p.title, p.content_html, p.zawgyi, p.language) for p in posts] == [
        ("ရန်ကုန်မြို့", "<p>ကျောင်းသားများ</p>", True, "my"),
        (UNICODE, "", False, "my"),
    ]


# The flag and the language


def test_a_zawgyi_post_is_burmese_whatever_the_feed_says() -> None:
    assert normalise(RawEntry(id="1", title=ZAWGYI)).language == "my"
    assert normalise(RawEntry(id="1", title=ZAWGYI, language="my-MM")).language == "my-MM"
    # A feed's site-wide "en" does not make Burmese text English (syndicate.languages); the
    # post is converted and flagged all the same. A source's language key would win.
    tagged = normalise(RawEntry(id="1", title=ZAWGYI, language="en"))
    assert (tagged.language, tagged.zawgyi, tagged.title) == ("my", True, UNICODE)
    assert normalise(RawEntry(id="1", title=UNICODE)).language == "my"
    assert normalise(RawEntry(id="1", title="Hello")).language is None


def settings_for(tmp_path: Path, database_url: str) -> Settings:
    data = {
        "site": {"title": "T", "url": "https://site.example"},
        "storage": {"database": database_url},
        "sources": [{"name": "mm", "url": "feed.xml", "every": "30m"}],
    }
    settings = Settings.model_validate(data, context={"base_dir": tmp_path})
    return settings.model_copy(update={"path": tmp_path / "config.toml"})


async def test_ingest_stores_unicode_the_flag_and_the_language_and_a_reingest_changes_nothing(
    tmp_path: Path, store: Store
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(FEED)
    settings = settings_for(tmp_path, store.url)
    first = (await ingest(settings, store, FrozenClock(NOW))).sources[0]
    assert (first.status, first.new) == ("ok", 4)
    stored = {post.guid: post for post in await store.recent_posts(source="mm")}
    assert set(stored) == set(EXPECTED)
    for guid, expected in EXPECTED.items():
        post = stored[guid]
        # Every item is Burmese: converted from Zawgyi or not, the script tells.
        assert (post.zawgyi, post.language) == (expected["zawgyi"], "my")
        assert post.title == expected["title"]
        assert post.summary_html == sanitise_html(expected["description"], post.url)

    # The site adds an English item: the feed is parsed again, and the Burmese posts,
    # converted again, are the same posts (the same content hash), not updates.
    extra = (
        "<item><title>English edition launched</title>"
        "<link>https://myanmar-news.example/en/launch/</link>"
        "<pubDate>Sun, 20 Dec 2015 09:00:00 +0630</pubDate>"
        "<description>In English too.</description></item>"
    )
    feed.write_bytes(FEED.replace(b"</channel>", extra.encode() + b"</channel>"))
    second = (await ingest(settings, store, FrozenClock(NOW))).sources[0]
    assert (second.status, second.new, second.updated, second.unchanged) == ("ok", 1, 0, 4)
    again = {post.guid: post for post in await store.recent_posts(source="mm")}
    for guid, post in stored.items():
        assert again[guid].content_hash == post.content_hash
        assert again[guid] == post
    english = again["https://myanmar-news.example/en/launch/"]
    assert (english.zawgyi, english.language) == (False, None)


# Cost


def _feed_of(count: int, title: Callable[[int], str], body: Callable[[int], str]) -> bytes:
    items = "".join(
        f"<item><title>{title(n)}</title><link>https://myanmar-news.example/{n}/</link>"
        f"<pubDate>Sat, 19 Dec 2015 10:00:00 +0000</pubDate>"
        f"<description><![CDATA[{body(n)}]]></description></item>"
        for n in range(count)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://myanmar-news.example/</link>{items}</channel></rss>"
    ).encode()


def english_feed(count: int = 50) -> bytes:
    return _feed_of(
        count,
        lambda n: f"Post {n}: the council meets on Tuesday",
        lambda n: f"<p>Paragraph {n} with <a href='https://x.example/{n}'>a link</a>.</p>" * 5,
    )


def zawgyi_feed(count: int = 50) -> bytes:
    guid = "https://myanmar-news.example/news/2015/12/scholarships/"
    title, body = _feed_titles()[guid], _feed_bodies()[guid]
    return _feed_of(count, lambda n: f"{title} {n}", lambda n: body * 3)


def test_a_50_item_english_feed_never_runs_the_detector(detector_calls: list[str]) -> None:
    posts = parse(english_feed())
    assert len(posts) == 50 and not any(post.zawgyi for post in posts)
    assert detector_calls == []


def test_a_50_item_zawgyi_feed_runs_it_once_per_post(detector_calls: list[str]) -> None:
    posts = parse(zawgyi_feed())
    assert len(posts) == 50 and all(post.zawgyi and post.language == "my" for post in posts)
    assert len(detector_calls) == 50


def _feed_titles() -> dict[str, str]:
    return {entry.id: entry.title for entry in feedparser.parse(FEED).entries}


def _feed_bodies() -> dict[str, str]:
    return {entry.id: entry.summary for entry in feedparser.parse(FEED).entries}


@pytest.mark.parametrize("kind", ["html", "text"])
def test_hostile_markup_reaches_the_converter_only_as_sanitised_html(kind: str) -> None:
    """Unbalanced "<" and quotes are escaped or dropped by nh3 (or escaped by us, for
    text) before the converter splits tags from text: every tag comes out as nh3 wrote it,
    attribute values still in Zawgyi, and the text after them is converted."""
    hostile = '<<"<a title="ျမန္မာ' * 5_000 + '">x</a><p>ၿမိဳ႕ ျမန္မာ'
    post = normalise(RawEntry(id="1", title="ၿမိဳ႕", content=hostile, content_type=kind))
    assert post.zawgyi and post.title == "မြို့"
    assert post.content_html.endswith("<p>မြို့ မြန်မာ</p>" if kind == "html" else "မြို့ မြန်မာ</p>")
    sanitised = sanitise_html(hostile, post.url) if kind == "html" else ""
    tags = re.compile(r'<(?:[^>"]|"[^"]*")*>')
    if kind == "html":
        assert tags.findall(post.content_html) == tags.findall(sanitised)
        assert "ျမန္မာ" in post.content_html  # in the attribute values nh3 kept
    else:
        assert tags.findall(post.content_html) == ["<p>", "</p>"]
