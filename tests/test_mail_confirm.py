"""Double opt-in: the confirmation email (syndicate.mail.confirm), subscribe and confirm
(syndicate.subscribers), and `syndicate subscribers add/confirm`.

Messages are parsed back with `email` (policy.default) from the real Maildir outbox. The
shipped templates are what is rendered, and the text part has a golden file
(tests/golden/confirm.txt): set SYNDICATE_UPDATE_GOLDEN=1 to rewrite it after a deliberate
change, and read the diff.
"""

from __future__ import annotations

import base64
import email
import email.policy
import mailbox
import os
import re
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import click
import dkim
import pytest
from click.testing import CliRunner
from outbox import outbox_messages as read_outbox

from syndicate import subscribers as service
from syndicate.cli import cli
from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.errors import PermanentDeliveryError, TransientDeliveryError
from syndicate.mail import OutboxTransport
from syndicate.mail.confirm import ConfirmRenderer, build_confirmation, send_confirmation
from syndicate.models import Subscriber
from syndicate.store import Store
from syndicate.templating import TemplateProblem
from syndicate.tokens import TokenError, Tokens

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
NOW = datetime(2015, 12, 15, 12, 0, tzinfo=UTC)
SECRET = "test-secret-" * 4
SITE = "https://news.riverside-commons.example"  # [site] url of the bundled config.toml
SENDER = "newsletter@riverside-commons.example"  # [digest] from of the bundled config.toml
URL = f"{SITE}/confirm/MQ.Zk1a2b.fixed-token-for-the-golden-file"
LINK = re.compile(re.escape(SITE) + r"/confirm/([A-Za-z0-9._-]+)")


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project / "config.toml")


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(SECRET, FrozenClock(NOW))


def subscriber(name: str = "Ann Lee", **changes: object) -> Subscriber:
    values: dict[str, object] = {
        "id": 7,
        "email": "ann@example.org",
        "name": name,
        "status": "pending",
        "categories": ("News", "Gardens"),
        "consent_source": "web",
        "consented_at": NOW,
    }
    values.update(changes)
    return Subscriber(**values)  # type: ignore[arg-type]


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> list[tuple[str, str]]:
    return [
        (part.get_content_type(), part.get_content().replace("\r\n", "\n"))
        for part in message.iter_parts()
    ]


def stored(folder: Path) -> list[bytes]:
    box = mailbox.Maildir(folder, factory=None, create=True)
    return [box.get_bytes(key) for key in sorted(box.keys())]


def outbox_messages(settings: Settings) -> list[EmailMessage]:
    return read_outbox(settings.outbox_dir)


# --- the message -------------------------------------------------------------------------------


