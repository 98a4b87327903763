"""The confirmation and welcome emails in the subscriber's language (issue 20): the closest
of the site's languages to theirs, else the site's default, translated by the catalogs of
the config dir's locales/ (here a small Thai one written by each test, not the shipped
catalogs). A string the catalog lacks stays English; an English reader's email is the same
as before languages existed. Messages are built by the real code and parsed back with
`email` (policy.default); the end-to-end tests go through subscribe and confirm on both
databases and the real Maildir outbox.
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po
from click.testing import CliRunner
from outbox import outbox_messages

from syndicate import subscribers as service
from syndicate.cli import cli
from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.mail import OutboxTransport
from syndicate.mail.confirm import ConfirmRenderer, build_confirmation
from syndicate.mail.welcome import WelcomeRenderer, WelcomeUrls, build_welcome, renderer, variables
from syndicate.models import Subscriber
from syndicate.plaintext import wrap
from syndicate.store import Store
from syndicate.tokens import Tokens

GOLDEN = Path(__file__).resolve().parent / "golden"
NOW = datetime(2015, 12, 15, 12, 0, tzinfo=UTC)
SECRET = "languages-secret-" * 4
SITE = "https://news.riverside-commons.example"  # [site] url of the bundled config.toml
TITLE = "Riverside Commons News"
CONFIRM_URL = f"{SITE}/confirm/MQ.Zk1a2b.fixed-token-for-the-golden-file"
LATEST = f"{SITE}/feeds/digest/2015-12.html"

WEB_ASKED = (
    "Someone, hopefully you, asked through the subscription form on %(home)s to subscribe "
    "the address %(email)s to the %(frequency)s email digest of %(site)s."
)
WEB_ASKED_HTML = (
    'Someone, hopefully you, asked through the subscription form on <a href="%(home)s">'
    "%(site)s</a> to subscribe the address <strong>%(email)s</strong> to the %(frequency)s "
    "email digest of %(site)s."
)
WELCOMED = (
    "Thank you for confirming: %(email)s now gets the %(frequency)s email digest of %(site)s."
)
# A few of the emails' words in Thai. "It will carry the posts in: ..." is left out on
# purpose: what the catalog lacks must read in English.
THAI = {
    "Confirm your subscription to %(site)s": "ยืนยันการรับจดหมายข่าวของ %(site)s",
    "Confirm my subscription": "ยืนยันการรับข่าวสาร",
    "Hello %(name)s,": "สวัสดีคุณ %(name)s",
    "Hello,": "สวัสดี",
    "monthly": "รายเดือน",
    "weekly": "รายสัปดาห์",
    WEB_ASKED: (
        "มีผู้ขอผ่านแบบฟอร์มบน %(home)s ให้ส่งจดหมายข่าว%(frequency)sของ %(site)s "
        "ถึงที่อยู่ %(email)s หวังว่าจะเป็นคุณเอง"
    ),
    WEB_ASKED_HTML: (
        'มีผู้ขอผ่านแบบฟอร์มบน <a href="%(home)s">%(site)s</a> ให้ส่งจดหมายข่าว'
        "%(frequency)sของ %(site)s ถึงที่อยู่ <strong>%(email)s</strong> หวังว่าจะเป็นคุณเอง"
    ),
    "Welcome to %(site)s": "ยินดีต้อนรับสู่ %(site)s",
    "Welcome": "ยินดีต้อนรับ",
    WELCOMED: "ขอบคุณที่ยืนยัน: %(email)s จะได้รับจดหมายข่าว%(frequency)sของ %(site)s",
    "Unsubscribe at any time": "ยกเลิกการรับได้ทุกเมื่อ",
    '<a href="%(url)s">Unsubscribe</a> at any time.': ('<a href="%(url)s">ยกเลิกการรับ</a>ได้ทุกเมื่อ'),
}
# Thai has one plural form.
THAI_PLURALS = {
    (
        "To confirm, open this link within %(num)s day:",
        "To confirm, open this link within %(num)s days:",
    ): "เปิดลิงก์นี้ภายใน %(num)s วันเพื่อยืนยัน:",
}


def write_catalog(folder: Path, messages: dict[str, str] | None = None) -> Path:
    """locales/th/LC_MESSAGES/syndicate.po under the config dir `folder`, as pybabel writes it."""
    catalog = Catalog(locale="th", domain="syndicate")
    for msgid, msgstr in (THAI if messages is None else messages).items():
        catalog.add(msgid, msgstr)
    for (singular, plural), msgstr in THAI_PLURALS.items():
        catalog.add((singular, plural), (msgstr,))
    path = folder / "locales" / "th" / "LC_MESSAGES" / "syndicate.po"
    # In place of the repo's Thai catalog, which the project copied.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        write_po(out, catalog)
    return path


def configure(project: Path, languages: str = '["en", "th"]', **replacements: str) -> Settings:
    config = project / "config.toml"
    text = config.read_text().replace(
        '# languages = ["en", "th", "km", "my"]', f"languages = {languages}"
    )
    for old, new in replacements.items():
        text = text.replace(old, new)
    config.write_text(text)
    return load_settings(config)


@pytest.fixture
def settings(project: Path) -> Settings:
    """The bundled config offering English (the default) and Thai, with the Thai catalog."""
    write_catalog(project)
    return configure(project)


def subscriber(language: str | None, name: str = "Ann Lee", **changes: object) -> Subscriber:
    values: dict[str, object] = {
        "id": 7,
        "email": "ann@example.org",
        "name": name,
        "status": "pending",
        "categories": ("News", "Gardens"),
        "consent_source": "web",
        "consented_at": NOW,
        "language": language,
    }
    values.update(changes)
    return Subscriber(**values)  # type: ignore[arg-type]


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None
    assert part.get_content_charset() == "utf-8"
    return str(part.get_content()).replace("\r\n", "\n")


def confirmation(settings: Settings, reader: Subscriber) -> tuple[bytes, EmailMessage]:
    raw = build_confirmation(settings, reader, CONFIRM_URL, clock=FrozenClock(NOW))
    return raw, parse(raw)


def welcome(settings: Settings, reader: Subscriber) -> tuple[bytes, EmailMessage]:
    tokens = Tokens(SECRET, FrozenClock(NOW))
    raw = build_welcome(settings, reader, tokens, clock=FrozenClock(NOW), latest_issue=LATEST)
    return raw, parse(raw)


def unstyled(html: str) -> str:
    """`html` without the style attributes the stylesheet was inlined into."""
    return re.sub(r' style="[^"]*"', "", html)


def subject_lines(raw: bytes) -> bytes:
    """The Subject header as written, its folded lines included."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    start = head.index(b"\r\nSubject:") + 2
    end = start
    while True:
        end = head.find(b"\r\n", end + 2)
        if end == -1 or head[end + 2 : end + 3] not in (b" ", b"\t"):
            return head[start:] if end == -1 else head[start:end]


