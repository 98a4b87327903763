"""Normalising: ids, URLs, dates, clean HTML, excerpts, stable content hashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from syndicate.ingest.normalise import canonical_url, normalise_entry
from syndicate.ingest.raw import RawEnclosure, RawEntry
from syndicate.links import shown

NOW = datetime(2015, 12, 20, 12, 0, tzinfo=UTC)


def normalise(entry: RawEntry, **kwargs: object):
    options = {
        "source": "blog",
        "feed_url": "https://blog.example/feed/",
        "feed_link": "https://blog.example/",
        "default_category": None,
        "now": NOW,
    }
    options.update(kwargs)
    return normalise_entry(entry, **options)


def test_guid_prefers_id_then_link_then_a_hash() -> None:
    assert normalise(RawEntry(id="urn:x:1", link="/a")).guid == "urn:x:1"
    assert normalise(RawEntry(link="/a")).guid == "https://blog.example/a"
    dateless = normalise(RawEntry(title="Hello"))
    assert dateless.guid.startswith("sha256:")
    assert normalise(RawEntry(title="Hello")).guid == dateless.guid
    assert normalise(RawEntry(title="Other")).guid != dateless.guid


def test_urls_are_absolute_and_canonical() -> None:
    post = normalise(
        RawEntry(
            id="1", link="/2015/12/post/?utm_source=rss&p=2", base_url="HTTPS://Blog.Example/sub/"
        )
    )
    assert post.url == "https://blog.example/2015/12/post/?p=2"
    assert canonical_url("https://E.org") == "https://e.org/"


def test_an_entry_without_a_link_has_none() -> None:
    # No made-up link (the blog's home page): readers would land where the post is not.
    assert normalise(RawEntry(id="a", content="<p>Hi</p>")).url == ""
    # A guid that is a URL is the link of an entry that gives none.
    assert normalise(RawEntry(id="https://blog.example/?p=1")).url == "https://blog.example/?p=1"
    # A file source without a home page: no file path as a link either.
    local = normalise(RawEntry(id="a"), feed_url="/srv/feeds/blog.xml", feed_link=None)
    assert local.url == ""


HOSTILE_URLS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "\x01javascript:alert(1)",
    "java\tscript:alert(1)",
    " \n javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "https://bank.example@evil.example/",
    "https://evil.example\\@bank.example/",
    "http://[::1",
    "https://evil.example/\u202egpj.exe",
    "https://evil.example/" + "a" * 3000,
]


@pytest.mark.parametrize("bad", HOSTILE_URLS)
def test_urls_that_may_not_leave_us_are_dropped_with_one_warning(bad: str) -> None:
    warnings: list[str] = []
    post = normalise(
        RawEntry(
            id="urn:x:1",
            link=bad,
            image=bad,
            comments_url=bad,
            content="<p>Still here</p>",
            enclosures=[RawEnclosure(bad, "audio/mpeg", 1)],
        ),
        warn=warnings.append,
    )
    assert (post.url, post.image_url, post.enclosure, post.comments_url) == ("", None, None, None)
    assert (post.guid, post.content_html) == ("urn:x:1", "<p>Still here</p>")
    [warning] = warnings
    assert warning.startswith("entry 'urn:x:1': dropped link ")
    for kind in ("link", "image", "enclosure", "comments link"):
        assert f"{kind} {shown(bad)}" in warning
    assert not any(ord(ch) < 32 for ch in warning)  # it goes to a terminal


def test_a_hostile_base_is_not_used_and_good_urls_give_no_warning() -> None:
    warnings: list[str] = []
    post = normalise(
        RawEntry(
            id="1",
            link="/2015/12/fish/",
            image="/fish.jpg",
            base_url="javascript:alert(1)//",
            content='<p><img src="x.png"></p>',
        ),
        feed_link="data:text/html,x",
        warn=warnings.append,
    )
    # Neither the hostile xml:base nor the hostile feed link: the feed's own URL.
    assert post.url == "https://blog.example/2015/12/fish/"
    assert post.image_url == "https://blog.example/fish.jpg"
    assert warnings == []


def test_dates_are_utc_with_fallbacks() -> None:
    offset = datetime(
        2015, 12, 1, 23, 30, tzinfo=__import__("datetime").timezone(timedelta(hours=-5))
    )
    post = normalise(RawEntry(id="1", published=offset))
    assert post.published == datetime(2015, 12, 2, 4, 30, tzinfo=UTC)
    assert post.published.tzinfo == UTC
    assert post.updated == post.published
    only_updated = normalise(RawEntry(id="2", updated=datetime(2015, 11, 5, tzinfo=UTC)))
    assert only_updated.published == datetime(2015, 11, 5, tzinfo=UTC)
    for absurd in (datetime(1970, 1, 1, tzinfo=UTC), NOW + timedelta(days=400), None):
        post = normalise(RawEntry(id="3", published=absurd))
        assert post.published == NOW and post.first_seen == NOW


def test_updated_is_never_before_published() -> None:
    post = normalise(
        RawEntry(
            id="1",
            published=datetime(2015, 12, 2, tzinfo=UTC),
            updated=datetime(2015, 12, 1, tzinfo=UTC),
        )
    )
    assert post.updated == post.published


def test_titles_are_plain_text() -> None:
    assert normalise(RawEntry(id="1", title="Fish & <Ships>")).title == "Fish & <Ships>"
    html_title = RawEntry(id="2", title="<b>Bold</b> &amp; brave", title_type="html")
    assert normalise(html_title).title == "Bold & brave"
    untitled = normalise(RawEntry(id="3", summary="<p>Only a summary here.</p>"))
    assert untitled.title == "Only a summary here."


def test_content_is_sanitised_with_absolute_links() -> None:
    post = normalise(
        RawEntry(
            id="1",
            base_url="https://blog.example/2015/",
            content='<p onclick="x()">Hi <a href="post/">there</a><script>alert(1)</script>'
            ' <a href="javascript:alert(2)">bad</a><img src="/i.png" alt="A heron"></p>',
        )
    )
    html = post.content_html
    assert "<script" not in html and "onclick" not in html and "javascript:" not in html
    assert 'href="https://blog.example/2015/post/"' in html
    assert 'rel="noopener nofollow"' in html
    assert post.image_url == "https://blog.example/i.png"
    assert post.excerpt == "Hi there bad"
    assert post.summary_html == ""


def test_text_content_is_escaped_into_paragraphs() -> None:
    post = normalise(RawEntry(id="1", content="a < b\n\nsecond", content_type="text"))
    assert post.content_html == "<p>a &lt; b</p><p>second</p>"


def test_categories_authors_and_defaults() -> None:
    post = normalise(
        RawEntry(id="1", categories=["Rivers", "rivers", " Gardens "], authors=["Ann", "Ann"])
    )
    assert post.categories == ("Rivers", "Gardens")
    assert post.authors == ("Ann",)
    assert normalise(RawEntry(id="2"), default_category="Partners").categories == ("Partners",)


def test_enclosure_image_comments_and_language() -> None:
    post = normalise(
        RawEntry(
            id="1",
            image="/thumb.jpg",
            comments_url="/t/42",
            language="en-GB",
            enclosures=[RawEnclosure("/report.pdf", "application/pdf", 1234)],
        )
    )
    assert post.image_url == "https://blog.example/thumb.jpg"
    assert post.enclosure is not None and post.enclosure.url == "https://blog.example/report.pdf"
    assert post.comments_url == "https://blog.example/t/42"
    assert post.language == "en-GB"
    assert normalise(RawEntry(id="2", comments_url="javascript:alert(1)")).comments_url is None


def test_content_hash_is_stable_and_sensitive() -> None:
    entry = RawEntry(id="1", title="T", content="<p>x</p>")
    first = normalise(entry)
    later = normalise(entry, now=NOW + timedelta(days=3))
    assert first.content_hash == later.content_hash  # a dateless entry is not "changed"
    changed = normalise(RawEntry(id="1", title="T", content="<p>y</p>"))
    assert changed.content_hash != first.content_hash


@pytest.mark.parametrize("title", ["\x00\x07bell", "tab\there", "line\nbreak"])
def test_control_characters_leave_titles(title: str) -> None:
    post = normalise(RawEntry(id="1", title=title))
    assert not any(ord(ch) < 32 for ch in post.title)


@pytest.mark.parametrize(
    ("img", "alt", "size"),
    [
        ('<img src="/a.jpg" alt="A heron" width="640" height="480">', "A heron", (640, 480)),
        ('<img src="/a.jpg" alt="" width="640px" height="480px">', "", (640, 480)),
        ('<img src="/a.jpg" width="100%" height="480">', None, (None, None)),
        ('<img src="/a.jpg" alt="x" width="99999" height="2">', "x", (None, None)),
        (
            '<img src="/a.jpg" alt="  two\x07  lines\n here " width="0" height="0">',
            "two lines here",
            (None, None),
        ),
        (
            '<img src="/a.jpg" alt="1 > 0 &amp; &quot;so&quot;" width="3" height="4">',
            '1 > 0 & "so"',
            (3, 4),
        ),
    ],
)
def test_the_image_keeps_the_feeds_alt_text_and_size(
    img: str, alt: str | None, size: tuple[int | None, int | None]
) -> None:
    post = normalise(RawEntry(id="1", link="https://example.org/p", content=f"<p>{img}</p>"))
    assert post.image_url == "https://example.org/a.jpg"
    assert post.image_alt == alt
    assert (post.image_width, post.image_height) == size


def test_the_feeds_own_image_takes_its_size_from_the_feed_and_alt_from_the_content() -> None:
    content = '<img src="https://example.org/b.jpg" alt="Another"><img src="/t.jpg" alt="Mine">'
    post = normalise(
        RawEntry(
            id="1",
            link="https://example.org/p",
            content=content,
            image="https://example.org/t.jpg",
            image_width=320,
            image_height=213,
        )
    )
    assert (post.image_url, post.image_alt) == ("https://example.org/t.jpg", "Mine")
    assert (post.image_width, post.image_height) == (320, 213)
    bare = normalise(RawEntry(id="2", link="https://example.org/q", image="/t.jpg"))
    assert (bare.image_alt, bare.image_width) == (None, None)
