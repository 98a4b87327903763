"""A signed link belongs to one person for ever (issue 15, item 2), on SQLite and PostgreSQL.

Before migration 0006 SQLite handed a forgotten subscriber's id to the next one, and a token
named only the id, so the forgotten person's links showed and changed the newcomer. These
tests take the links the way a person has them (from the emails and pages the app sends),
forget their owner, add someone new, and open the old links through the web app and the CLI:
the newcomer is neither shown nor changed, and the answer is the one a forgotten person's
link gets.

One FrozenClock drives the web app, the command line and the links signed by hand (the
tests about links signed before 0006, id only), so that "created after the link was signed"
means the same to all of them.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin

import click.testing
import httpx
import pytest
from click.testing import CliRunner
from outbox import outbox_messages

from syndicate import subscribers as service
from syndicate.cli import cli
from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.mail.outbox import OutboxTransport
from syndicate.store import Store
from syndicate.tokens import Tokens, clocked_serializer, signing_secret
from syndicate.web.app import create_app

SITE = "https://news.riverside-commons.example"  # [site] url of the bundled config.toml
SECRET = "links-test-secret-" * 3
NOW = datetime(2016, 1, 1, 9, tzinfo=UTC)
CONFIRM_LINK = re.compile(re.escape(SITE) + r"/confirm/[A-Za-z0-9._-]+")
# On the pages, links are relative to the page (syndicate/web/render.py).
PREFERENCES_LINK = re.compile(r'href="([^"]*/preferences/[A-Za-z0-9._-]+)"')
UNSUBSCRIBE_LINK = re.compile(r'href="([^"]*/unsubscribe/[A-Za-z0-9._-]+)"')
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Links:
    confirm: str
    preferences: str
    unsubscribe: str


@dataclass
class Site:
    client: httpx.AsyncClient
    store: Store
    clock: FrozenClock
    settings: Settings
    project: Path

    async def links_of(self, address: str) -> Links:
        """Subscribe `address` and collect its links as its owner gets them: the confirm
        link from the email, the preferences link on the page its button opens, the
        unsubscribe link on the preferences page."""
        await service.subscribe(
            self.settings,
            self.store,
            OutboxTransport(self.settings.outbox_dir),
            Tokens(signing_secret(self.settings), self.clock),
            self.clock,
            address,
        )
        [message] = [m for m in outbox_messages(self.settings.outbox_dir) if address in m["To"]]
        body = message.get_body(("plain",))
        assert body is not None
        confirm = _found(CONFIRM_LINK, body.get_content())
        confirmed = await self.client.post(confirm, data={"csrf_token": await self.csrf()})
        assert confirmed.status_code == 200, confirmed.text
        preferences = urljoin(confirm, _found(PREFERENCES_LINK, html.unescape(confirmed.text)))
        page = await self.client.get(preferences)
        assert page.status_code == 200, page.text
        unsubscribe = urljoin(preferences, _found(UNSUBSCRIBE_LINK, html.unescape(page.text)))
        return Links(confirm, preferences, unsubscribe)

    async def csrf(self) -> str:
        page = await self.client.get("/subscribe")
        found = CSRF_FIELD.search(page.text)
        assert found, "the form has no CSRF field"
        return html.unescape(found.group(1))

    async def cli(self, *args: str) -> click.testing.Result:
        """The command line, in a thread: it runs an event loop of its own."""
        arguments = ["--config", str(self.project / "config.toml"), *args]
        return await asyncio.to_thread(CliRunner().invoke, cli, arguments, obj=self.clock)


def _found(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.search(text)
    assert found, f"no {pattern.pattern} in the page"
    return found.group(found.lastindex or 0)


@pytest.fixture
async def site(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Site]:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    config = project / "config.toml"
    config.write_text(
        config.read_text().replace(
            'database = "sqlite:///var/syndicate.db"', f'database = "{database_url}"'
        )
    )
    settings = load_settings(config)
    clock = FrozenClock(NOW)
    store = await Store.open(settings.database_url)
    try:
        app = create_app(
            settings, store=store, clock=clock, transport=OutboxTransport(settings.outbox_dir)
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
            async with httpx.AsyncClient(transport=transport, base_url=SITE) as client:
                yield Site(client, store, clock, settings, project)
    finally:
        await store.close()


async def open_links(site: Site, links: Links) -> dict[str, tuple[int, str]]:
    """Every way a link can be used on the web, as (status, page without the token)."""
    csrf = await site.csrf()
    answers = {
        "GET confirm": await site.client.get(links.confirm),
        "POST confirm": await site.client.post(links.confirm, data={"csrf_token": csrf}),
        "GET unsubscribe": await site.client.get(links.unsubscribe),
        "POST unsubscribe": await site.client.post(
            links.unsubscribe, data={"List-Unsubscribe": "One-Click"}
        ),
        "GET preferences": await site.client.get(links.preferences),
        "POST preferences": await site.client.post(
            links.preferences,
            data={"csrf_token": csrf, "name": "Mallory", "categories": ["Rivers"]},
        ),
    }
    tokens = [link.rsplit("/", 1)[1] for link in (links.confirm, links.preferences)]
    tokens.append(links.unsubscribe.rsplit("/", 1)[1])

    def page(response: httpx.Response) -> str:
        text = response.text
        for token in tokens:
            text = text.replace(token, "<token>")
        return text

    return {use: (response.status_code, page(response)) for use, response in answers.items()}


# -- links signed now: the id and a tag of the address -----------------------------------


async def test_a_forgotten_person_s_links_never_reach_the_next_subscriber(site: Site) -> None:
    ann = await site.links_of("ann@example.org")
    await service.forget(site.store, "ann@example.org", NOW)
    # Bob subscribes and has not confirmed. Before 0006, on SQLite, he got Ann's id.
    bob, _ = await service.add(
        site.store, "bob@example.org", NOW, name="Bob Stone", categories=["Wildlife"]
    )

    answers = await open_links(site, ann)

    after = await site.store.subscriber_by_email("bob@example.org")
    assert after == bob  # not confirmed, not unsubscribed, name and categories untouched
    for use, (status, page) in answers.items():
        assert "bob" not in page.lower() and "Wildlife" not in page, use
        if use == "POST unsubscribe":  # one-click must always succeed (RFC 8058)
            assert status == 200 and "This address will" in page, use
        else:
            assert status == 400 and "This link is not valid" in page, use

    # The CLI that takes a link: one line, exit 2, nothing changed.
    result = await site.cli("subscribers", "confirm", ann.confirm)
    assert result.exit_code == 2, result.output
    assert result.stderr == "error: this link is no longer valid\n"
    assert await site.store.subscriber_by_email("bob@example.org") == bob


async def test_a_link_that_is_no_one_s_answers_as_a_forgotten_person_s(site: Site) -> None:
    # Ann's id is now Bob's (a row that took it over before 0006, so that the test does not
    # depend on whether the database reuses ids); Carl was forgotten and his id is free.
    # Their links must get the same answers, so a link cannot tell who is subscribed.
    ann = await site.links_of("ann@example.org")
    carl = await site.links_of("carl@example.org")
    before = await site.store.subscriber_by_email("ann@example.org")
    assert before is not None
    await service.forget(site.store, "ann@example.org", NOW)
    await service.forget(site.store, "carl@example.org", NOW)
    await site.store.insert_subscriber(
        {
            "id": before.id,
            "email": "bob@example.org",
            "name": "Bob",
            "status": "active",
            "categories": ["Wildlife"],
            "consent_source": "cli",
            "consented_at": NOW,
            "bounce_count": 0,
        }
    )
    bob = await site.store.subscriber_by_email("bob@example.org")

    assert await open_links(site, ann) == await open_links(site, carl)
    assert await site.store.subscriber_by_email("bob@example.org") == bob


async def test_a_person_s_own_links_keep_working(site: Site) -> None:
    ann = await site.links_of("ann@example.org")
    page = await site.client.get(ann.preferences)
    assert page.status_code == 200 and "ann@example.org" in page.text
    response = await site.client.post(ann.unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "ann@example.org" in response.text
    after = await site.store.subscriber_by_email("ann@example.org")
    assert after is not None and after.status == "unsubscribed"


# -- links signed before 0006: the id alone ----------------------------------------------


def id_only(purpose: str, subscriber_id: int, clock: FrozenClock) -> str:
    """A link as syndicate signed it before links named their owner's address."""
    token = clocked_serializer(SECRET, f"syndicate-{purpose}", clock).dumps(subscriber_id)
    return f"{SITE}/{purpose}/{token}"


