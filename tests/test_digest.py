"""Building the digest: periods in the site's time zone, one issue per period, selection,
grouping, the editorial intro, the web copy, and the CLI."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from test_mail_send import prepared as prepared_on

from syndicate.cli import cli
from syndicate.clock import FrozenClock, SystemClock
from syndicate.config import load_settings
from syndicate.config.settings import Settings
from syndicate.digest import period as periods
from syndicate.digest.build import (
    build_issue,
    copy_renderer,
    digest_context,
    issue_content,
    stored_content,
)
from syndicate.digest.render import DigestRenderer
from syndicate.errors import UsageError
from syndicate.forum.linker import link_discussions
from syndicate.ingest.poll import ingest
from syndicate.models import Post
from syndicate.store import Store
from syndicate.store.tables import digest_issues

NOW = datetime(2016, 1, 2, 12, 0, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")


def test_months_and_weeks_in_the_site_time_zone() -> None:
    december = periods.month("2015-12", ZoneInfo("Pacific/Auckland"))
    assert december.label == "December 2015"
    assert december.start == datetime(2015, 12, 1, tzinfo=ZoneInfo("Pacific/Auckland"))
    assert december.end == datetime(2016, 1, 1, tzinfo=ZoneInfo("Pacific/Auckland"))
    assert december.start.astimezone(UTC) == datetime(2015, 11, 30, 11, 0, tzinfo=UTC)
    february = periods.month("2016-02", LONDON)
    assert (february.end - february.start) == timedelta(days=29)  # a leap year
    week = periods.week("2015-W53", LONDON)
    assert (week.start.date().isoformat(), week.end.date().isoformat()) == (
        "2015-12-28",
        "2016-01-04",
    )
    assert week.label == "Week 53, 2015"
    assert periods.just_ended(NOW, "month", LONDON).key == "2015-12"
    assert periods.just_ended(NOW, "week", LONDON).key == "2015-W52"
    for bad in ("2015-13", "15-12", "2015-12-01"):
        with pytest.raises(UsageError, match="not a month"):
            periods.month(bad, LONDON)
    with pytest.raises(UsageError, match="2014 has no week 53"):
        periods.week("2014-W53", LONDON)


async def prepared(project: Path) -> tuple[Settings, Store]:
    settings = load_settings(project / "config.toml")
    store = await Store.open(settings.database_url)
    await ingest(settings, store, FrozenClock(NOW))
    await link_discussions(settings, store, FrozenClock(NOW))
    return settings, store


async def test_an_issue_is_built_once(project: Path) -> None:
    settings, store = await prepared(project)
    async with store:
        first = await build_issue(settings, store, FrozenClock(NOW), "2015-12")
        second = await build_issue(settings, store, FrozenClock(NOW), "2015-12")
        assert len(await store.issues()) == 1
    assert first.created and not second.created
    assert first.issue == second.issue
    assert first.issue.subject == "Riverside Commons News: December 2015"
    assert first.posts == len(first.issue.post_ids) == 2
    web = (project / "feeds" / "digest" / "2015-12.html").read_text()
    assert "Riverside Commons News" in web and "%%" not in web


async def test_posts_are_chosen_in_the_site_time_zone(project: Path) -> None:
    settings, store = await prepared(project)
    async with store:
        july, _ = await digest_context(settings, store, periods.month("2015-07", LONDON))
        june, _ = await digest_context(settings, store, periods.month("2015-06", LONDON))
    # "June volunteer round-up": 30 June 23:30 -05:00 is 1 July 05:30 in London.
    assert "June volunteer round-up" in [p.title for p in july.posts]
    assert "June volunteer round-up" not in [p.title for p in june.posts]
    assert [p.date for p in july.posts] == sorted((p.date for p in july.posts), reverse=True)


async def test_max_posts_order_and_grouping(project: Path) -> None:
    settings, store = await prepared(project)
    digest = settings.digest.model_copy(
        update={"max_posts": 2, "order": "oldest", "group_by": "source"}
    )
    small = settings.model_copy(update={"digest": digest})
    async with store:
        context, ids = await digest_context(small, store, periods.month("2015-09", LONDON))
    assert len(ids) == len(context.posts) == 2
    assert context.more == 3  # five posts in September 2015
    assert context.posts[0].date < context.posts[1].date
    assert [g.title for g in context.groups] == sorted(
        {p.source for p in context.posts}, key=[p.source for p in context.posts].index
    )


async def test_an_empty_month_is_skipped_or_says_so(project: Path) -> None:
    settings, store = await prepared(project)
    async with store:
        skipped = await build_issue(settings, store, FrozenClock(NOW), "2015-01")
        assert skipped.issue is None and not await store.issues()
        keep = settings.model_copy(
            update={"digest": settings.digest.model_copy(update={"skip_empty": False})}
        )
        empty = await build_issue(keep, store, FrozenClock(NOW), "2015-01")
    assert empty.issue is not None and empty.posts == 0
    assert "No new posts" in empty.issue.text


async def test_the_intro_is_markdown_without_raw_html(project: Path) -> None:
    intro = project / "digest" / "intro" / "2015-12.md"
    intro.parent.mkdir(parents=True)
    intro.write_text("A **busy** month. <script>alert(1)</script> [Donate](/donate)\n")
    settings, store = await prepared(project)
    async with store:
        context, _ = await digest_context(settings, store, periods.month("2015-12", LONDON))
    assert "<strong>busy</strong>" in context.intro_html
    assert "<script" not in context.intro_html
    assert 'href="https://news.riverside-commons.example/donate"' in context.intro_html


async def test_categories_chosen_by_a_subscriber(project: Path) -> None:
    settings, store = await prepared(project)
    async with store:
        content = await issue_content(settings, store, periods.month("2015-09", LONDON))
    policy = content.for_categories(frozenset({"policy"}))
    assert policy.posts and all("Policy" in p.site_categories for p in policy.posts)
    assert content.for_categories(frozenset()) == content.context


async def test_a_subscribers_site_category_takes_the_posts_mapped_to_it(project: Path) -> None:
    # September and October 2015 of the bundled examples, with its [site] categories.
    settings, store = await prepared(project)
    async with store:
        content = await issue_content(settings, store, periods.month("2015-08", LONDON))
        october = await issue_content(settings, store, periods.month("2015-10", LONDON))
    titles = [post.title for post in content.context.posts]
    dry = "Dry August: flows at their lowest in our records"
    assert dry in titles
    # "drought" and "flows" are tags of [categories.Rivers]; the post's source is "Field
    # notes"; none of its own tags is named "Rivers".
    rivers = [post.title for post in content.for_categories(frozenset({"rivers"})).posts]
    assert dry in rivers
    assert dry in [p.title for p in content.for_categories(frozenset({"Field notes"})).posts]
    assert dry not in [p.title for p in content.for_categories(frozenset({"Gardens"})).posts]
    # A choice made before the site listed its categories (a feed's own tag) still works.
    assert [p.title for p in content.for_categories(frozenset({"DROUGHT"})).posts] == [dry]
    # Every post of a partner's feed is in "Partners", whatever its tags.
    partners = october.for_categories(frozenset({"partners"})).posts
    assert partners and {post.source for post in partners} == {"Wetland Alliance (partner)"}
    assert len(partners) == sum(
        1 for post in october.context.posts if post.source == "Wetland Alliance (partner)"
    )
    # The digest groups posts by their first site category, never by a feed's tag.
    groups = {group.title for group in content.context.groups}
    assert groups <= {*(settings.site.categories or ()), "Other"}


async def test_an_issue_keeps_what_it_is_made_of(project: Path, database_url: str) -> None:
    settings, store = await prepared_on(project, database_url)
    digest = settings.digest.model_copy(update={"max_posts": 3})
    settings = settings.model_copy(update={"digest": digest})
    async with store:
        built = await build_issue(settings, store, FrozenClock(NOW), "2015-09")
        assert built.issue is not None
        issue = await store.issue("2015-09")
        assert issue is not None
        kept = await stored_content(settings, store, issue)
        now = await issue_content(settings, store, periods.month("2015-09", LONDON))
    # What was rendered, as it was: posts, groups, the two left out and their categories.
    assert kept.context == now.context
    assert kept.post_ids == issue.post_ids == now.post_ids
    # Their site categories, then their own: "Funding" is a Policy tag, and a Partners post.
    assert kept.left_out == (("Rivers", "Policy"), ("Policy", "Partners", "Funding"))
    assert kept.templates == DigestRenderer.read_sources(settings.templates_dir)
    assert "email/digest.html.j2" in kept.templates and "email/style.css" in kept.templates
    assert kept.subject == settings.digest.subject
    # Rendered again from what it keeps, the whole issue is its stored copy.
    again = copy_renderer(settings, kept).render(kept.context)
    assert (again.subject, again.html, again.text) == (issue.subject, issue.html, issue.text)


async def test_an_issue_stored_before_it_kept_its_content_uses_its_post_ids(
    project: Path, database_url: str
) -> None:
    settings, store = await prepared_on(project, database_url)
    digest = settings.digest.model_copy(update={"max_posts": 3})
    settings = settings.model_copy(update={"digest": digest})
    async with store:
        built = await build_issue(settings, store, FrozenClock(NOW), "2015-09")
        assert built.issue is not None
        async with store.write() as conn:  # as revision 0007 leaves an older issue
            await conn.execute(update(digest_issues).values(content=None))
        issue = await store.issue("2015-09")
        assert issue is not None and issue.content is None
        september = await store.posts_between(
            datetime(2015, 9, 1, tzinfo=UTC), datetime(2015, 10, 1, tzinfo=UTC)
        )
        newest = september[-1]
        added = replace(
            newest,
            guid="added-later",
            url="https://news.riverside-commons.example/added-later/",
            title="Added later",
            categories=("Policy",),
            first_seen=NOW + timedelta(days=1),
            content_hash="added",
            id=None,
        )
        await store.upsert_posts(newest.source, [added], NOW + timedelta(days=1))
        kept = await stored_content(settings, store, issue)
    assert kept.post_ids == issue.post_ids
    assert [post.title for post in kept.context.posts] == [
        "Beavers on the upper Wend? Not yet, and here is why",
        "Have your say on the drainage consultation before 9 October",
        "Where we sample: map and grid references",
    ]
    # Left out: the two posts seen before it was built, not the one added since.
    assert sorted(kept.left_out) == [("Policy", "Partners", "Funding"), ("Rivers", "Policy")]
    assert kept.templates is None  # rendered with the templates of today
    policy = kept.for_categories(frozenset({"POLICY"}))
    assert (len(policy.posts), policy.more) == (2, 2)  # both left out are in Policy


async def test_five_hundred_posts_respect_max_posts(project: Path) -> None:
    settings, store = await prepared(project)
    base = Post(
        source="riverside-news",
        guid="g",
        url="https://x.example/",
        title="T",
        published=datetime(2015, 3, 10, tzinfo=UTC),
        updated=datetime(2015, 3, 10, tzinfo=UTC),
        first_seen=NOW,
        content_hash="h",
    )
    async with store:
        await store.upsert_posts(
            "riverside-news",
            [
                replace(
                    base,
                    guid=f"g{n}",
                    url=f"https://x.example/{n}",
                    title=f"Post {n}",
                    published=base.published + timedelta(minutes=n),
                )
                for n in range(500)
            ],
            NOW,
        )
        result = await build_issue(settings, store, FrozenClock(NOW), "2015-03")
    assert (result.posts, result.more) == (30, 470)
    assert "470 more" in result.issue.text


def test_cli_build_twice_and_preview(project: Path) -> None:
    config = str(project / "config.toml")
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", config, "ingest"]).exit_code == 0
    first = runner.invoke(cli, ["--config", config, "digest", "build", "--month", "2015-12"])
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == (
        "2015-12 built: 'Riverside Commons News: December 2015', 2 posts"
    )
    second = runner.invoke(cli, ["--config", config, "digest", "build", "--month", "2015-12"])
    assert "already built" in second.stdout
    html = runner.invoke(cli, ["--config", config, "digest", "preview", "--month", "2015-11"])
    assert html.exit_code == 0, html.output
    assert "<html" in html.stdout and "https://forum.riverside-commons.example/t/" in html.stdout
    text = runner.invoke(
        cli, ["--config", config, "digest", "preview", "--month", "2015-11", "--format", "text"]
    )
    assert "<" not in text.stdout.replace("<https", "")
    assert "Discuss: https://forum.riverside-commons.example/t/" in text.stdout
    out = project / "preview.eml"
    eml = runner.invoke(
        cli,
        [
            "--config",
            config,
            "digest",
            "preview",
            "--month",
            "2015-11",
            "--format",
            "eml",
            "-o",
            str(out),
        ],
    )
    assert eml.exit_code == 0
    message = email.message_from_bytes(out.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "Riverside Commons News: November 2015"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    bad = runner.invoke(cli, ["--config", config, "digest", "preview", "--month", "2015-13"])
    assert bad.exit_code == 2 and "not a month" in bad.stderr
    unknown = runner.invoke(
        cli,
        [
            "--config",
            config,
            "digest",
            "preview",
            "--month",
            "2015-11",
            "--subscriber",
            "nobody@example.org",
        ],
    )
    assert unknown.exit_code == 2


def test_an_undefined_variable_names_its_template(project: Path) -> None:
    template = project / "templates" / "email" / "digest.txt.j2"
    template.write_text(template.read_text() + "{{ no_such_variable }}\n")
    config = str(project / "config.toml")
    runner = CliRunner()
    runner.invoke(cli, ["--config", config, "ingest", "--no-publish"])
    result = runner.invoke(
        cli, ["--config", config, "digest", "preview", "--month", "2015-11", "--format", "text"]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: templates/email/digest.txt.j2:")
    assert "no_such_variable" in result.stderr
    check = runner.invoke(cli, ["--config", config, "check"])
    assert check.exit_code == 2
    assert "templates/email/digest.txt.j2:" in check.stderr


async def test_the_example_digest_matches_its_golden_files(project: Path) -> None:
    """The bundled examples' November 2015 digest, as a subscriber without a name gets it."""
    import os

    from syndicate.digest.build import renderer_for

    settings, store = await prepared(project)
    async with store:
        context, _ = await digest_context(settings, store, periods.month("2015-11", LONDON))
    rendered = renderer_for(settings).render(context)
    golden = Path(__file__).parent / "golden"
    for name, data in (
        ("example-digest-2015-11.html", rendered.web_copy()),
        ("example-digest-2015-11.txt", rendered.text_copy()),
    ):
        path = golden / name
        if os.environ.get("SYNDICATE_UPDATE_GOLDEN") or not path.exists():
            path.write_text(data, encoding="utf-8")
        assert data == path.read_text(encoding="utf-8"), (
            f"{name} differs; if intended, rerun with SYNDICATE_UPDATE_GOLDEN=1"
        )
    assert "Discuss: https://forum.riverside-commons.example/t/" in rendered.text_copy()