# --- a Thai reader -----------------------------------------------------------------------------


def test_a_thai_reader_gets_a_thai_confirmation(settings: Settings) -> None:
    raw, message = confirmation(settings, subscriber("th", "สมชาย ใจดี"))
    assert raw.isascii()  # encoded-words and a 7-bit transfer encoding, no 8bit
    # RFC 2047 on the wire, the same Thai text read back.
    assert b"=?utf-8?" in subject_lines(raw)
    assert message["Subject"] == f"ยืนยันการรับจดหมายข่าวของ {TITLE}"
    assert message["To"].addresses[0].display_name == "สมชาย ใจดี"

    text = body(message, "plain")
    home = f"{SITE}/"
    asked = THAI[WEB_ASKED] % {
        "home": home,
        "frequency": "รายเดือน",
        "site": TITLE,
        "email": "ann@example.org",
    }
    assert text.startswith("สวัสดีคุณ สมชาย ใจดี\n\n" + wrap(asked) + "\n\n")
    assert "เปิดลิงก์นี้ภายใน 7 วันเพื่อยืนยัน:" in text
    assert CONFIRM_URL in text
    # Not in the catalog: English, not blank.
    assert "It will carry the posts in: News, Gardens." in text
    assert "If you did not ask for this, ignore this email" in text

    html = unstyled(body(message, "html"))
    assert '<html lang="th">' in html
    assert f"<title>ยืนยันการรับจดหมายข่าวของ {TITLE}</title>" in html
    assert '<p class="greeting">สวัสดีคุณ สมชาย ใจดี</p>' in html
    asked_html = THAI[WEB_ASKED_HTML] % {
        "home": home,
        "frequency": "รายเดือน",
        "site": TITLE,
        "email": "ann@example.org",
    }
    assert asked_html in html  # the link where the translator put it
    assert "ยืนยันการรับข่าวสาร</a>" in html
    assert "Confirm your subscription</h1>" in html  # not in the catalog


