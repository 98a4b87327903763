"""The welcome email (syndicate.mail.welcome) and when it is sent
(subscribers.confirm_subscription): once, right after a pending subscriber confirms, with the
latest issue already sent, never when `[digest] welcome = false`, and a failure to send it
leaves the confirmation standing. Messages are read back from the real Maildir outbox; the
text part has a golden file (tests/golden/welcome.txt, SYNDICATE_UPDATE_GOLDEN=1 rewrites it).
"""

from __future__ import annotations

import email
import email.policy
import logging
import os
import re
import socket
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from outbox import outbox_messages

from syndicate import subscribers as service
from syndicate.cli import cli
from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.errors import ConfigError, TransientDeliveryError
from syndicate.mail import OutboxTransport
from syndicate.mail.welcome import WelcomeRenderer, WelcomeUrls, build_welcome, renderer, variables
from syndicate.models import Subscriber
from syndicate.store import Store
from syndicate.tokens import Tokens

GOLDEN = Path(__file__).resolve().parent / "golden" / "welcome.txt"
NOW = datetime(2016, 1, 2, 12, 0, tzinfo=UTC)
SECRET = "welcome-secret-" * 4
SITE = "https://news.riverside-commons.example"  # [site] url of the bundled config.toml
LATEST = f"{SITE}/feeds/digest/2015-12.html"


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project / "config.toml")


def subscriber(name: str = "Ann Lee", **changes: object) -> Subscriber:
    values: dict[str, object] = {
        "id": 7,
        "email": "ann@example.org",
        "name": name,
        "status": "active",
        "categories": ("Volunteering",),
        "consent_source": "web",
        "consented_at": NOW,
    }
    values.update(changes)
    return Subscriber(**values)  # type: ignore[arg-type]


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_the_message_has_its_headers_and_the_subscriber_s_links(settings: Settings) -> None:
    tokens = Tokens(SECRET, FrozenClock(NOW))
    raw = build_welcome(settings, subscriber(), tokens, clock=FrozenClock(NOW), latest_issue=LATEST)
    message = parse(raw)
    assert [name for name, _ in message.raw_items()] == [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Auto-Submitted",
        "MIME-Version",
        "Content-Type",
    ]
    assert message["Subject"] == "Welcome to Riverside Commons News"
    assert message["To"].addresses[0].addr_spec == "ann@example.org"
    assert "@news.riverside-commons.example>" in message["Message-ID"]
    for body in (text_of(message), html_of(message)):
        assert LATEST in body
        for purpose in ("preferences", "unsubscribe"):
            found = re.search(re.escape(SITE) + rf"/{purpose}/([A-Za-z0-9._-]+)", body)
            assert found, purpose
            assert tokens.verify(purpose, found.group(1)).subscriber_id == 7
    assert "Volunteering" in text_of(message)


def test_before_the_first_issue_there_is_no_issue_link(settings: Settings) -> None:
    raw = build_welcome(
        settings,
        subscriber(""),
        Tokens(SECRET, FrozenClock(NOW)),
        clock=FrozenClock(NOW),
        latest_issue=None,
    )
    message = parse(raw)
    assert "/feeds/digest/" not in text_of(message) + html_of(message)
    assert text_of(message).startswith("Hello,\r\n")


def test_a_name_is_escaped_in_html_and_kept_in_text(settings: Settings) -> None:
    raw = build_welcome(
        settings,
        subscriber("<b>Ann</b> & co"),
        Tokens(SECRET, FrozenClock(NOW)),
        clock=FrozenClock(NOW),
        latest_issue=None,
    )
    message = parse(raw)
    assert "Hello <b>Ann</b> & co," in text_of(message)
    assert "&lt;b&gt;Ann&lt;/b&gt; &amp; co" in html_of(message)
    assert "<b>Ann</b>" not in html_of(message)


def test_the_shipped_templates_pass_the_check(settings: Settings) -> None:
    assert WelcomeRenderer(settings.templates_dir).check() == []


def test_a_template_mistake_names_file_and_line(project: Path) -> None:
    template = project / "templates" / "email" / "welcome.txt.j2"
    template.write_text(template.read_text().replace("{{ urls.preferences }}", "{{ urls.prefs }}"))
    problems = WelcomeRenderer(project / "templates").check()
    assert problems and all("email/welcome.txt.j2:" in p for p in problems), problems


def test_golden_text_part(settings: Settings) -> None:
    urls = WelcomeUrls(
        f"{SITE}/",
        f"{SITE}/preferences/MQ.fixed-token-for-the-golden-file",
        f"{SITE}/unsubscribe/MQ.fixed-token-for-the-golden-file",
        LATEST,
    )
    text = renderer(settings.templates_dir).render(variables(settings, subscriber(), urls)).text
    data = text.encode()
    if os.environ.get("SYNDICATE_UPDATE_GOLDEN") == "1" or not GOLDEN.exists():
        GOLDEN.write_bytes(data)
        pytest.skip(f"wrote {GOLDEN}; read it, then run again")
    assert data == GOLDEN.read_bytes(), (
        f"text differs from {GOLDEN}; if intended, rerun with SYNDICATE_UPDATE_GOLDEN=1"
    )