def test_preview_for_a_subscriber_is_personal(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import re

    from sqlalchemy import insert

    from syndicate.models import Subscriber
    from syndicate.store.tables import subscribers
    from syndicate.tokens import Tokens

    monkeypatch.setenv("SYNDICATE_SECRET", "test-secret-" * 3)

    async def add_ann() -> Subscriber | None:  # no CLI for subscribers yet (issue 7)
        _, store = await prepared(project)
        async with store:
            async with store.write() as conn:
                await conn.execute(
                    insert(subscribers).values(
                        email="ann@example.org",
                        name='Ann "<b>"',
                        status="active",
                        categories=["Policy"],
                        consent_source="test",
                        consented_at=NOW,
                        bounce_count=0,
                    )
                )
            return await store.subscriber_by_email("ANN@example.org ")

    person = asyncio.run(add_ann())
    assert person is not None
    result = CliRunner().invoke(
        cli,
        [
            "--config",
            str(project / "config.toml"),
            "digest",
            "preview",
            "--month",
            "2015-09",
            "--subscriber",
            "ann@example.org",
        ],
    )
    assert result.exit_code == 0, result.output
    html = result.stdout
    assert "Hello Ann &quot;&lt;b&gt;&quot;," in html and '"<b>"' not in html
    assert "Have your say on the drainage consultation" in html  # a Policy post
    assert "Where we sample" not in html  # not in a chosen category
    token = re.search(r"https://news\.riverside-commons\.example/unsubscribe/([\w.-]+)", html)
    assert token
    tokens = Tokens("test-secret-" * 3, SystemClock())  # the command ran on the system clock
    claim = tokens.verify("unsubscribe", token[1])
    assert tokens.belongs_to(claim, person)
    assert "%%SYNDICATE" not in html


async def test_the_web_copy_is_for_anyone_and_offers_to_subscribe(project: Path) -> None:
    """The published "view in browser" page greets no one, says nothing of receiving the
    email and links to subscribing (relative, so it works on any host), not to home."""
    import os
    from urllib.parse import urljoin

    settings, store = await prepared(project)
    async with store:
        await build_issue(settings, store, FrozenClock(NOW), "2015-12")
    web = (project / "feeds" / "digest" / "2015-12.html").read_text()
    assert "Hello" not in web
    assert "receiving this email" not in web
    assert "Unsubscribe" not in web and "Manage your subscription" not in web
    footer = web[web.index('class="footer"') :]
    hrefs = re.findall(r'href="([^"]+)"', footer)
    page = "http://127.0.0.1:8080/feeds/digest/2015-12.html"
    resolved = [urljoin(page, href) for href in hrefs]
    assert "http://127.0.0.1:8080/subscribe" in resolved
    assert "http://127.0.0.1:8080/feeds/digest/" in resolved  # the past issues
    assert "http://127.0.0.1:8080/" not in resolved
    # The email itself is unchanged: greeting, unsubscribe link, "view in browser".
    async with await Store.open(settings.database_url) as store:
        issue = await store.issue("2015-12")
    assert issue is not None
    assert "%%SYNDICATE-GREETING%%" in issue.html and "receiving this email" in issue.html
    golden = Path(__file__).parent / "golden" / "web-copy-2015-12.html"
    if os.environ.get("SYNDICATE_UPDATE_GOLDEN") or not golden.exists():
        golden.write_text(web, encoding="utf-8")
    assert web == golden.read_text(encoding="utf-8"), (
        f"{golden.name} differs; if intended, rerun with SYNDICATE_UPDATE_GOLDEN=1"
    )


async def test_digest_images_have_the_feeds_alt_text_and_their_own_size(project: Path) -> None:
    """The examples give alt text and sizes three ways: an <img> in an RSS post's content
    (WordPress: alt, width and height), a JSON Feed image that is also in the content (its
    alt), and Atom media:thumbnail (width and height, no alt)."""
    settings, store = await prepared(project)
    async with store:
        posts = {post.title: post for post in await store.recent_posts(100)}
        result = await build_issue(settings, store, FrozenClock(NOW), "2015-07")
    kit = next(p for p in posts.values() if p.image_url and "testing-kit" in p.image_url)
    assert kit.image_alt == (
        "An open water-testing kit showing colour charts, sample tubes and a thermometer"
    )
    assert (kit.image_width, kit.image_height) == (800, 600)
    mayfly = next(p for p in posts.values() if p.image_url and "mayfly" in p.image_url)
    assert mayfly.image_alt == "A mayfly resting on a reed stem, wings folded upright"
    digger = next(p for p in posts.values() if p.image_url and "lowfield-digger" in p.image_url)
    assert digger.image_alt is None
    assert (digger.image_width, digger.image_height) == (320, 213)

    assert result.issue is not None
    images = {
        tag["src"]: tag
        for tag in (
            dict(re.findall(r'(\w+)="([^"]*)"', img))
            for img in re.findall(r"<img\b[^>]*>", result.issue.html)
        )
    }
    assert images[kit.image_url]["alt"] == kit.image_alt
    assert (images[kit.image_url]["width"], images[kit.image_url]["height"]) == ("536", "402")
    assert images[mayfly.image_url]["alt"] == mayfly.image_alt
    assert "width" not in images[mayfly.image_url]  # the feed gave no size: none made up
    # Smaller than the column: its own width, never stretched to fill it.
    assert images[digger.image_url]["alt"] == ""
    assert (images[digger.image_url]["width"], images[digger.image_url]["height"]) == (
        "320",
        "213",
    )
    titles = {post.title for post in posts.values()}
    assert not {tag["alt"] for tag in images.values()} & titles