def test_a_thai_reader_gets_a_thai_welcome(settings: Settings) -> None:
    raw, message = welcome(settings, subscriber("th", ""))
    assert raw.isascii()
    assert b"=?utf-8?" in subject_lines(raw)
    assert message["Subject"] == f"ยินดีต้อนรับสู่ {TITLE}"

    text = body(message, "plain")
    welcomed = THAI[WELCOMED] % {
        "email": "ann@example.org",
        "frequency": "รายเดือน",
        "site": TITLE,
    }
    assert text.startswith("สวัสดี\n\n" + wrap(welcomed) + "\n\n")
    assert f"ยกเลิกการรับได้ทุกเมื่อ:\n{SITE}/unsubscribe/" in text
    assert f"\n{LATEST}\n" in text

    html = unstyled(body(message, "html"))
    assert '<html lang="th">' in html
    assert "ยินดีต้อนรับ</h1>" in html
    assert f'href="{SITE}/unsubscribe/' in html and "ยกเลิกการรับ</a>ได้ทุกเมื่อ" in html


def test_a_weekly_digest_is_called_weekly_in_thai(project: Path) -> None:
    write_catalog(project)
    weekly = configure(project, **{'period = "month"': 'period = "week"'})
    _, message = confirmation(weekly, subscriber("th"))
    assert "จดหมายข่าวรายสัปดาห์ของ" in body(message, "plain").replace("\n", "")
    _, message = welcome(weekly, subscriber("en"))
    assert "now gets the weekly email" in body(message, "plain")


def test_a_regional_tag_gets_the_site_s_language(settings: Settings) -> None:
    _, message = confirmation(settings, subscriber("th-TH"))
    assert message["Subject"] == f"ยืนยันการรับจดหมายข่าวของ {TITLE}"
    assert '<html lang="th">' in body(message, "html")


# --- English, and languages the site does not offer ------------------------------------------


@pytest.mark.parametrize("language", [None, "en", "en-GB"])
def test_an_english_reader_s_emails_are_unchanged(
    settings: Settings, project: Path, language: str | None
) -> None:
    _, message = confirmation(settings, subscriber(language))
    assert message["Subject"] == f"Confirm your subscription to {TITLE}"
    assert body(message, "plain").encode() == (GOLDEN / "confirm.txt").read_bytes()
    # The same HTML as on a site of one language without catalogs.
    plain_site = load_settings(project / "config.toml").model_copy(
        update={"site": settings.site.model_copy(update={"languages": None})}
    )
    _, before = confirmation(plain_site, subscriber(None))
    assert body(message, "html") == body(before, "html")
    assert '<html lang="en">' in body(message, "html")

    _, message = welcome(settings, subscriber(language, categories=("Volunteering",)))
    assert message["Subject"] == f"Welcome to {TITLE}"
    assert '<html lang="en">' in body(message, "html")
    urls = WelcomeUrls(
        f"{SITE}/",
        f"{SITE}/preferences/MQ.fixed-token-for-the-golden-file",
        f"{SITE}/unsubscribe/MQ.fixed-token-for-the-golden-file",
        LATEST,
    )
    reader = subscriber(language, categories=("Volunteering",))
    rendered = renderer(settings.templates_dir, settings.locales_dir).render(
        variables(settings, reader, urls)
    )
    assert rendered.text.encode() == (GOLDEN / "welcome.txt").read_bytes()


@pytest.mark.parametrize("language", ["fr", "km", "not a tag"])
def test_a_language_the_site_does_not_offer_gets_the_default(
    settings: Settings, project: Path, language: str
) -> None:
    _, message = confirmation(settings, subscriber(language))
    assert message["Subject"] == f"Confirm your subscription to {TITLE}"
    assert '<html lang="en">' in body(message, "html")

    # A site whose default is Thai writes to them in Thai, as to a reader of no language.
    thai_first = configure(project, '["th", "en"]', **{'["en", "th"]': '["th", "en"]'})
    assert thai_first.site.offered_languages == ["th", "en"]
    for reader in (subscriber(language), subscriber(None)):
        _, message = confirmation(thai_first, reader)
        assert message["Subject"] == f"ยืนยันการรับจดหมายข่าวของ {TITLE}"
        assert '<html lang="th">' in body(message, "html")
    _, message = welcome(thai_first, subscriber("en-US"))
    assert message["Subject"] == f"Welcome to {TITLE}"


def test_without_a_catalog_a_thai_reader_reads_english(project: Path) -> None:
    shutil.rmtree(project / "locales")
    bare = configure(project)  # Thai offered, but nobody has translated yet
    _, message = confirmation(bare, subscriber("th"))
    assert message["Subject"] == f"Confirm your subscription to {TITLE}"
    assert "Someone, hopefully you, asked" in body(message, "plain")
    assert '<html lang="th">' in body(message, "html")  # still the reader's language