async def test_the_message_has_its_headers_and_the_link_in_both_parts(
    settings: Settings, tokens: Tokens, tmp_path: Path
) -> None:
    outbox = OutboxTransport(tmp_path / "outbox")
    ann = subscriber()
    await send_confirmation(settings, ann, outbox, tokens, FrozenClock(NOW))

    box = mailbox.Maildir(tmp_path / "outbox", factory=None)
    [key] = box.keys()
    raw = box.get_bytes(key)
    message = parse(raw)

    # The envelope: to the subscriber, from the address of [digest] from.
    assert message["X-Envelope-To"] == "ann@example.org"
    assert message["Return-Path"] == f"<{SENDER}>"
    assert message["From"] == f"Riverside Commons <{SENDER}>"
    [to] = message["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Ann Lee", "ann@example.org")
    assert message["Subject"] == "Confirm your subscription to Riverside Commons News"
    assert message["Date"].datetime == NOW
    assert re.fullmatch(r"<[^<>@\s]+@news\.riverside-commons\.example>", message["Message-ID"])
    assert message["Auto-Submitted"] == "auto-generated"
    # Transactional: no list to leave yet.
    assert "List-Unsubscribe" not in message and "List-Id" not in message
    names = [name.lower() for name in message]
    assert len(names) == len(set(names))
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF throughout

    assert message.get_content_type() == "multipart/alternative"
    [(text_type, text), (html_type, html)] = parts(message)
    assert (text_type, html_type) == ("text/plain", "text/html")  # the last is preferred
    assert all("MIME-Version" not in part for part in message.iter_parts())
    [in_text] = LINK.findall(text)
    assert set(LINK.findall(html)) == {in_text}
    assert tokens.verify("confirm", in_text).subscriber_id == ann.id
    with pytest.raises(TokenError):
        tokens.verify("unsubscribe", in_text)  # a confirm token is only for confirming

    # Who asked, for what, and that doing nothing is enough.
    assert "ann@example.org" in text and "Riverside Commons News" in text
    assert "News, Gardens" in text
    assert "within 7 days" in text
    assert "ignore this email" in text and "not subscribed" in text
    assert 'style="' in html  # the stylesheet was inlined
    assert "ann@example.org" in html and "ignore this email" in html


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: x@evil.example",
        "Eve\nBcc: x@evil.example\n\n<p>body</p>",
        "Ëve\rBcc: x@evil.example",
        "=?utf-8?q?Eve?=\r\nBcc: x@evil.example",
    ],
)
def test_a_hostile_name_adds_no_header(settings: Settings, name: str) -> None:
    raw = build_confirmation(settings, subscriber(name), URL, clock=FrozenClock(NOW))
    message = parse(raw)
    assert "Bcc" not in message
    assert not any(line.lower().startswith(b"bcc") for line in raw.split(b"\r\n"))
    [to] = message["To"].addresses
    assert to.addr_spec == "ann@example.org"
    assert "Bcc: x@evil.example" in to.display_name  # shown, harmlessly, on one line
    [(_, text), _] = parts(message)
    assert "\nBcc:" not in text  # one line in the greeting too


def test_an_html_name_is_escaped_in_html_and_kept_in_text(settings: Settings) -> None:
    name = 'Eve "<script>alert(1)</script>'
    message = parse(build_confirmation(settings, subscriber(name), URL, clock=FrozenClock(NOW)))
    [(_, text), (_, html)] = parts(message)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f"Hello {name}," in text  # text is not HTML: nothing to escape
    assert message["To"].addresses[0].display_name == name


def test_a_non_ascii_name_and_subject_are_encoded(settings: Settings) -> None:
    (settings.templates_dir / "email" / "confirm.subject.j2").write_text(
        "Bestätigen Sie Ihr Abonnement\n  bei {{ site.title }}\n", encoding="utf-8"
    )
    raw = build_confirmation(settings, subscriber("Zoë Ünï"), URL, clock=FrozenClock(NOW))
    assert raw.isascii()  # encoded-words and quoted-printable, no 8bit
    message = parse(raw)
    assert message["To"].addresses[0].display_name == "Zoë Ünï"
    # One line, however the template is laid out.
    assert message["Subject"] == "Bestätigen Sie Ihr Abonnement bei Riverside Commons News"
    assert "Hello Zoë Ünï," in parts(message)[0][1]


def test_an_address_it_cannot_write_is_a_permanent_failure(settings: Settings) -> None:
    with pytest.raises(PermanentDeliveryError, match="SMTPUTF8"):
        build_confirmation(
            settings, subscriber(email="zoë@example.org"), URL, clock=FrozenClock(NOW)
        )
    # A non-ASCII domain is fine: it is written IDNA-encoded.
    raw = build_confirmation(
        settings, subscriber(email="zoe@bücher.example"), URL, clock=FrozenClock(NOW)
    )
    assert parse(raw)["To"].addresses[0].addr_spec == "zoe@xn--bcher-kva.example"