async def test_a_link_signed_before_0006_unsubscribes_its_owner_only(site: Site) -> None:
    ann, _ = await service.add(site.store, "ann@example.org", NOW, name="Ann", confirmed=True)
    site.clock.advance(timedelta(days=30))  # a digest goes out, with links to Ann's id
    old = Links(
        id_only("confirm", ann.id, site.clock),
        id_only("preferences", ann.id, site.clock),
        id_only("unsubscribe", ann.id, site.clock),
    )
    site.clock.advance(timedelta(days=200))  # still in people's inboxes (400 days)

    page = await site.client.get(old.preferences)
    assert page.status_code == 200 and "ann@example.org" in page.text
    response = await site.client.post(old.unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "ann@example.org" in response.text
    left = await site.store.subscriber_by_email("ann@example.org")
    assert left is not None and (left.status, left.unsubscribed_at) == (
        "unsubscribed",
        NOW + timedelta(days=230),
    )

    # Her last links (the confirm link too, which lasts 7 days) are signed; she is forgotten,
    # and (before 0006) Bob took over her id a day later: none of her links are his.
    recent = Links(
        id_only("confirm", ann.id, site.clock),
        id_only("preferences", ann.id, site.clock),
        id_only("unsubscribe", ann.id, site.clock),
    )
    await service.forget(site.store, "ann@example.org", site.clock.now())
    site.clock.advance(timedelta(days=1))
    await site.store.insert_subscriber(
        {
            "id": ann.id,
            "email": "bob@example.org",
            "name": "Bob",
            "status": "pending",
            "categories": ["Wildlife"],
            "consent_source": "web",
            "consented_at": site.clock.now(),
            "created_at": site.clock.now(),
            "bounce_count": 0,
        }
    )
    bob = await site.store.subscriber_by_email("bob@example.org")
    for links in (recent, old):
        for use, (status, page_text) in (await open_links(site, links)).items():
            assert "bob" not in page_text.lower(), use
            if links is old and use in ("GET confirm", "POST confirm"):
                assert status == 410, use  # expired long ago
            else:
                assert status == (200 if use == "POST unsubscribe" else 400), use
    result = await site.cli("subscribers", "confirm", recent.confirm)
    assert (result.exit_code, result.stderr) == (2, "error: this link is no longer valid\n")
    assert await site.store.subscriber_by_email("bob@example.org") == bob