# --- hostile values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: x@evil.example",
        "Eve\nBcc: x@evil.example\n\n<script>alert(1)</script>",
        "=?utf-8?q?Eve?=\r\n<b>%(site)s</b> & co",
    ],
)
def test_a_hostile_name_stays_one_escaped_line_in_the_thai_greeting(
    settings: Settings, name: str
) -> None:
    shown = " ".join(name.replace("\r", " ").replace("\n", " ").split())
    for build in (confirmation, welcome):
        raw, message = build(settings, subscriber("th", name))
        assert "Bcc" not in message
        assert not any(line.lower().startswith(b"bcc") for line in raw.split(b"\r\n"))
        text = body(message, "plain")
        # One line, and the name as typed: "%(site)s" in it is not filled in.
        assert text.split("\n", 1)[0] == f"สวัสดีคุณ {shown}"
        html = unstyled(body(message, "html"))
        assert "<script>" not in html and "<b>" not in html
        escaped = shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert f'<p class="greeting">สวัสดีคุณ {escaped}</p>' in html


def test_a_translated_subject_stays_one_line(project: Path) -> None:
    """A translator's line break (or worse) in the subject cannot start another header."""
    write_catalog(project, {"Confirm your subscription to %(site)s": "ยืนยัน\nBcc: x@evil.example"})
    raw, message = confirmation(configure(project), subscriber("th"))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert "Bcc" not in message
    assert not any(line.lower().startswith(b"bcc") for line in head.split(b"\r\n"))
    assert message["Subject"] == "ยืนยัน Bcc: x@evil.example"


def test_the_checks_render_each_catalog_s_language(settings: Settings, project: Path) -> None:
    assert ConfirmRenderer(settings.templates_dir, settings.locales_dir).check() == []
    assert WelcomeRenderer(settings.templates_dir, settings.locales_dir).check() == []

    # A translation that breaks its sentence: every Thai email would fail to render.
    write_catalog(
        project / "broken", {"Hello %(name)s,": "สวัสดีคุณ %(nmae)s", "Welcome": "100% ยินดีต้อนรับ"}
    )
    catalogs = project / "broken" / "locales"
    named = "(translated by broken/locales/th/LC_MESSAGES/syndicate.po)"
    template = settings.templates_dir / "email" / "confirm.txt.j2"
    line = 1 + template.read_text().splitlines().index(
        '{{ _("Hello %(name)s,", name=subscriber.name) }}'
    )
    assert ConfirmRenderer(settings.templates_dir, catalogs).check() == [
        f"templates/email/confirm.txt.j2:{line}: 'nmae' {named}"
    ]
    problems = WelcomeRenderer(settings.templates_dir, catalogs).check()
    assert [problem.split(":")[0] for problem in problems] == [
        "templates/email/welcome.txt.j2",  # the greeting
        "templates/email/welcome.html.j2",  # the heading, for the reader with no name
    ]
    assert all(problem.endswith(named) for problem in problems)


def test_syndicate_check_reports_a_broken_translation(project: Path) -> None:
    write_catalog(project, {"Welcome to %(site)s": "ยินดีต้อนรับสู่ %(sit)s"})
    configure(project)
    result = CliRunner().invoke(cli, ["--config", str(project / "config.toml"), "check"])
    assert result.exit_code == 2, result.output
    assert "email/welcome.subject.j2:5: 'sit' (translated by locales/th/" in result.stderr


# --- end to end: subscribe, confirm ----------------------------------------------------------


async def test_subscribing_in_thai_sends_thai_mail(settings: Settings, store: Store) -> None:
    tokens = Tokens(SECRET, FrozenClock(NOW))
    clock = FrozenClock(NOW)
    outbox = OutboxTransport(settings.outbox_dir)
    som = await service.subscribe(
        settings, store, outbox, tokens, clock, "som@example.org", name="สมชาย", language="th"
    )
    ann = await service.subscribe(settings, store, outbox, tokens, clock, "ann@example.org")
    sent = {m["X-Envelope-To"]: m for m in outbox_messages(settings.outbox_dir)}
    assert sent["som@example.org"]["Subject"] == f"ยืนยันการรับจดหมายข่าวของ {TITLE}"
    assert body(sent["som@example.org"], "plain").startswith("สวัสดีคุณ สมชาย\n")
    assert sent["ann@example.org"]["Subject"] == f"Confirm your subscription to {TITLE}"

    for reader in (som, ann):
        confirmed = await service.confirm_subscription(
            settings, store, outbox, tokens, clock, tokens.sign("confirm", reader)
        )
        assert confirmed.welcomed
    subjects = sorted(m["Subject"] for m in outbox_messages(settings.outbox_dir))
    assert subjects == sorted(
        [
            f"ยืนยันการรับจดหมายข่าวของ {TITLE}",
            f"Confirm your subscription to {TITLE}",
            f"ยินดีต้อนรับสู่ {TITLE}",
            f"Welcome to {TITLE}",
        ]
    )