async def test_a_site_url_with_a_slash_gives_no_double_slash(
    settings: Settings, tokens: Tokens, tmp_path: Path
) -> None:
    slashed = settings.model_copy(
        update={"site": settings.site.model_copy(update={"url": f"{SITE}/"})}
    )
    outbox = OutboxTransport(tmp_path / "outbox")
    await send_confirmation(slashed, subscriber(), outbox, tokens, FrozenClock(NOW))
    [raw] = (message.decode() for message in stored(tmp_path / "outbox"))
    assert f"{SITE}/confirm/" in raw and "example//confirm" not in raw


@pytest.fixture
def dkim_key(tmp_path: Path) -> tuple[Path, bytes]:
    """A 2048-bit key file made with openssl, and its public half (DER)."""
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    der = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key, der


async def test_it_is_dkim_signed_when_configured(
    project: Path,
    tokens: Tokens,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dkim_key: tuple[Path, bytes],
) -> None:
    key, der = dkim_key
    config = project / "config.toml"
    config.write_text(
        config.read_text()
        + '\n[mail.dkim]\ndomain = "riverside-commons.example"\nselector = "s1"\n'
        + 'private_key_env = "CONFIRM_TEST_DKIM"\n'
    )
    monkeypatch.setenv("CONFIRM_TEST_DKIM", str(key))
    outbox = OutboxTransport(tmp_path / "outbox")
    await send_confirmation(load_settings(config), subscriber(), outbox, tokens, FrozenClock(NOW))
    [raw] = stored(tmp_path / "outbox")
    assert b"\r\nDKIM-Signature: " in raw
    # Stand-in for DNS, which cannot run here: the TXT record of s1._domainkey.
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)


# --- subscribe and confirm, on both databases ----------------------------------------------------


async def test_subscribe_sends_while_pending_and_never_to_an_active_address(
    store: Store, settings: Settings, tokens: Tokens, tmp_path: Path
) -> None:
    outbox = OutboxTransport(tmp_path / "outbox")
    clock = FrozenClock(NOW)

    ann = await service.subscribe(
        settings, store, outbox, tokens, clock, "Ann@Example.org", name="Ann", categories=["News"]
    )
    assert (ann.email, ann.status, ann.consent_source) == ("ann@example.org", "pending", "web")
    assert len(stored(tmp_path / "outbox")) == 1
    # Asking again while pending sends a fresh link (the first may be lost or expired).
    again = await service.subscribe(settings, store, outbox, tokens, clock, "ann@example.org")
    assert again == ann
    assert len(stored(tmp_path / "outbox")) == 2

    bob, _ = await service.add(store, "bob@example.org", NOW, confirmed=True)
    same = await service.subscribe(settings, store, outbox, tokens, clock, "bob@example.org")
    assert same == bob  # returns as for anyone else, so the form reveals nothing
    await service.remove(store, "ann@example.org", NOW)
    await service.subscribe(settings, store, outbox, tokens, clock, "ann@example.org")
    assert len(stored(tmp_path / "outbox")) == 2  # nothing to active or unsubscribed addresses


class FailingTransport:
    async def send(self, message: bytes, envelope_from: str, envelope_to: str) -> None:
        raise TransientDeliveryError("451 try again later", code=451)

    async def close(self) -> None:
        pass


async def test_a_failed_send_leaves_the_subscriber_pending(
    store: Store, settings: Settings, tokens: Tokens
) -> None:
    with pytest.raises(TransientDeliveryError):
        await service.subscribe(
            settings, store, FailingTransport(), tokens, FrozenClock(NOW), "ann@example.org"
        )
    ann = await store.subscriber_by_email("ann@example.org")
    assert ann is not None and ann.status == "pending"


