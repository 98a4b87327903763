"""The three feed renderers: RSS 2.0, Atom 1.0 and JSON Feed 1.1 from one FeedDocument.

Every output is read back (feedparser for XML, json for JSON Feed, and syndicate's own ingest
parser for all three), checked against the specs (feedcheck.py), pinned by golden files,
and must be byte-identical from one render to the next.

Golden files: tests/golden/feed.{rss,atom,json}. Rewrite them after an intended change with
    SYNDICATE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_publish_formats.py
and read the diff before committing it.
"""

from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import feedparser
import pytest
from feedcheck import check_atom, check_json, check_rss

from syndicate.ingest.parse import parse_feed
from syndicate.models import Enclosure, Post
from syndicate.publish.atom import render_atom
from syndicate.publish.document import ArchiveLinks, FeedDocument, SourceInfo
from syndicate.publish.jsonfeed import render_json
from syndicate.publish.rss import render_rss
from syndicate.publish.sanity import item_id

GOLDEN = Path(__file__).parent / "golden"
ATOM = "{http://www.w3.org/2005/Atom}"
THR = "{http://purl.org/syndication/thread/1.0}"
FH = "{http://purl.org/syndication/history/1.0}"
SITE = "https://news.riverside-commons.example"
FEEDS = f"{SITE}/feeds"
FORUM = "https://forum.riverside-commons.example"

RENDERERS: dict[str, Callable[[FeedDocument], bytes]] = {
    "rss": render_rss,
    "atom": render_atom,
    "json": render_json,
}
CHECKS: dict[str, Callable[[bytes], object]] = {
    "rss": check_rss,
    "atom": check_atom,
    "json": check_json,
}


def at(day: int, hour: int = 9, month: int = 12) -> datetime:
    return datetime(2015, month, day, hour, 0, tzinfo=UTC)


FISH = Post(
    source="riverside-news",
    guid=f"{SITE}/2015/12/fish-and-ships/",
    url=f"{SITE}/2015/12/fish-and-ships/",
    title="Fish & <Ships>: what the survey found",
    published=at(14),
    updated=at(15, 17),
    first_seen=at(14, 10),
    content_hash="fish",
    authors=("Ann Ó'Brien", "Bob Lee"),
    categories=("Rivers", "Policy"),
    summary_html="<p>Eels, trout &amp; a shopping trolley.</p>",
    content_html=(
        "<p>The survey counted <strong>42</strong> eels, 17 trout &amp; one trolley.</p>"
        '<p><a href="https://news.riverside-commons.example/survey.pdf">Full report</a></p>'
    ),
    excerpt="The survey counted 42 eels, 17 trout & one trolley.",
    image_url=f"{SITE}/media/eel.jpg",
    enclosure=Enclosure(f"{SITE}/media/survey.mp3", "audio/mpeg", 1234567),
    comments_url=f"{SITE}/2015/12/fish-and-ships/#comments",
    language="en",
    discussion_url=f"{FORUM}/t/fish-and-ships/31",
    forum_topic_id=31,
    reply_count=7,
    id=1,
)
# Non-ASCII everywhere, a guid that is no URL, no authors (the feed's stand in), a summary
# the normaliser copied into the content, and an enclosure of unknown length.
MILL = Post(
    source="wetland-alliance",
    guid="42",
    url="https://wetland-alliance.example/posts/aerosk%C3%B8bing-mill",
    title="Ærøskøbing’s mill: naïve questions about a 300-year-old weir",
    published=at(10),
    updated=at(10),
    first_seen=at(10, 11),
    content_hash="mill",
    categories=("Wetlands",),
    summary_html="<p>Følg med: the weir, the eels and the café.</p>",
    content_html="<p>Følg med: the weir, the eels and the café.</p>",
    excerpt="Følg med: the weir, the eels and the café.",
    enclosure=Enclosure("https://wetland-alliance.example/mill.jpg", "image/jpeg", None),
    language="da",
    id=2,
)
# A tag: guid (an IRI, not the URL), the source's own comments page only, no content.
OTTER = Post(
    source="field-notes",
    guid="tag:field-notes.example,2015:otter-7",
    url="https://field-notes.example/otter-7",
    title="Otter spraint under the railway bridge",
    published=at(2, 7),
    updated=at(3, 8),
    first_seen=at(2, 8),
    content_hash="otter",
    authors=("Chidi Okafor",),
    categories=("Rivers", "Wildlife"),
    comments_url="https://field-notes.example/otter-7#respond",
    id=3,
)
# A forum thread whose replies were not counted yet.
VOTE = Post(
    source="riverside-news",
    guid=f"{SITE}/2015/11/council-vote/",
    url=f"{SITE}/2015/11/council-vote/",
    title="Council votes on the floodplain plan",
    published=at(20, 18, month=11),
    updated=at(20, 18, month=11),
    first_seen=at(20, 19, month=11),
    content_hash="vote",
    authors=("Bob Lee",),
    categories=("Policy",),
    content_html="<p>The vote is on Thursday.</p>",
    excerpt="The vote is on Thursday.",
    discussion_url=f"{FORUM}/t/council-vote/29",
    id=4,
)
SOURCES = {
    # An Atom source: its own atom:id, kept at ingest.
    "riverside-news": SourceInfo(
        "riverside-news",
        "Riverside News",
        f"{SITE}/feed/",
        f"{SITE}/",
        "tag:riverside-commons.example,2015:news",
    ),
    # A source whose feed has no id (RSS): it is known by its URL.
    "wetland-alliance": SourceInfo(
        "wetland-alliance",
        "Wetland Alliance — Nyheder",
        "https://wetland-alliance.example/feed.json",
        "https://wetland-alliance.example/",
    ),
    # Not an http(s) source: the planner credits our own Atom feed of it, whose id is its URL.
    "field-notes": SourceInfo(
        "field-notes",
        "Field Notes",
        f"{FEEDS}/source/field-notes.atom",
        id=f"{FEEDS}/source/field-notes.atom",
    ),
}


