"""Publishing end to end: the examples ingested, then every document written, valid,
stable, and rebuilt or removed only when it must be."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from feedcheck import check_atom, check_json, check_rss
from httpserver import HttpServer, Response

from syndicate.clock import FrozenClock
from syndicate.config import load_settings
from syndicate.config.settings import Settings
from syndicate.forum.linker import link_discussions
from syndicate.ingest.poll import ingest
from syndicate.publish.build import publish
from syndicate.store import Store

NOW = datetime(2015, 12, 20, 12, 0, tzinfo=UTC)
ATOM = "{http://www.w3.org/2005/Atom}"
CHECKS = {"rss": check_rss, "atom": check_atom, "json": check_json}


async def ingested(project: Path) -> tuple[Settings, Store]:
    settings = load_settings(project / "config.toml")
    store = await Store.open(settings.database_url)
    await ingest(settings, store, FrozenClock(NOW))
    await link_discussions(settings, store, FrozenClock(NOW))  # as ingest and run do
    return settings, store


async def test_every_document_is_written_and_valid(project: Path) -> None:
    settings, store = await ingested(project)
    async with store:
        report = await publish(settings, store, FrozenClock(NOW))
    feeds = project / "feeds"
    written = set(report.written)
    for ext in ("rss", "atom", "json"):
        assert f"index.{ext}" in written
        for name in ("riverside-news", "wetland-alliance", "field-notes"):
            assert f"source/{name}.{ext}" in written
        assert f"category/rivers.{ext}" in written and f"category/policy.{ext}" in written
    months = [f"2015-{m:02d}" for m in range(6, 13)]
    for month in months:
        for ext in ("rss", "atom", "json", "html"):
            assert f"archive/{month}.{ext}" in written
    assert "archive/index.html" in written
    for path in written:
        ext = path.rsplit(".", 1)[1]
        if ext in CHECKS:
            CHECKS[ext]((feeds / path).read_bytes())
    html = (feeds / "archive/2015-12.html").read_text()
    assert "Archive for December 2015" in html


async def test_items_carry_what_readers_show(project: Path) -> None:
    settings, store = await ingested(project)
    async with store:
        await publish(settings, store, FrozenClock(NOW))
    feeds = project / "feeds"
    rss = feedparser.parse(io.BytesIO((feeds / "index.rss").read_bytes()))
    atom = feedparser.parse(io.BytesIO((feeds / "index.atom").read_bytes()))
    assert not rss.bozo and not atom.bozo
    assert len(rss.entries) == 28
    fish = [e for e in rss.entries + atom.entries if e.title.startswith("Fish &")]
    assert [e.title for e in fish] == ["Fish & <Ships>: what the survey found"] * 2
    for entry in fish:
        assert entry.link.startswith("https://news.riverside-commons.example/2015/07/")
        assert entry.get("author") and entry.get("tags")
        assert entry.content[0].value.startswith("<")
    assert fish[0].comments.startswith("https://forum.riverside-commons.example/t/")
    replies = [link for link in fish[1].links if link.rel == "replies"]
    assert replies and replies[0].href == fish[0].comments
    data = json.loads((feeds / "index.json").read_text())
    item = next(i for i in data["items"] if i["title"].startswith("Fish &"))
    assert item["title"] == "Fish & <Ships>: what the survey found"
    assert item["_syndicate"]["discussion_url"] == fish[0].comments


async def test_a_second_publish_writes_nothing(project: Path) -> None:
    settings, store = await ingested(project)
    async with store:
        first = await publish(settings, store, FrozenClock(NOW))
        snapshot = {p: (project / "feeds" / p).stat().st_mtime_ns for p in first.written}
        second = await publish(settings, store, FrozenClock(NOW))
    assert (second.written, second.removed) == ([], [])
    assert second.unchanged == len(first.written)
    assert {p: (project / "feeds" / p).stat().st_mtime_ns for p in first.written} == snapshot


async def test_the_same_posts_give_the_same_bytes(project: Path, tmp_path: Path) -> None:
    settings, store = await ingested(project)
    other = settings.model_copy(
        update={"publish": settings.publish.model_copy(update={"dir": str(tmp_path / "elsewhere")})}
    )
    async with store:
        first = await publish(settings, store, FrozenClock(NOW))
        await store.forget_published(first.written)  # force a full rebuild elsewhere
        await publish(other, store, FrozenClock(datetime(2016, 3, 1, tzinfo=UTC)))
    for path in first.written:
        # Only the subscription feeds' prev-archive link depends on the date (latest full month).
        if path.endswith((".rss", ".atom", ".json")) and not path.startswith("index."):
            assert (project / "feeds" / path).read_bytes() == (
                tmp_path / "elsewhere" / path
            ).read_bytes(), path


async def test_a_changed_post_rewrites_only_its_documents(project: Path) -> None:
    settings, store = await ingested(project)
    async with store:
        await publish(settings, store, FrozenClock(NOW))
        feed = project / "examples" / "field-notes.json"
        feed.write_text(
            feed.read_text().replace(
                "Otter spraint under the railway bridge",
                "Otter spraint under the old railway bridge",
            )
        )
        await ingest(settings, store, FrozenClock(NOW))
        report = await publish(settings, store, FrozenClock(NOW))
    assert "index.rss" in report.written
    assert "source/field-notes.json" in report.written
    assert "archive/2015-11.atom" in report.written
    assert not any(p.startswith("source/riverside-news") for p in report.written)
    assert "archive/2015-06.atom" not in report.written


async def test_a_feed_per_site_category_with_the_posts_mapped_to_it(project: Path) -> None:
    settings, store = await ingested(project)
    feeds = project / "feeds" / "category"
    async with store:
        report = await publish(settings, store, FrozenClock(NOW))
        keys = await store.post_keys()
        rivers = json.loads((feeds / "rivers.json").read_bytes())
        partners = json.loads((feeds / "partners.json").read_bytes())
        assert not (feeds / "drought.json").exists()
        # Without [site] categories (a config written before it): a feed per category a
        # post has, as before, and one for each source's category.
        legacy = settings.model_copy(
            update={"site": settings.site.model_copy(update={"categories": None})}
        )
        before = await publish(legacy, store, FrozenClock(NOW))
    slugs = {p.split("/")[1].rsplit(".", 1)[0] for p in report.written if "category/" in p}
    assert slugs == {
        "rivers", "wildlife", "gardens", "volunteering", "events", "policy", "partners",
        "field-notes",
    }  # fmt: skip
    titles = {item["title"] for item in rivers["items"]}
    # Tagged "flows" and "drought" in Field Notes, "Water quality" by the partner: Rivers tags.
    assert "Dry August: flows at their lowest in our records" in titles
    assert "Lowfield brook: investigation update" in titles
    assert rivers["title"] == "Riverside Commons News: Rivers"
    assert len(partners["items"]) == sum(1 for key in keys if key.source == "wetland-alliance")

    tag_feeds = {p.split("/")[1].rsplit(".", 1)[0] for p in before.written if "category/" in p}
    assert {"drought", "flood-resilience", "water-testing"} <= tag_feeds
    assert not [path for path in before.removed if path.startswith("category/")]
    assert (feeds / "drought.json").exists() and (feeds / "partners.json").exists()


async def test_documents_of_a_removed_source_are_removed(project: Path) -> None:
    settings, store = await ingested(project)
    async with store:
        await publish(settings, store, FrozenClock(NOW))
        fewer = settings.model_copy(update={"sources": settings.sources[:2]})
        report = await publish(fewer, store, FrozenClock(NOW))
    # "Field notes" held the posts its source put in it: with the source gone, it has none.
    assert sorted(report.removed) == [
        "category/field-notes.atom",
        "category/field-notes.json",
        "category/field-notes.rss",
        "source/field-notes.atom",
        "source/field-notes.json",
        "source/field-notes.rss",
    ]
    assert not (project / "feeds" / "source" / "field-notes.rss").exists()


async def test_rfc5005_archive_links(project: Path) -> None:
    settings, store = await ingested(project)
    async with store:
        await publish(settings, store, FrozenClock(NOW))
    feeds = project / "feeds"
    base = "https://news.riverside-commons.example/feeds"

    def links(path: str) -> dict[str, str]:
        root = ET.fromstring((feeds / path).read_bytes())
        return {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}

    # December 2015 is the current month at NOW: the latest full month is November.
    assert links("index.atom")["prev-archive"] == f"{base}/archive/2015-11.atom"
    november = links("archive/2015-11.atom")
    assert november["prev-archive"] == f"{base}/archive/2015-10.atom"
    assert november["next-archive"] == f"{base}/archive/2015-12.atom"
    assert november["current"] == f"{base}/index.atom"
    root = ET.fromstring((feeds / "archive/2015-06.atom").read_bytes())
    assert root.find("{http://purl.org/syndication/history/1.0}archive") is not None
    assert "prev-archive" not in links("archive/2015-06.atom")


async def test_websub_pings_and_retries(project: Path, http_server: HttpServer) -> None:
    settings, store = await ingested(project)
    http_server.route("/hub", Response(503))
    hubbed = settings.model_copy(
        update={
            "publish": settings.publish.model_copy(
                update={"websub_hub": http_server.url_for("/hub")}
            )
        }
    )
    async with store:
        failed = await publish(hubbed, store, FrozenClock(NOW))
        assert failed.pinged == 0 and failed.ping_failures > 0
        http_server.route("/hub", Response(204))
        retried = await publish(hubbed, store, FrozenClock(NOW))
    assert retried.written == []
    assert retried.pinged == failed.ping_failures
    last = http_server.requests_to("/hub")[-1]
    assert b"hub.mode=publish" in last.body
    assert b"hub.url=https%3A%2F%2Fnews.riverside-commons.example%2Ffeeds%2F" in last.body
    root = ET.fromstring((project / "feeds" / "index.atom").read_bytes())
    hubs = [x.get("href") for x in root.findall(f"{ATOM}link") if x.get("rel") == "hub"]
    assert hubs == [http_server.url_for("/hub")]


async def test_workers_sharing_a_database_each_keep_their_own_folder_current(
    project: Path,
) -> None:
    # Two workers, one database, a [publish] dir each: the records are shared, the files not.
    settings, store = await ingested(project)
    other = settings.model_copy(update={"path": settings.path.with_name("other.toml")})
    other_publish = settings.publish.model_copy(update={"dir": "other-feeds"})
    other = other.model_copy(update={"publish": other_publish})
    async with store:
        await publish(other, store, FrozenClock(NOW))
        await publish(settings, store, FrozenClock(NOW))  # the records now describe this one
        replaced = project / "other-feeds" / "index.rss"
        replaced.write_bytes(replaced.read_bytes().replace(b"<title>", b"<title>OLD ", 1))
        brought_up = await publish(other, store, FrozenClock(NOW))
    assert brought_up.written == ["index.rss"]
    assert replaced.read_bytes() == (project / "feeds" / "index.rss").read_bytes()


def test_killed_mid_write_leaves_whole_files(project: Path) -> None:
    """kill -9 a publisher again and again; every file on disk is always a whole document."""
    config = project / "config.toml"
    subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(config), "ingest", "--no-publish"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    script = (
        "import asyncio, sys\n"
        "from syndicate.clock import SystemClock\n"
        "from syndicate.config import load_settings\n"
        "from syndicate.publish.build import publish\n"
        "from syndicate.store import Store\n"
        "async def main():\n"
        "    s = load_settings(sys.argv[1])\n"
        "    async with await Store.open(s.database_url) as store:\n"
        "        while True:\n"
        "            await store.forget_published((await store.published_files()))\n"
        "            print('publishing', flush=True)\n"
        "            await publish(s, store, SystemClock())\n"
        "asyncio.run(main())\n"
    )
    feeds = project / "feeds"
    for delay in (0, 0.05, 0.1, 0.2):  # where in a publish the kill lands
        child = subprocess.Popen(
            [sys.executable, "-c", script, str(config)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        # Killed only once a publish is under way (the second: every file written before),
        # however slowly the child started.
        for _ in range(2):
            assert child.stdout.readline() == "publishing\n", "the publisher died"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        for path in feeds.rglob("*"):
            if path.suffix in (".rss", ".atom"):
                ET.fromstring(path.read_bytes())
            elif path.suffix == ".json":
                json.loads(path.read_bytes())
            elif path.suffix == ".html":
                assert path.read_text().rstrip().endswith("</html>")
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(config), "publish"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert not list(feeds.rglob(".*.tmp"))


@pytest.mark.parametrize("formats", [["json"], ["rss", "atom"]])
async def test_formats_follow_the_config(project: Path, formats: list[str]) -> None:
    settings, store = await ingested(project)
    only = settings.model_copy(
        update={"publish": settings.publish.model_copy(update={"formats": formats})}
    )
    async with store:
        report = await publish(only, store, FrozenClock(NOW))
    extensions = {p.rsplit(".", 1)[1] for p in report.written if not p.startswith("archive/")}
    # Besides the feeds: the list of feeds and of past issues (HTML), and for RSS and Atom
    # the stylesheet browsers show them with.
    assert extensions == set(formats) | {"html"} | ({"xsl"} if "rss" in formats else set())


@pytest.mark.parametrize(
    ("formats", "credited"), [(["rss", "atom"], "atom"), (["json", "rss"], "rss")]
)
async def test_a_file_source_is_credited_with_a_feed_we_publish(
    project: Path, formats: list[str], credited: str
) -> None:
    """The examples are files: their items credit our own feed of them, never a path, and
    in a format that exists."""
    settings, store = await ingested(project)
    only = settings.model_copy(
        update={"publish": settings.publish.model_copy(update={"formats": formats})}
    )
    async with store:
        report = await publish(only, store, FrozenClock(NOW))
    rss = ET.fromstring((project / "feeds" / "index.rss").read_bytes())
    credits = {source.get("url") for source in rss.iter("source")}
    base = "https://news.riverside-commons.example/feeds/source"
    assert credits == {
        f"{base}/{name}.{credited}"
        for name in ("riverside-news", "wetland-alliance", "field-notes")
    }
    for name in ("riverside-news", "wetland-alliance", "field-notes"):
        assert f"source/{name}.{credited}" in report.written


async def test_atom_sources_carry_the_source_feeds_id_and_updated(
    project: Path, http_server: HttpServer
) -> None:
    """Sources read over HTTP: <source> names the feed by its own id (Atom <id>, JSON Feed
    feed_url) or, for RSS, which has none, by its URL; updated is its newest post's here."""
    config = project / "config.toml"
    text = config.read_text()
    for file in ("riverside-news.rss", "partner-wetlands.atom", "field-notes.json"):
        http_server.route(f"/{file}", Response(body=(project / "examples" / file).read_bytes()))
        text = text.replace(f'"examples/{file}"', f'"{http_server.url_for("/" + file)}"')
    config.write_text(text)
    settings, store = await ingested(project)
    async with store:
        await publish(settings, store, FrozenClock(NOW))
        state = await store.source_state("wetland-alliance")
        assert state is not None and state.feed_id == "tag:wetland-alliance.example,2013:news"
        newest = {
            name: max(post.updated for post in await store.recent_posts(99, source=name))
            for name in ("riverside-news", "wetland-alliance", "field-notes")
        }
    atom = check_atom((project / "feeds" / "index.atom").read_bytes())
    wetland_id = "tag:wetland-alliance.example,2013:news"
    expected = {  # title: (source, id)
        "Riverside Commons News": ("riverside-news", http_server.url_for("/riverside-news.rss")),
        "Wetland Alliance (partner)": ("wetland-alliance", wetland_id),
        "Riverside Field Notes": (
            "field-notes",
            "https://notes.riverside-commons.example/feed.json",
        ),
    }
    seen = set()
    for source in atom.iter(f"{ATOM}source"):
        name, feed_id = expected[source.findtext(f"{ATOM}title") or ""]
        assert source.findtext(f"{ATOM}id") == feed_id
        assert datetime.fromisoformat(source.findtext(f"{ATOM}updated") or "") == newest[name]
        seen.add(name)
    assert seen == set(newest)