async def test_confirm_activates_once_and_twice_is_fine(store: Store, tokens: Tokens) -> None:
    ann, _ = await service.add(store, "ann@example.org", NOW, source="web")
    token = tokens.sign("confirm", ann)
    later = NOW + timedelta(hours=2)

    confirmed = await service.confirm(store, tokens, token, later)
    assert (confirmed.id, confirmed.status, confirmed.confirmed_at) == (ann.id, "active", later)
    again = await service.confirm(store, tokens, token, later + timedelta(days=1))
    assert again == confirmed  # unchanged: still confirmed at the first click
    assert await store.subscriber_by_email("ann@example.org") == confirmed


async def test_forged_and_unknown_links_change_nothing(store: Store, tokens: Tokens) -> None:
    ann, _ = await service.add(store, "ann@example.org", NOW)
    for token in (
        Tokens("another secret" * 3, FrozenClock(NOW)).sign("confirm", ann),  # forged
        tokens.sign("unsubscribe", ann),  # another purpose
        tokens.sign("confirm", ann)[:-3] + "xyz",  # damaged
        "",
    ):
        with pytest.raises(service.InvalidLink, match="not valid") as caught:
            await service.confirm(store, tokens, token, NOW)
        assert not caught.value.expired
    with pytest.raises(service.InvalidLink, match="no longer valid"):
        await service.confirm(
            store, tokens, tokens.sign("confirm", replace(ann, id=ann.id + 1000)), NOW
        )
    assert await store.subscriber_by_email("ann@example.org") == ann


async def test_an_expired_link_changes_nothing(store: Store) -> None:
    clock = FrozenClock(NOW)
    tokens = Tokens(SECRET, clock)
    ann, _ = await service.add(store, "ann@example.org", NOW)
    token = tokens.sign("confirm", ann)
    clock.advance(timedelta(days=8))  # confirmation links last 7 days
    with pytest.raises(service.InvalidLink, match="expired") as caught:
        await service.confirm(store, tokens, token, NOW + timedelta(days=8))
    assert caught.value.expired
    assert await store.subscriber_by_email("ann@example.org") == ann


async def test_an_old_link_does_not_resubscribe_someone_who_left(
    store: Store, tokens: Tokens
) -> None:
    ann, _ = await service.add(store, "ann@example.org", NOW)
    token = tokens.sign("confirm", ann)
    left = await service.remove(store, "ann@example.org", NOW + timedelta(hours=1))
    with pytest.raises(service.InvalidLink, match="no longer valid"):
        await service.confirm(store, tokens, token, NOW + timedelta(hours=2))
    assert await store.subscriber_by_email("ann@example.org") == left


# --- the CLI, on the bundled config ----------------------------------------------------------


def run(project: Path, *args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, ["--config", str(project / "config.toml"), "subscribers", *args])


def test_cli_add_sends_one_confirmation_and_confirm_takes_its_url(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    settings = load_settings(project / "config.toml")
    result = run(project, "add", "Ann@Example.org", "--name", "Ann")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "added ann@example.org: pending; confirmation sent to ann@example.org (outbox var/outbox)\n"
    )
    [message] = outbox_messages(settings)
    assert message["X-Envelope-To"] == "ann@example.org"
    [url] = {match.group(0) for match in LINK.finditer(parts(message)[0][1])}

    result = run(project, "confirm", url)
    assert result.exit_code == 0, result.output
    assert result.stdout == "confirmed ann@example.org: active; welcome sent (outbox var/outbox)\n"
    token = url.rsplit("/", 1)[1]
    assert (
        run(project, "confirm", token).stdout == "ann@example.org was already confirmed: active\n"
    )
    assert "ann@example.org" in run(project, "list", "--status", "active").stdout

    # Active now: adding again sends nothing; --confirmed never sends.
    result = run(project, "add", "ann@example.org")
    assert result.stdout == "ann@example.org already subscribed: active\n"
    assert run(project, "add", "bob@example.org", "--confirmed").stdout == (
        "added bob@example.org: active\n"
    )
    subjects = [m["Subject"] for m in outbox_messages(settings)]
    assert sorted(subjects) == [
        "Confirm your subscription to Riverside Commons News",
        "Welcome to Riverside Commons News",
    ]