def document(**changes: object) -> FeedDocument:
    """The fixed document behind the golden files; `changes` make variants of it."""
    doc = FeedDocument(
        path="index",
        feeds_url=FEEDS,
        title="Riverside Commons",
        description="News from the river, the wetlands & the council.",
        home_url=SITE,
        language="en",
        author="Riverside Commons",
        generator="syndicate 0.1.0",
        posts=(FISH, MILL, OTTER, VOTE),
        sources=SOURCES,
        ttl_minutes=60,
        icon=f"{SITE}/favicon.png",
        logo=f"{SITE}/logo.png",
        hub="https://hub.example/",
        links=ArchiveLinks(prev_archive=f"{FEEDS}/archive/2015-11"),
    )
    return replace(doc, **changes)


ARCHIVE = ArchiveLinks(
    archive=True,
    current=f"{FEEDS}/index",
    prev_archive=f"{FEEDS}/archive/2015-10",
    next_archive=f"{FEEDS}/archive/2015-12",
)


def parsed(data: bytes) -> feedparser.FeedParserDict:
    # As ingest reads feeds: no sanitising or URL resolving, so values come back verbatim.
    result = feedparser.parse(io.BytesIO(data), sanitize_html=False, resolve_relative_uris=False)
    assert not result.bozo, result.get("bozo_exception")
    return result


def by_title(entries: list[feedparser.FeedParserDict]) -> dict[str, feedparser.FeedParserDict]:
    return {entry.title: entry for entry in entries}


