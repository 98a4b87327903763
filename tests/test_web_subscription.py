"""The web app's subscription routes (syndicate/web/subscription.py), through httpx's ASGI
transport, on SQLite and PostgreSQL.

Mail goes to the real Maildir outbox and is parsed back with `email`; each step checks the
subscriber's row in the database, not just the page. The app's FrozenClock drives all
time: the rate limit, and the age of links and form tokens (the expiry tests advance it).
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from outbox import outbox_messages as read_outbox

from syndicate import subscribers as service
from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.errors import TransientDeliveryError
from syndicate.ingest.poll import ingest
from syndicate.mail.outbox import OutboxTransport
from syndicate.mail.transport import Transport
from syndicate.models import Subscriber
from syndicate.store import Store
from syndicate.tokens import Tokens
from syndicate.web.app import create_app

SITE = "https://news.riverside-commons.example"  # [site] url of the bundled config.toml
SECRET = "web-test-secret-" * 3
NOW = datetime(2016, 1, 1, 9, tzinfo=UTC)
CONFIRM_LINK = re.compile(re.escape(SITE) + r"/confirm/[A-Za-z0-9._-]+")
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Web:
    client: httpx.AsyncClient
    store: Store
    clock: FrozenClock
    settings: Settings
    tokens: Tokens

    async def subscriber(self, address: str) -> Subscriber | None:
        return await self.store.subscriber_by_email(address)

    async def status(self, address: str) -> str | None:
        found = await self.subscriber(address)
        return found.status if found else None

    async def csrf(self, path: str = "/subscribe") -> str:
        page = await self.client.get(path)
        assert page.status_code == 200, page.text
        found = CSRF_FIELD.search(page.text)
        assert found, "the page has no CSRF field"
        return html.unescape(found.group(1))

    async def subscribe(self, address: str, **fields: object) -> httpx.Response:
        data: dict[str, object] = {"email": address, "csrf_token": await self.csrf()}
        data.update(fields)
        return await self.client.post("/subscribe", data=data)

    def link(self, purpose: str, subscriber: Subscriber) -> str:
        return self.tokens.link(SITE, purpose, subscriber).removeprefix(SITE)

    async def confirm(self, path: str, **headers: str) -> httpx.Response:
        """Open a confirmation link and press its button, as a person does."""
        page = await self.client.get(path)
        assert page.status_code == 200, page.text
        assert ">Confirm my subscription</button>" in page.text
        return await self.client.post(
            path, data={"csrf_token": await self.csrf(path)}, headers=headers
        )


class FailingTransport:
    """A transport whose every send fails, as a mail server that is down would."""

    async def send(self, message: bytes, envelope_from: str, envelope_to: str) -> None:
        raise TransientDeliveryError("421 try again later")

    async def close(self) -> None:
        pass


def outbox_messages(settings: Settings) -> list[EmailMessage]:
    return read_outbox(settings.outbox_dir)


def confirm_link(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    found = CONFIRM_LINK.search(part.get_content())
    assert found, "no confirmation link in the email"
    return found.group(0).removeprefix(SITE)


@pytest.fixture
def settings(project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    config = project / "config.toml"
    text = config.read_text().replace(
        'database = "sqlite:///var/syndicate.db"', f'database = "{database_url}"'
    )
    config.write_text(text)
    return load_settings(config)


async def open_web(
    settings: Settings, transport: Transport, client_address: str = "203.0.113.7"
) -> AsyncIterator[Web]:
    store = await Store.open(settings.database_url)
    clock = FrozenClock(NOW)
    try:
        await ingest(settings, store, clock)  # posts, so the form offers their categories
        app = create_app(settings, store=store, clock=clock, transport=transport)
        async with app.router.lifespan_context(app):
            asgi = httpx.ASGITransport(app=app, client=(client_address, 50000))
            async with httpx.AsyncClient(transport=asgi, base_url=SITE) as client:
                yield Web(client, store, clock, settings, Tokens(SECRET, clock))
    finally:
        await store.close()


@pytest.fixture
async def web(settings: Settings) -> AsyncIterator[Web]:
    async for opened in open_web(settings, OutboxTransport(settings.outbox_dir)):
        yield opened


# -- subscribe and confirm ---------------------------------------------------------------


async def test_subscribe_sends_a_confirmation_and_its_link_activates(web: Web) -> None:
    response = await web.subscribe("Ann@Example.org", name="Ann Lee", categories=["Rivers"])
    assert response.status_code == 200
    assert "Check your email" in response.text
    subscriber = await web.subscriber("ann@example.org")
    assert subscriber is not None
    assert (subscriber.status, subscriber.name) == ("pending", "Ann Lee")
    assert subscriber.categories == ("Rivers",)
    assert subscriber.consent_source == "web"

    [message] = outbox_messages(web.settings)
    assert message["To"].addresses[0].addr_spec == "ann@example.org"
    confirmed = await web.confirm(confirm_link(message))
    assert confirmed.status_code == 200
    assert "You are subscribed" in confirmed.text
    assert confirmed.headers["referrer-policy"] == "same-origin"
    assert await web.status("ann@example.org") == "active"
    # Opening the link again, or pressing the button again, is harmless: no second welcome.
    again = await web.client.get(confirm_link(message))
    assert (again.status_code, await web.status("ann@example.org")) == (200, "active")
    assert "You are subscribed" in again.text
    assert "<button" not in again.text
    pressed = await web.client.post(confirm_link(message), data={"csrf_token": await web.csrf()})
    assert (pressed.status_code, await web.status("ann@example.org")) == (200, "active")
    subjects = [m["Subject"] for m in outbox_messages(web.settings)]
    assert sorted(subjects) == [
        "Confirm your subscription to Riverside Commons News",
        "Welcome to Riverside Commons News",
    ]


async def test_the_answer_is_the_same_whoever_the_address_belongs_to(web: Web) -> None:
    await service.add(web.store, "active@example.org", NOW, confirmed=True)
    await service.add(web.store, "pending@example.org", NOW)
    await service.add(web.store, "left@example.org", NOW, confirmed=True)
    await service.remove(web.store, "left@example.org", NOW)
    await service.add(web.store, "forgotten@example.org", NOW, confirmed=True)
    await service.forget(web.store, "forgotten@example.org", NOW)

    answers = {}
    for address in (
        "new@example.org",
        "pending@example.org",
        "active@example.org",
        "left@example.org",
        "forgotten@example.org",
    ):
        response = await web.subscribe(address, name="Someone", categories=["Rivers"])
        answers[address] = (response.status_code, response.text, response.headers.get("location"))
    assert len(set(answers.values())) == 1, "the answer depends on the address"
    assert answers["new@example.org"][0] == 200
    # And nothing changed that should not have.
    assert await web.status("active@example.org") == "active"
    assert await web.status("left@example.org") == "unsubscribed"
    assert await web.subscriber("forgotten@example.org") is None
    sent_to = sorted(m["To"].addresses[0].addr_spec for m in outbox_messages(web.settings))
    assert sent_to == ["new@example.org", "pending@example.org"]


async def test_an_invalid_address_is_shown_again_with_the_error(web: Web) -> None:
    response = await web.subscribe(
        "not an address<script>", name="Ann <b>Lee</b>", categories=["Rivers"]
    )
    assert response.status_code == 400
    assert 'role="alert"' in response.text
    assert "not valid" in response.text
    # The values come back, escaped.
    assert 'value="not an address&lt;script&gt;"' in response.text
    assert 'value="Ann &lt;b&gt;Lee&lt;/b&gt;"' in response.text
    assert re.search(r'value="Rivers"\s+checked', response.text)
    assert "<script>" not in response.text
    assert await web.store.count_subscribers() == 0
    assert outbox_messages(web.settings) == []


async def test_a_name_with_a_line_break_is_refused(web: Web) -> None:
    response = await web.subscribe("ann@example.org", name="Ann\r\nBcc: everyone@example.org")
    assert response.status_code == 400
    assert await web.store.count_subscribers() == 0


BUNDLED_CATEGORIES = [
    "Rivers", "Wildlife", "Gardens", "Volunteering", "Events", "Policy", "Partners", "Field notes",
]  # fmt: skip
CHECKBOX = re.compile(r'name="categories"\s+value="([^"]*)"')


async def test_the_forms_offer_the_site_s_categories_not_every_tag(web: Web) -> None:
    subscriber = await active(web)
    for path in ("/", "/subscribe", web.link("preferences", subscriber)):
        page = await web.client.get(path)
        assert CHECKBOX.findall(page.text) == BUNDLED_CATEGORIES, path
    unsubscribe = await web.client.get(web.link("unsubscribe", subscriber))
    assert CHECKBOX.findall(unsubscribe.text) == BUNDLED_CATEGORIES


async def test_a_category_the_site_does_not_offer_is_refused(web: Web) -> None:
    for chosen in (["Rivers", "Made up"], ["drought"], ["Rivers\r\nBcc: x@example.org"]):
        response = await web.subscribe("ann@example.org", categories=chosen)
        assert response.status_code == 400, chosen
        assert "Please choose among the categories listed." in response.text
        assert CHECKBOX.findall(response.text) == BUNDLED_CATEGORIES  # the form again
    assert await web.store.count_subscribers() == 0
    assert outbox_messages(web.settings) == []

    # Any case: stored as the site spells it.
    response = await web.subscribe("ann@example.org", categories=["rivers", "FIELD NOTES"])
    assert response.status_code == 200
    subscriber = await web.subscriber("ann@example.org")
    assert subscriber is not None and subscriber.categories == ("Rivers", "Field notes")


async def test_category_names_are_escaped_on_the_form(settings: Settings) -> None:
    site = settings.site.model_copy(update={"categories": ['Rivers & "<Streams>"']})
    hostile = settings.model_copy(update={"site": site, "categories": {}})
    async for web in open_web(hostile, OutboxTransport(settings.outbox_dir)):
        page = await web.client.get("/subscribe")
        assert 'value="Rivers &amp; &#34;&lt;Streams&gt;&#34;"' in page.text
        assert "<Streams>" not in page.text
        response = await web.subscribe("ann@example.org", categories=['Rivers & "<Streams>"'])
        assert response.status_code == 200
        subscriber = await web.subscriber("ann@example.org")
        assert subscriber is not None and subscriber.categories == ('Rivers & "<Streams>"',)


async def test_a_failed_confirmation_email_is_not_revealed(settings: Settings) -> None:
    async for web in open_web(settings, FailingTransport()):
        failed = await web.subscribe("ann@example.org")
    async for web in open_web(settings, OutboxTransport(settings.outbox_dir)):
        await service.add(web.store, "bob@example.org", NOW, confirmed=True)
        normal = await web.subscribe("bob@example.org")
        assert (failed.status_code, failed.text) == (normal.status_code, normal.text)
        assert await web.status("ann@example.org") == "pending"


# -- CSRF ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "headers"),
    [
        ({}, {}),  # no token
        ({"csrf_token": "forged.token.value"}, {}),
        ("valid", {"Origin": "https://evil.example"}),
        ("valid", {"Origin": "null"}),  # sandboxed frames send this: not our site
        # A sandboxed frame or a redirect from elsewhere, as a browser says it.
        ("valid", {"Origin": "null", "Sec-Fetch-Site": "cross-site"}),
        ("valid", {"Origin": "null", "Sec-Fetch-Site": "same-site"}),
        ("valid", {"Referer": "http://news.riverside-commons.example/"}),  # http is not https
    ],
    ids=[
        "missing",
        "forged",
        "other-origin",
        "null-origin",
        "null-origin-cross-site",
        "null-origin-same-site",
        "other-scheme-referer",
    ],
)
async def test_a_forged_form_is_refused_and_changes_nothing(
    web: Web, fields: dict[str, str] | str, headers: dict[str, str]
) -> None:
    data = {"email": "ann@example.org"}
    data.update({"csrf_token": await web.csrf()} if fields == "valid" else fields)
    response = await web.client.post("/subscribe", data=data, headers=headers)
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    assert CSRF_FIELD.search(response.text), "a fresh form comes back"
    assert await web.store.count_subscribers() == 0
    assert outbox_messages(web.settings) == []


async def test_an_old_form_is_refused(web: Web) -> None:
    token = await web.csrf()
    web.clock.advance(timedelta(hours=13))  # CSRF_MAX_AGE is 12 hours
    response = await web.client.post(
        "/subscribe", data={"email": "a@example.org", "csrf_token": token}
    )
    assert response.status_code == 403
    assert await web.store.count_subscribers() == 0


async def test_the_site_origin_and_the_request_host_are_accepted(web: Web) -> None:
    for number, origin in enumerate([SITE, f"{SITE}:443", SITE.upper()]):
        response = await web.client.post(
            "/subscribe",
            data={"email": f"a{number}@example.org", "csrf_token": await web.csrf()},
            headers={"Origin": origin, "Referer": "https://ignored.example/"},
        )
        assert response.status_code == 200, origin
    # Reached directly (a proxy that keeps the Host header): the request's own host is fine.
    response = await web.client.post(
        "http://127.0.0.1:8080/subscribe",
        data={"email": "b@example.org", "csrf_token": await web.csrf()},
        headers={"Referer": "http://127.0.0.1:8080/"},
    )
    assert response.status_code == 200
    assert await web.store.count_subscribers() == 4


# -- rate limit --------------------------------------------------------------------------


async def test_subscribing_is_rate_limited_per_client(web: Web, settings: Settings) -> None:
    for number in range(5):
        assert (await web.subscribe(f"a{number}@example.org")).status_code == 200
    refused = await web.subscribe("a5@example.org")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "600"
    assert await web.subscriber("a5@example.org") is None

    # Another client is not affected.
    asgi = httpx.ASGITransport(app=web.client._transport.app, client=("198.51.100.9", 1))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=asgi, base_url=SITE) as other:
        page = await other.get("/subscribe")
        token = html.unescape(CSRF_FIELD.search(page.text).group(1))  # type: ignore[union-attr]
        response = await other.post(
            "/subscribe", data={"email": "b@example.org", "csrf_token": token}
        )
        assert response.status_code == 200

    web.clock.advance(timedelta(minutes=4))
    assert (await web.subscribe("a5@example.org")).headers["Retry-After"] == "360"
    web.clock.advance(timedelta(minutes=6))
    assert (await web.subscribe("a5@example.org")).status_code == 200
    assert await web.status("a5@example.org") == "pending"


# -- confirmation links ------------------------------------------------------------------


async def test_an_expired_confirmation_link_changes_nothing(web: Web) -> None:
    await web.subscribe("ann@example.org")
    [message] = outbox_messages(web.settings)
    web.clock.advance(timedelta(days=8))  # confirmation links last 7 days
    for method in ("GET", "POST"):
        response = await web.client.request(method, confirm_link(message))
        assert response.status_code == 410
        assert "This link has expired" in response.text
        assert 'href="../subscribe"' in response.text  # relative: on whatever host it is
    assert await web.status("ann@example.org") == "pending"


@pytest.mark.parametrize("purpose", ["confirm", "unsubscribe", "preferences"])
async def test_a_forged_link_changes_nothing(web: Web, purpose: str) -> None:
    subscriber, _ = await service.add(web.store, "ann@example.org", NOW)
    real = web.link(purpose, subscriber)
    other_purpose = "confirm" if purpose != "confirm" else "unsubscribe"
    forged = [
        real[:-3] + ("AAA" if not real.endswith("AAA") else "BBB"),
        f"/{purpose}/{Tokens('another secret', web.clock).sign(purpose, subscriber)}",
        f"/{purpose}/{web.tokens.sign(other_purpose, subscriber)}",
        f"/{purpose}/nonsense",
    ]
    for path in forged:
        for method in ("GET", "POST"):
            response = await web.client.request(
                method, path, data={"List-Unsubscribe": "One-Click"}
            )
            assert response.status_code == 400, (method, path)
            assert "This link is not valid" in response.text
    assert await web.status("ann@example.org") == "pending"


async def test_opening_the_confirmation_link_changes_nothing(web: Web) -> None:
    # Mail scanners open links: only the button (a POST from the page) confirms.
    await web.subscribe("ann@example.org")
    [message] = outbox_messages(web.settings)
    path = confirm_link(message)
    for method in ("GET", "GET", "HEAD"):
        response = await web.client.request(method, path)
        assert response.status_code == 200
    page = await web.client.get(path)
    assert "ann@example.org" in page.text
    assert f'<form class="form" method="post" action="..{path}">' in page.text
    assert ">Confirm my subscription</button>" in page.text
    assert page.headers["referrer-policy"] == "same-origin"
    assert "no-store" in page.headers["cache-control"]
    assert await web.status("ann@example.org") == "pending"
    assert len(outbox_messages(web.settings)) == 1  # no welcome either


@pytest.mark.parametrize(
    ("fields", "headers"),
    [
        ({}, {}),  # a bare POST, as a scanner or a one-click client would send
        ({"csrf_token": "forged.token.value"}, {}),
        ("valid", {"Origin": "https://evil.example"}),
        ("valid", {"Origin": "null", "Sec-Fetch-Site": "cross-site"}),
    ],
    ids=["bare", "forged", "other-origin", "null-origin-cross-site"],
)
async def test_a_confirm_post_not_from_the_page_is_refused(
    web: Web, fields: dict[str, str] | str, headers: dict[str, str]
) -> None:
    await web.subscribe("ann@example.org")
    [message] = outbox_messages(web.settings)
    data = {"csrf_token": await web.csrf()} if fields == "valid" else fields
    response = await web.client.post(confirm_link(message), data=data, headers=headers)
    assert response.status_code == 403
    assert "Press the button again" in response.text
    assert ">Confirm my subscription</button>" in response.text  # a fresh form
    assert await web.status("ann@example.org") == "pending"
    assert len(outbox_messages(web.settings)) == 1


async def test_the_confirm_button_works_with_what_chromium_sends(web: Web) -> None:
    await web.subscribe("ann@example.org")
    [message] = outbox_messages(web.settings)
    response = await web.client.post(
        confirm_link(message),
        data={"csrf_token": await web.csrf()},
        headers=CHROMIUM_FROM_A_NO_REFERRER_PAGE,
    )
    assert response.status_code == 200
    assert await web.status("ann@example.org") == "active"


async def test_a_failed_welcome_still_confirms(settings: Settings) -> None:
    async for web in open_web(settings, OutboxTransport(settings.outbox_dir)):
        await web.subscribe("ann@example.org")
        [message] = outbox_messages(web.settings)
    async for web in open_web(settings, FailingTransport()):
        response = await web.confirm(confirm_link(message))
        assert response.status_code == 200
        assert "You are subscribed" in response.text
        assert await web.status("ann@example.org") == "active"


# -- unsubscribe -------------------------------------------------------------------------


async def active(web: Web, address: str = "ann@example.org", **options: object) -> Subscriber:
    subscriber, _ = await service.add(web.store, address, NOW, confirmed=True, **options)  # type: ignore[arg-type]
    return subscriber


async def test_opening_the_unsubscribe_link_changes_nothing(web: Web) -> None:
    subscriber = await active(web)
    path = web.link("unsubscribe", subscriber)
    response = await web.client.get(path)
    assert response.status_code == 200
    assert "ann@example.org" in response.text
    # The button posts back to the very link, relative: on the host the page came from.
    assert f'<form class="form" method="post" action="..{path}">' in response.text
    assert 'name="List-Unsubscribe" value="One-Click"' in response.text
    assert ">Unsubscribe</button>" in response.text
    assert "Save preferences" in response.text  # the preferences form is there too
    assert response.headers["referrer-policy"] == "same-origin"
    assert "no-store" in response.headers["cache-control"]
    assert await web.status("ann@example.org") == "active"


async def test_one_click_unsubscribes_without_cookies_or_redirect(web: Web) -> None:
    subscriber = await active(web)
    path = web.link("unsubscribe", subscriber)
    # What a mail provider sends (RFC 8058): a bare POST, no cookie, no Origin, no CSRF field.
    web.client.cookies.clear()
    response = await web.client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "You are unsubscribed" in response.text
    after = await web.subscriber("ann@example.org")
    assert after is not None and after.status == "unsubscribed"
    assert after.unsubscribed_at == NOW

    web.clock.advance(timedelta(days=1))
    again = await web.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    kept = await web.subscriber("ann@example.org")
    assert kept is not None and kept.unsubscribed_at == NOW  # the first date stays
    page = await web.client.get(path)
    assert (page.status_code, ">Unsubscribe</button>" in page.text) == (200, False)


async def test_an_erased_subscriber_s_link_still_answers_success(web: Web) -> None:
    subscriber = await active(web)
    await service.forget(web.store, "ann@example.org", NOW)
    response = await web.client.post(
        web.link("unsubscribe", subscriber), data={"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text


async def test_unsubscribe_links_work_for_400_days(web: Web) -> None:
    subscriber = await active(web)
    path = web.link("unsubscribe", subscriber)
    web.clock.advance(timedelta(days=399))
    assert (await web.client.get(path)).status_code == 200
    web.clock.advance(timedelta(days=2))
    for method in ("GET", "POST"):
        response = await web.client.request(method, path, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 410
        assert "This link has expired" in response.text
    assert await web.status("ann@example.org") == "active"


# -- preferences -------------------------------------------------------------------------


async def test_preferences_show_and_change_name_and_categories(web: Web) -> None:
    subscriber = await active(web, name="Ann", categories=["Rivers", "Gone"])
    path = web.link("preferences", subscriber)
    page = await web.client.get(path)
    assert page.status_code == 200
    assert 'value="Ann"' in page.text
    assert re.search(r'value="Rivers"\s*checked', page.text)
    assert re.search(r'value="Gone"\s*checked', page.text)  # no longer offered, still shown
    assert "<legend>Categories</legend>" in page.text

    token = html.unescape(CSRF_FIELD.search(page.text).group(1))  # type: ignore[union-attr]
    saved = await web.client.post(
        path, data={"csrf_token": token, "name": " Ann Lee ", "categories": ["Wildlife"]}
    )
    assert saved.status_code == 200
    assert "Your preferences are saved" in saved.text
    after = await web.subscriber("ann@example.org")
    assert after is not None
    assert (after.name, after.categories, after.status) == ("Ann Lee", ("Wildlife",), "active")


async def test_preferences_refuse_a_category_the_site_does_not_offer(web: Web) -> None:
    subscriber = await active(web, name="Ann", categories=["Rivers", "drought"])
    path = web.link("preferences", subscriber)
    token = await web.csrf(path)
    refused = await web.client.post(
        path, data={"csrf_token": token, "name": "Ann", "categories": ["Rivers", "Made up"]}
    )
    assert refused.status_code == 400
    assert "Please choose among the categories listed." in refused.text
    after = await web.subscriber("ann@example.org")
    assert after is not None and after.categories == ("Rivers", "drought")
    # A category chosen before the site listed its own may be kept, or dropped.
    kept = await web.client.post(
        path, data={"csrf_token": token, "name": "Ann", "categories": ["drought", "wildlife"]}
    )
    assert kept.status_code == 200
    after = await web.subscriber("ann@example.org")
    assert after is not None and after.categories == ("drought", "Wildlife")


async def test_preferences_need_the_form_s_csrf_token(web: Web) -> None:
    subscriber = await active(web, name="Ann", categories=["Rivers"])
    path = web.link("preferences", subscriber)
    response = await web.client.post(path, data={"name": "Mallory", "categories": []})
    assert response.status_code == 403
    after = await web.subscriber("ann@example.org")
    assert after is not None and (after.name, after.categories) == ("Ann", ("Rivers",))


# What Chromium (156, measured) sends when a form on a page served with
# `Referrer-Policy: no-referrer` posts to its own site: Origin "null", no Referer, and the
# fetch metadata saying it is same-origin. Every save of the preferences page was refused so.
CHROMIUM_FROM_A_NO_REFERRER_PAGE = {
    "Origin": "null",
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-User": "?1",
    "Sec-Fetch-Dest": "document",
}
# ... and from a page served with `Referrer-Policy: same-origin` (what they are served with
# now): the real Origin, and the page's full URL, token included, as Referer: to itself only.
CHROMIUM_FROM_A_SAME_ORIGIN_PAGE = {
    "Origin": SITE,
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-User": "?1",
    "Sec-Fetch-Dest": "document",
}


@pytest.mark.parametrize(
    "browser",
    [CHROMIUM_FROM_A_NO_REFERRER_PAGE, CHROMIUM_FROM_A_SAME_ORIGIN_PAGE],
    ids=["no-referrer-page", "same-origin-page"],
)
async def test_preferences_save_twice_with_what_chromium_sends(
    web: Web, browser: dict[str, str]
) -> None:
    subscriber = await active(web, name="Ann", categories=["Rivers"])
    path = web.link("preferences", subscriber)
    page = await web.client.get(path)
    # The token in the URL goes with requests to this site only, never to another one.
    assert page.headers["referrer-policy"] == "same-origin"
    for name in ("Ann Lee", "Ann B. Lee"):
        form = await web.client.get(path)
        action = html.unescape(
            re.search(r'class="form preferences" method="post" action="([^"]+)"', form.text).group(
                1
            )
        )  # type: ignore[union-attr]
        target = httpx.URL(SITE + path).join(action)
        headers = dict(browser)
        if browser["Origin"] != "null":
            headers["Referer"] = str(httpx.URL(SITE + path))
        saved = await web.client.post(
            target,
            data={"csrf_token": await web.csrf(path), "name": name, "categories": ["Wildlife"]},
            headers=headers,
        )
        assert saved.status_code == 200, saved.text
        assert "Your preferences are saved" in saved.text
        after = await web.subscriber("ann@example.org")
        assert after is not None and (after.name, after.categories) == (name, ("Wildlife",))


async def test_saving_preferences_does_not_resubscribe(web: Web) -> None:
    subscriber = await active(web)
    await service.remove(web.store, "ann@example.org", NOW)
    path = web.link("preferences", subscriber)
    token = await web.csrf(path)
    response = await web.client.post(path, data={"csrf_token": token, "name": "Ann"})
    assert response.status_code == 200
    after = await web.subscriber("ann@example.org")
    assert after is not None and (after.name, after.status) == ("Ann", "unsubscribed")