def test_cli_confirm_refuses_a_bad_link_in_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    result = run(project, "confirm", f"{SITE}/confirm/not-a-token")
    assert result.exit_code == 2
    assert result.stderr == "error: this link is not valid\n"


def test_cli_add_reports_a_delivery_failure_and_stays_pending(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    # An outbox path that is a file: writing the message fails like a full disk would.
    config = project / "config.toml"
    config.write_text(config.read_text().replace('outbox = "var/outbox"', 'outbox = "blocked"'))
    (project / "blocked").write_text("not a folder")
    result = run(project, "add", "ann@example.org")
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: confirmation not sent to ann@example.org: outbox ")
    assert line.endswith("(added, still pending; add it again to retry)")
    assert "ann@example.org" in run(project, "list", "--status", "pending").stdout


def test_cli_smtp_says_where_it_sent(project: Path) -> None:
    from syndicate.cli.subscribers import _via

    config = project / "config.toml"
    config.write_text(config.read_text().replace('transport = "outbox"', 'transport = "smtp"'))
    assert _via(load_settings(config)) == "via smtp localhost:587"


def test_cli_confirm_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["subscribers", "confirm", "--help"])
    assert result.exit_code == 0
    assert "syndicate subscribers confirm https://" in result.stdout.split("Example:")[1]


# --- templates: check and golden -----------------------------------------------------------------


def test_the_shipped_templates_pass_the_check() -> None:
    assert ConfirmRenderer(REPO / "templates").check() == []


def test_a_misspelt_field_names_what_the_template_sees(project: Path) -> None:
    path = project / "templates" / "email" / "confirm.txt.j2"
    path.write_text(path.read_text().replace("name=subscriber.name)", "name=subscriber.nmae)", 1))
    line = 1 + next(n for n, text in enumerate(path.read_text().splitlines()) if "nmae" in text)
    problem = (
        f'templates/email/confirm.txt.j2:{line}: a subscriber has no field "nmae"; did you mean '
        '"name"? (a subscriber has name, email, categories, source)'
    )
    assert ConfirmRenderer(project / "templates").check() == [problem]
    result = CliRunner().invoke(cli, ["--config", str(project / "config.toml"), "check"])
    assert (result.exit_code, result.stderr) == (2, f"error: {problem}\n")


def test_a_template_mistake_names_file_and_line(project: Path) -> None:
    templates = project / "templates"
    path = templates / "email" / "confirm.txt.j2"
    path.write_text(path.read_text().replace("num=expires_days|", "num=expires_dayz|"))
    renderer = ConfirmRenderer(templates)
    [problem] = renderer.check()
    line = (
        path.read_text()
        .splitlines()
        .index(next(text for text in path.read_text().splitlines() if "expires_dayz" in text))
    )
    assert problem == f"templates/email/confirm.txt.j2:{line + 1}: 'expires_dayz' is undefined"
    with pytest.raises(TemplateProblem):
        renderer.render({})

    # `syndicate check` reports it too.
    result = CliRunner().invoke(cli, ["--config", str(project / "config.toml"), "check"])
    assert result.exit_code == 2
    assert result.stderr == f"error: {problem}\n"


def test_golden_text_part(settings: Settings) -> None:
    raw = build_confirmation(settings, subscriber(), URL, clock=FrozenClock(NOW))
    [(_, text), _] = parts(parse(raw))
    data = text.encode("utf-8")
    golden = GOLDEN / "confirm.txt"
    if os.environ.get("SYNDICATE_UPDATE_GOLDEN") == "1" or not golden.exists():
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(data)
        pytest.skip(f"wrote {golden}; read it, then run again")
    assert data == golden.read_bytes(), (
        f"text differs from {golden}; if intended, rerun with SYNDICATE_UPDATE_GOLDEN=1"
    )