def test_welcome_must_be_a_boolean(project: Path) -> None:
    config = project / "config.toml"
    config.write_text(config.read_text().replace("welcome = true", 'welcome = "no"'))
    with pytest.raises(ConfigError, match=r"digest\.welcome"):
        load_settings(config)
    config.write_text(config.read_text().replace('welcome = "no"', "welcome = false"))
    assert load_settings(config).digest.welcome is False


# --- when it is sent ---------------------------------------------------------------------------


class FailingTransport:
    async def send(self, message: bytes, envelope_from: str, envelope_to: str) -> None:
        raise TransientDeliveryError("421 try again later")

    async def close(self) -> None:
        pass


async def pending_link(store: Store, tokens: Tokens, address: str = "ann@example.org") -> str:
    pending, _ = await service.add(store, address, NOW, name="Ann")
    return tokens.sign("confirm", pending)


async def test_confirming_sends_one_welcome_with_the_latest_sent_issue(
    settings: Settings, store: Store
) -> None:
    tokens = Tokens(SECRET, FrozenClock(NOW))
    clock = FrozenClock(NOW)
    transport = OutboxTransport(settings.outbox_dir)
    # Two issues: 2015-12 is being sent, 2016-01 only built (not sent): the welcome links
    # the one its reader can be sure exists.
    for period in ("2015-11", "2015-12", "2016-01"):
        issue, _ = await store.create_issue(period, "s", [], "<p>x</p>", "x", NOW)
        if period != "2016-01":
            await store.snapshot_deliveries(issue.id, NOW)
    token = await pending_link(store, tokens)

    first = await service.confirm_subscription(settings, store, transport, tokens, clock, token)
    assert (first.newly, first.welcomed, first.subscriber.status) == (True, True, "active")
    again = await service.confirm_subscription(settings, store, transport, tokens, clock, token)
    assert (again.newly, again.welcomed) == (False, False)
    [welcome] = outbox_messages(settings.outbox_dir)
    assert welcome["Subject"] == "Welcome to Riverside Commons News"
    assert f"{SITE}/feeds/digest/2015-12.html" in text_of(welcome)
    assert "2016-01" not in text_of(welcome)


async def test_no_welcome_when_it_is_turned_off(project: Path, store: Store) -> None:
    config = project / "config.toml"
    config.write_text(config.read_text().replace("welcome = true", "welcome = false"))
    settings = load_settings(config)
    tokens = Tokens(SECRET, FrozenClock(NOW))
    token = await pending_link(store, tokens)
    confirmed = await service.confirm_subscription(
        settings, store, OutboxTransport(settings.outbox_dir), tokens, FrozenClock(NOW), token
    )
    assert (confirmed.newly, confirmed.welcomed) == (True, False)
    assert confirmed.subscriber.status == "active"
    assert outbox_messages(settings.outbox_dir) == []


async def test_a_failed_welcome_leaves_the_confirmation_standing(
    settings: Settings, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = Tokens(SECRET, FrozenClock(NOW))
    token = await pending_link(store, tokens)
    with caplog.at_level(logging.ERROR, logger="syndicate.subscribers"):
        confirmed = await service.confirm_subscription(
            settings, store, FailingTransport(), tokens, FrozenClock(NOW), token
        )
    assert (confirmed.newly, confirmed.welcomed) == (True, False)
    stored = await store.subscriber_by_email("ann@example.org")
    assert stored is not None and stored.status == "active" and stored.confirmed_at == NOW
    [record] = [r for r in caplog.records if "welcome" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "is confirmed, but the welcome email could not be sent" in record.getMessage()
    assert "421 try again later" in record.getMessage()


def test_syndicate_check_renders_the_welcome_templates(project: Path) -> None:
    template = project / "templates" / "email" / "welcome.html.j2"
    template.write_text(template.read_text().replace("=urls.unsubscribe", "=urls.unsub"))
    result = CliRunner().invoke(cli, ["--config", str(project / "config.toml"), "check"])
    assert result.exit_code == 2, result.output
    assert "email/welcome.html.j2:" in result.output


def test_cli_confirm_says_when_the_welcome_could_not_be_sent(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    config = project / "config.toml"
    run = CliRunner().invoke
    added = run(cli, ["--config", str(config), "subscribers", "add", "ann@example.org"])
    assert added.exit_code == 0, added.output
    [confirmation] = outbox_messages(project / "var" / "outbox")
    link = re.search(re.escape(SITE) + r"/confirm/\S+", text_of(confirmation))
    assert link
    # The relay is down by the time the admin confirms by hand: nothing listens there.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = config.read_text().replace('transport = "outbox"', 'transport = "smtp"')
    text = text.replace('host = "localhost"', 'host = "127.0.0.1"')
    config.write_text(text.replace("port = 587", f"port = {port}").replace('"starttls"', '"none"'))
    result = run(cli, ["--config", str(config), "subscribers", "confirm", link.group(0)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "confirmed ann@example.org: active; the welcome email could not be sent "
        "(the log says why)\n"
    )
    assert "is confirmed, but the welcome email could not be sent" in result.stderr