def links_by_rel(links: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {link["rel"]: link for link in links}


# --- RSS ------------------------------------------------------------------------------------


def test_rss_reads_back_as_given() -> None:
    result = parsed(render_rss(document()))
    assert result.version == "rss20"
    feed = result.feed
    assert feed.title == "Riverside Commons"
    assert feed.link == SITE
    assert feed.subtitle == "News from the river, the wetlands & the council."
    assert feed.language == "en"
    assert feed.generator == "syndicate 0.1.0"
    assert feed.ttl == "60"
    assert feed.image.href == f"{SITE}/logo.png"
    assert feed.updated_parsed[:6] == (2015, 12, 15, 17, 0, 0)  # the newest post's update
    links = links_by_rel(feed.links)
    assert links["self"]["href"] == f"{FEEDS}/index.rss"
    assert links["hub"]["href"] == "https://hub.example/"
    assert links["prev-archive"]["href"] == f"{FEEDS}/archive/2015-11.rss"

    assert [entry.title for entry in result.entries] == [p.title for p in document().posts]
    entries = by_title(result.entries)
    fish = entries[FISH.title]
    assert fish.link == FISH.url
    assert fish.id == FISH.guid  # isPermaLink: test_ids_agree_across_formats_and_never_collide
    assert fish.published_parsed[:6] == (2015, 12, 14, 9, 0, 0)
    assert [a.name for a in fish.authors] == ["Ann Ó'Brien", "Bob Lee"]  # dc:creator
    assert [t.term for t in fish.tags] == ["Rivers", "Policy"]
    assert fish.summary == FISH.summary_html
    assert fish.content[0].value == FISH.content_html
    assert fish.enclosures == [
        {"href": FISH.enclosure.url, "length": "1234567", "type": "audio/mpeg"}
    ]
    assert fish.comments == FISH.discussion_url  # the forum thread beats the comments page
    assert fish.slash_comments == "7"
    assert fish.source == {"href": f"{SITE}/feed/", "title": "Riverside News"}

    mill = entries[MILL.title]
    assert mill.id == item_id(MILL)
    assert mill.id.startswith("urn:uuid:")
    # The summary equals the content: <description> carries the (escaped) excerpt instead.
    assert mill.summary == MILL.excerpt
    assert mill.content[0].value == MILL.content_html
    assert mill.enclosures[0]["length"] == "0"  # unknown, as RSS spells it
    assert "comments" not in mill and "slash_comments" not in mill
    assert mill.source.title == "Wetland Alliance — Nyheder"

    otter = entries[OTTER.title]
    assert otter.id == OTTER.guid
    # The source's own comments page counts only once the forum linker chose it (strategy
    # "feed" copies it into discussion_url); with strategy "none" there is no link.
    assert "comments" not in otter and "slash_comments" not in otter
    assert "summary" not in otter and "content" not in otter
    assert otter.source.href == f"{FEEDS}/source/field-notes.atom"

    vote = entries[VOTE.title]
    assert vote.comments == VOTE.discussion_url and "slash_comments" not in vote


def test_rss_escapes_a_plain_text_excerpt() -> None:
    """<description> is HTML to readers: a text excerpt with "<" must not become a tag."""
    post = replace(MILL, excerpt="Eels < trout & <b>not bold</b>")
    entry = parsed(render_rss(document(posts=(post,)))).entries[0]
    assert entry.summary == "Eels &lt; trout &amp; &lt;b&gt;not bold&lt;/b&gt;"


# --- Atom -----------------------------------------------------------------------------------


def test_atom_reads_back_as_given() -> None:
    result = parsed(render_atom(document()))
    assert result.version == "atom10"
    feed = result.feed
    assert feed.id == f"{FEEDS}/index.atom"
    assert feed.title == "Riverside Commons"
    assert feed.subtitle == "News from the river, the wetlands & the council."
    assert feed.updated_parsed[:6] == (2015, 12, 15, 17, 0, 0)
    assert feed.author == "Riverside Commons"
    assert feed.generator == "syndicate 0.1.0"
    assert feed.icon == f"{SITE}/favicon.png" and feed.logo == f"{SITE}/logo.png"
    assert feed.language == "en"
    links = links_by_rel(feed.links)
    assert links["alternate"]["href"] == SITE
    assert links["self"]["href"] == f"{FEEDS}/index.atom"
    assert links["hub"]["href"] == "https://hub.example/"
    assert links["prev-archive"]["href"] == f"{FEEDS}/archive/2015-11.atom"

    entries = by_title(result.entries)
    fish = entries["Fish & <Ships>: what the survey found"]
    assert fish.id == FISH.guid
    assert fish.link == FISH.url
    assert fish.published_parsed[:6] == (2015, 12, 14, 9, 0, 0)
    assert fish.updated_parsed[:6] == (2015, 12, 15, 17, 0, 0)
    assert [a.name for a in fish.authors] == ["Ann Ó'Brien", "Bob Lee"]
    assert [t.term for t in fish.tags] == ["Rivers", "Policy"]
    assert fish.summary == FISH.summary_html and fish.summary_detail.type == "text/html"
    assert fish.content[0].value == FISH.content_html
    assert fish.content[0].type == "text/html"
    entry_links = links_by_rel(fish.links)
    assert entry_links["alternate"]["href"] == FISH.url
    assert entry_links["enclosure"] == {
        "rel": "enclosure",
        "type": "audio/mpeg",
        "href": FISH.enclosure.url,
        "length": "1234567",
    }
    replies = entry_links["replies"]
    assert replies["href"] == FISH.discussion_url and replies["type"] == "text/html"
    assert replies["thr:count"] == "7"
    assert fish.source.title == "Riverside News"
    assert links_by_rel(fish.source.links)["self"]["href"] == f"{SITE}/feed/"
    assert links_by_rel(fish.source.links)["alternate"]["href"] == f"{SITE}/"
    # RFC 4287 4.2.11: the source feed's id and updated (the newest of its posts here).
    assert fish.source.id == "tag:riverside-commons.example,2015:news"
    assert fish.source.updated_parsed[:6] == (2015, 12, 15, 17, 0, 0)

    mill = entries[MILL.title]
    assert mill.id == item_id(MILL)
    assert mill.source.id == "https://wetland-alliance.example/feed.json"  # a feed without id
    assert mill.source.updated_parsed[:6] == (2015, 12, 10, 9, 0, 0)
    assert "authors" not in mill  # the feed's author covers it
    assert mill.summary == MILL.excerpt and mill.summary_detail.type == "text/plain"
    assert "length" not in links_by_rel(mill.links)["enclosure"]
    assert "replies" not in links_by_rel(mill.links)

    otter = entries[OTTER.title]
    assert otter.id == OTTER.guid
    assert "content" not in otter and "summary" not in otter
    assert "replies" not in links_by_rel(otter.links)
    assert otter.source.id == f"{FEEDS}/source/field-notes.atom"  # our own feed: id known
    assert otter.source.updated_parsed[:6] == (2015, 12, 3, 8, 0, 0)

    vote = entries[VOTE.title]
    assert "thr:count" not in links_by_rel(vote.links)["replies"]


def test_atom_text_is_escaped_not_cdata() -> None:
    """Titles are Atom text and content is escaped HTML: no CDATA, no type='CDATA'."""
    data = render_atom(document())
    assert b"CDATA" not in data
    assert b"<title>Fish &amp; &lt;Ships&gt;: what the survey found</title>" in data
    root = ET.fromstring(data)
    entry = root.find(f"{ATOM}entry")
    assert entry is not None
    assert entry.find(f"{ATOM}title").get("type") is None  # text, the default
    assert entry.find(f"{ATOM}content").get("type") == "html"


def test_atom_entry_links_keep_their_rel() -> None:
    """feedgen 1.0 drops entry links' rel/type/length; an enclosure must not turn into a
    second alternate link."""
    root = ET.fromstring(render_atom(document(posts=(FISH,))))
    links = root.find(f"{ATOM}entry").findall(f"{ATOM}link")
    rels = [link.get("rel", "alternate") for link in links]
    assert sorted(rels) == ["alternate", "enclosure", "replies"]
    replies = next(link for link in links if link.get("rel") == "replies")
    assert replies.get(f"{THR}count") == "7"


# --- JSON Feed ------------------------------------------------------------------------------


def test_json_feed_reads_back_as_given() -> None:
    data = render_json(document())
    assert data.endswith(b"}\n")
    feed = json.loads(data)
    check_json(data)
    assert list(feed)[:4] == ["version", "title", "home_page_url", "feed_url"]
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == "Riverside Commons"
    assert feed["home_page_url"] == SITE
    assert feed["feed_url"] == f"{FEEDS}/index.json"
    assert feed["description"] == "News from the river, the wetlands & the council."
    assert feed["icon"] == f"{SITE}/logo.png" and feed["favicon"] == f"{SITE}/favicon.png"
    assert feed["authors"] == [{"name": "Riverside Commons"}]
    assert feed["language"] == "en"
    assert feed["hubs"] == [{"type": "WebSub", "url": "https://hub.example/"}]
    assert "next_url" not in feed  # pagination, not archives
    assert feed["_syndicate"] == {"prev_archive": f"{FEEDS}/archive/2015-11.json"}

    items = {item["title"]: item for item in feed["items"]}
    assert [item["title"] for item in feed["items"]] == [p.title for p in document().posts]
    assert items[FISH.title] == {
        "id": FISH.guid,
        "url": FISH.url,
        "title": "Fish & <Ships>: what the survey found",
        "content_html": FISH.content_html,
        "summary": FISH.excerpt,
        "image": FISH.image_url,
        "date_published": "2015-12-14T09:00:00Z",
        "date_modified": "2015-12-15T17:00:00Z",
        "authors": [{"name": "Ann Ó'Brien"}, {"name": "Bob Lee"}],
        "tags": ["Rivers", "Policy"],
        "language": "en",
        "attachments": [
            {"url": FISH.enclosure.url, "mime_type": "audio/mpeg", "size_in_bytes": 1234567}
        ],
        "_syndicate": {
            "discussion_url": FISH.discussion_url,
            "reply_count": 7,
            "source": "riverside-news",
        },
    }
    mill = items[MILL.title]
    assert mill["id"] == item_id(MILL)
    assert "authors" not in mill and "image" not in mill
    assert mill["attachments"] == [{"url": MILL.enclosure.url, "mime_type": "image/jpeg"}]
    assert mill["_syndicate"] == {"source": "wetland-alliance"}
    otter = items[OTTER.title]
    # No content at all: JSON Feed still needs content_html or content_text.
    assert otter["content_text"] == OTTER.title and "content_html" not in otter
    assert "discussion_url" not in otter["_syndicate"]
    assert "Ærøskøbing’s".encode() in data


# --- all formats ----------------------------------------------------------------------------


@pytest.mark.parametrize("ext", RENDERERS)
def test_syndicates_own_parser_reads_every_format(ext: str) -> None:
    """What we publish, our ingest reads back: titles, links, ids, dates, people, tags."""
    raw = parse_feed(RENDERERS[ext](document()), f"{FEEDS}/index.{ext}")
    assert raw.warning is None
    assert raw.title == "Riverside Commons" and raw.link == SITE
    assert [entry.title for entry in raw.entries] == [p.title for p in document().posts]
    for entry, post in zip(raw.entries, document().posts, strict=True):
        assert entry.id == item_id(post)
        assert entry.link == post.url
        assert entry.published == post.published
        assert entry.categories == list(post.categories)
        if post.authors:
            assert entry.authors == list(post.authors)
    fish = raw.entries[0]
    assert fish.content == FISH.content_html
    assert [e.url for e in fish.enclosures] == [FISH.enclosure.url]
    assert fish.enclosures[0].length == 1234567
    assert fish.comments_url == FISH.discussion_url


@pytest.mark.parametrize("ext", RENDERERS)
@pytest.mark.parametrize(
    "variant",
    [
        pytest.param({}, id="site"),
        pytest.param({"posts": ()}, id="no-posts"),
        pytest.param({"links": ARCHIVE, "path": "archive/2015-11"}, id="archive"),
        pytest.param(
            {"icon": None, "logo": None, "hub": None, "description": "", "author": ""},
            id="bare",
        ),
    ],
)
def test_every_output_meets_its_spec(ext: str, variant: dict[str, object]) -> None:
    data = RENDERERS[ext](document(**variant))
    CHECKS[ext](data)
    if ext != "json":
        parsed(data)


@pytest.mark.parametrize("ext", RENDERERS)
def test_a_post_without_a_link_is_published_without_one(ext: str) -> None:
    """url "" (the feed gave no link we may publish): no link, and still valid; an Atom
    entry with neither content nor link gets its excerpt (or title) as text content."""
    bare = replace(OTTER, url="", excerpt="Spraint, twice.")
    data = RENDERERS[ext](document(posts=(bare, replace(FISH, url=""))))
    CHECKS[ext](data)
    if ext == "json":
        assert all("url" not in item for item in json.loads(data)["items"])
        return
    entries = parsed(data).entries
    assert all(link.rel != "alternate" for entry in entries for link in entry.get("links", []))
    if ext == "atom":
        otter = next(e for e in entries if e.id == OTTER.guid)
        assert otter.content[0].value == "Spraint, twice."


@pytest.mark.parametrize("ext", RENDERERS)
def test_the_same_document_gives_the_same_bytes(ext: str) -> None:
    render = RENDERERS[ext]
    first = render(document())
    # Equal but not identical inputs: fresh objects, the same values.
    again = document(posts=tuple(replace(p) for p in document().posts), sources=dict(SOURCES))
    assert render(again) == first == render(document())
    # Nothing of the build time leaks in (feedgen would stamp "now" if we let it).
    now = datetime.now(UTC)
    for stamp in (now.strftime("%d %b %Y"), now.strftime("%Y-%m-%dT")):
        assert stamp.encode() not in first


def test_a_document_without_posts_is_dated_by_the_epoch() -> None:
    empty = document(posts=())
    rss = parsed(render_rss(empty))
    assert rss.entries == [] and rss.feed.updated_parsed[:3] == (1970, 1, 1)
    atom = parsed(render_atom(empty))
    assert atom.entries == [] and atom.feed.updated_parsed[:3] == (1970, 1, 1)
    feed = json.loads(render_json(empty))
    assert feed["items"] == []


def test_posts_in_other_zones_are_written_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    post = replace(VOTE, published=datetime(2015, 11, 20, 19, 0, tzinfo=paris))
    doc = document(posts=(post,))
    assert b"Fri, 20 Nov 2015 18:00:00 +0000" in render_rss(doc)
    assert b"<published>2015-11-20T18:00:00+00:00</published>" in render_atom(doc)
    assert json.loads(render_json(doc))["items"][0]["date_published"] == "2015-11-20T18:00:00Z"


@pytest.mark.parametrize("ext", RENDERERS)
def test_naive_datetimes_are_refused(ext: str) -> None:
    post = replace(VOTE, published=datetime(2015, 11, 20, 18))
    with pytest.raises(ValueError, match="naive datetime"):
        RENDERERS[ext](document(posts=(post,)))


@pytest.mark.parametrize("ext", RENDERERS)
def test_control_characters_are_stripped_everywhere(ext: str) -> None:
    """XML 1.0 forbids them and feedgen raises on them; a feed's junk must not stop a build."""
    post = replace(
        FISH,
        title="Fish\x00 & <Ships>\x1b",
        authors=("Ann\x0b Ó'Brien",),
        categories=("Riv\x08ers",),
        summary_html="<p>Eels\x0c</p>",
        content_html="<p>Trout\x01</p>",
        excerpt="Eels\x0c",
        enclosure=Enclosure(f"{SITE}/a.mp3", "audio/mpeg\x02", 10),
    )
    sources = {**SOURCES, "riverside-news": replace(SOURCES["riverside-news"], title="News\x1f")}
    doc = document(
        posts=(post,),
        sources=sources,
        title="Riverside\x07 Commons",
        description="News\x10",
        author="Riverside\x0e Commons",
    )
    data = RENDERERS[ext](doc)
    CHECKS[ext](data)
    assert not any(byte < 0x20 and byte not in b"\t\n\r" for byte in data)
    text = data.decode()
    assert "Fish &amp; &lt;Ships&gt;" in text or "Fish & <Ships>" in text
    assert "Ann Ó'Brien" in text and "Rivers" in text and "Riverside Commons" in text


def test_ids_agree_across_formats_and_never_collide() -> None:
    """A guid that is an IRI is the id; a bare one becomes a UUID URN of (source, guid),
    stable forever and distinct between sources that both number their posts "42"."""
    twin = replace(MILL, source="riverside-news", url=f"{SITE}/42", title="Another 42")
    doc = document(posts=(FISH, MILL, twin, OTTER))
    ids = [item_id(post) for post in doc.posts]
    assert ids[0] == FISH.guid and ids[3] == OTTER.guid
    assert ids[1] == "urn:uuid:03af1665-4602-5b91-ade9-9bca0041b35e"  # pinned: never changes
    assert ids[1] != ids[2]
    rss = ET.fromstring(render_rss(doc))
    assert [g.text for g in rss.iter("guid")] == ids
    permalinks = [g.get("isPermaLink") for g in rss.iter("guid")]
    assert permalinks == ["true", "false", "false", "false"]
    atom = ET.fromstring(render_atom(doc))
    assert [e.findtext(f"{ATOM}id") for e in atom.iter(f"{ATOM}entry")] == ids
    assert [i["id"] for i in json.loads(render_json(doc))["items"]] == ids


def test_rss_channel_link_is_the_home_page() -> None:
    """feedgen makes the last link added the RSS <link>; ours must be the site, not self."""
    channel = ET.fromstring(render_rss(document())).find("channel")
    assert channel.findtext("link") == SITE


# --- RFC 5005 archives ----------------------------------------------------------------------


def test_archive_documents_carry_rfc5005_markup() -> None:
    doc = document(path="archive/2015-11", links=ARCHIVE, posts=(VOTE,))
    atom = ET.fromstring(render_atom(doc))
    assert atom.find(f"{FH}archive") is not None
    links = {link.get("rel"): link.get("href") for link in atom.findall(f"{ATOM}link")}
    assert links == {
        "alternate": SITE,
        "self": f"{FEEDS}/archive/2015-11.atom",
        "hub": "https://hub.example/",
        "current": f"{FEEDS}/index.atom",
        "prev-archive": f"{FEEDS}/archive/2015-10.atom",
        "next-archive": f"{FEEDS}/archive/2015-12.atom",
    }

    channel = ET.fromstring(render_rss(doc)).find("channel")
    assert channel.find(f"{FH}archive") is not None
    links = {link.get("rel"): link.get("href") for link in channel.findall(f"{ATOM}link")}
    assert links == {
        "self": f"{FEEDS}/archive/2015-11.rss",
        "hub": "https://hub.example/",
        "current": f"{FEEDS}/index.rss",
        "prev-archive": f"{FEEDS}/archive/2015-10.rss",
        "next-archive": f"{FEEDS}/archive/2015-12.rss",
    }

    assert json.loads(render_json(doc))["_syndicate"] == {
        "archive": True,
        "current": f"{FEEDS}/index.json",
        "prev_archive": f"{FEEDS}/archive/2015-10.json",
        "next_archive": f"{FEEDS}/archive/2015-12.json",
    }


def test_subscription_documents_are_not_archives() -> None:
    for render in (render_rss, render_atom):
        data = render(document())
        assert ET.fromstring(data).find(f".//{FH}archive") is None
        assert b"purl.org/syndication/history" not in data  # no unused fh prefix
    assert "archive" not in json.loads(render_json(document()))["_syndicate"]


# --- golden files ---------------------------------------------------------------------------


@pytest.mark.parametrize("ext", RENDERERS)
def test_golden_file(ext: str) -> None:
    data = RENDERERS[ext](document())
    golden = GOLDEN / f"feed.{ext}"
    if os.environ.get("SYNDICATE_UPDATE_GOLDEN") == "1" or not golden.exists():
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(data)
        pytest.skip(f"wrote {golden}; read it, then run again")
    assert data == golden.read_bytes(), (
        f"{ext} output differs from {golden}; if intended, rerun with SYNDICATE_UPDATE_GOLDEN=1"
    )


# --- feedcheck catches what it claims to ----------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "old", "new", "message"),
    [
        ("atom", b'<content type="html">', b'<content type="CDATA">', "content type"),
        (
            "atom",
            b"<updated>2015-12-15T17:00:00+00:00</updated>",
            b"<updated>yesterday</updated>",
            "RFC 3339",
        ),
        (
            "atom",
            f"<id>{OTTER.guid}</id>".encode(),
            f"<id>{FISH.guid}</id>".encode(),
            "entry id repeated",
        ),
        ("atom", f'href="{FISH.discussion_url}"'.encode(), b'href="/t/31"', "not absolute"),
        ("atom", b'rel="self" type="application/atom+xml"/>', b'rel="related"/>', "self"),
        ("rss", b"<pubDate>Mon, 14 Dec 2015", b"<pubDate>14/12/2015", "RFC 822"),
        (
            "rss",
            f'<guid isPermaLink="false">{OTTER.guid}'.encode(),
            f'<guid isPermaLink="false">{FISH.guid}'.encode(),
            "guid repeated",
        ),
        ("rss", b'isPermaLink="false">tag:', b'isPermaLink="true">tag:', "permalink guid"),
        ("rss", f"<comments>{FISH.discussion_url}".encode(), b"<comments>#respond", "not absolute"),
        (
            "rss",
            b"<description>News from the river, the wetlands &amp; the council.</description>",
            b"",
            "no <description>",
        ),
        (
            "atom",
            b"<id>tag:riverside-commons.example,2015:news</id>",
            b"",
            "<source>: no <atom:id>",
        ),
        (
            "atom",
            b"<title>Field Notes</title>\n      <updated>2015-12-03T08:00:00+00:00</updated>",
            b"<title>Field Notes</title>",
            "<source>: no <atom:updated>",
        ),
        ("json", b'"version": "https://jsonfeed.org/version/1.1"', b'"version": "1.1"', "version"),
        (
            "json",
            b'"date_modified": "2015-12-15T17:00:00Z"',
            b'"date_modified": "15 Dec 2015"',
            "RFC 3339",
        ),
        ("json", b'"id": "tag:field-notes', b'"idx": "tag:field-notes', "id must be"),
        ("json", b'"home_page_url":', b'"homepage_url":', "unknown key"),
    ],
)
def test_feedcheck_catches_broken_documents(ext: str, old: bytes, new: bytes, message: str) -> None:
    data = RENDERERS[ext](document())
    assert old in data, "the mutation no longer applies; update the test"
    broken = data.replace(old, new, 1)
    with pytest.raises(AssertionError, match=message):
        CHECKS[ext](broken)
