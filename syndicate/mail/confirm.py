"""The double opt-in email: "confirm your subscription", one message to one new subscriber.

    await send_confirmation(settings, subscriber, transport, tokens, clock)

It carries a signed link, `<site>/confirm/<token>` (token purpose "confirm", valid for
LIFETIMES["confirm"]); opening it makes the subscriber active (subscribers.confirm).

Templates (admins edit them, like the digest's): email/confirm.subject.j2, confirm.txt.j2 and
confirm.html.j2, styled by email/style.css, which is inlined. They render sandboxed with
StrictUndefined, the HTML ones autoescaped, and a mistake is a TemplateProblem naming
"file:line", as for the digest. They are written in the subscriber's language: the closest
of the site's languages to theirs, else the site's default (digest.build.reader_words, as
their digest is), with the catalogs of Settings.locales_dir.

Unlike the digest this is a one-off, transactional message: its headers are written by
syndicate.mail.headers (the subscriber's name as literal text, never decoded as RFC 2047) and
the whole message is parsed back before it is sent (message.alternative_message: a few
milliseconds, nothing next to a person filling in a form). It has no List-Unsubscribe: there
is no list yet. Auto-Submitted tells vacation responders not to answer it. It is DKIM-signed
when [mail.dkim] is configured.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syndicate.digest.build import reader_words
from syndicate.errors import PermanentDeliveryError
from syndicate.i18n import DEFAULT_LANGUAGE, catalog_file, catalog_languages
from syndicate.mail import headers
from syndicate.mail.dkim import dkim_signer_for
from syndicate.mail.headers import HeaderError
from syndicate.mail.message import alternative_message, site_domain
from syndicate.templating import (
    TemplateProblem,
    default_locales_dir,
    display_path,
    email_environment,
    inline_css,
    render_template,
)
from syndicate.tokens import LIFETIMES

if TYPE_CHECKING:
    from syndicate.clock import Clock
    from syndicate.config import Settings
    from syndicate.i18n import Translator
    from syndicate.mail.transport import Transport
    from syndicate.models import Subscriber
    from syndicate.tokens import Tokens

SUBJECT_TEMPLATE = "email/confirm.subject.j2"
TEXT_TEMPLATE = "email/confirm.txt.j2"
HTML_TEMPLATE = "email/confirm.html.j2"
TEMPLATES = (SUBJECT_TEMPLATE, TEXT_TEMPLATE, HTML_TEMPLATE)

# C0 controls and DEL: CR or LF in a header would start another one ("\r\nBcc: ...").
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class ConfirmSite:
    title: str
    url: str
    description: str
    language: str


@dataclass(frozen=True, slots=True)
class ConfirmSubscriber:
    name: str
    email: str
    categories: tuple[str, ...]
    source: str  # "web" (the form), "cli", "import:<file>": how the address came in


@dataclass(frozen=True, slots=True)
class ConfirmUrls:
    confirm: str
    home: str


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The rendered email: subject (one line), text and HTML (CSS inlined)."""

    subject: str
    text: str
    html: str


async def send_confirmation(
    settings: Settings,
    subscriber: Subscriber,
    transport: Transport,
    tokens: Tokens,
    clock: Clock,
) -> None:
    """Sign a confirm link for `subscriber`, build the email and hand it to `transport`.

    Raises what the transport raises (DeliveryError), TemplateProblem for a template
    mistake, ConfigError for a DKIM key that cannot be used. The subscriber is not changed.
    """
    # <site>/confirm/<token>, without "//" when [site] url ends with "/".
    url = tokens.link(settings.site.url, "confirm", subscriber)
    message = build_confirmation(settings, subscriber, url, clock=clock)
    signer = dkim_signer_for(settings)
    if signer is not None:
        message = signer.sign(message)
    await transport.send(
        message, envelope_from=sender_address(settings), envelope_to=subscriber.email
    )


def sender_address(settings: Settings) -> str:
    """The address part of [digest] from: the envelope sender (where bounces go)."""
    return parseaddr(settings.digest.sender)[1]


def build_confirmation(
    settings: Settings, subscriber: Subscriber, confirm_url: str, *, clock: Clock
) -> bytes:
    """The confirmation message as bytes (CRLF): multipart/alternative, text then HTML.

    PermanentDeliveryError for an address it cannot write (a non-ASCII mailbox name).
    """
    rendered = renderer(settings.templates_dir, settings.locales_dir).render(
        variables(settings, subscriber, confirm_url)
    )
    fields = one_off_fields(settings, subscriber, rendered.subject, "confirm", clock=clock)
    return alternative_message(fields, rendered.text, rendered.html)


def one_off_fields(
    settings: Settings, subscriber: Subscriber, subject: str, kind: str, *, clock: Clock
) -> list[headers.HeaderField]:
    """The headers of a one-off message to `subscriber` (the confirmation, the welcome),
    each written by syndicate.mail.headers. `kind` names it in the Message-ID.

    PermanentDeliveryError for an address it cannot write (a non-ASCII mailbox name).
    """
    now = clock.now()
    if now.tzinfo is None:
        raise ValueError("Date: the clock must give an aware datetime")

    try:
        # The name is public text: control characters become spaces, the rest is literal.
        to = headers.mailbox("To", headers.printable(subscriber.name), subscriber.email)
    except HeaderError as error:
        raise PermanentDeliveryError(str(error)) from None
    fields = [
        headers.configured_mailbox("From", settings.digest.sender),
        to,
        headers.text("Subject", subject),
        headers.fixed("Date", format_datetime(now)),
        headers.fixed("Message-ID", make_msgid(kind, domain=site_domain(settings.site.url))),
        *(
            [headers.configured_mailbox("Reply-To", settings.digest.reply_to)]
            if settings.digest.reply_to
            else []
        ),
        # RFC 3834: no vacation replies or other automatic answers to this.
        headers.fixed("Auto-Submitted", "auto-generated"),
    ]
    return fields


def variables(settings: Settings, subscriber: Subscriber, confirm_url: str) -> dict[str, object]:
    """What the confirm templates see."""
    return {
        **one_off_variables(settings, subscriber),
        "urls": ConfirmUrls(confirm=confirm_url, home=home_url(settings)),
        "expires_days": LIFETIMES["confirm"].days,
    }


def one_off_variables(settings: Settings, subscriber: Subscriber) -> dict[str, object]:
    """What every one-off message's templates see (the confirmation, the welcome): the site,
    the subscriber (the name on one line), the digest's frequency and the time zone, and the
    language they are written in (`language`: the closest the site offers to the
    subscriber's; the frequency comes in it)."""
    site = settings.site
    words = reader_words(settings, subscriber.language)
    return {
        "site": ConfirmSite(site.title, site.url, site.description, site.language),
        "subscriber": ConfirmSubscriber(
            _one_line(subscriber.name),
            subscriber.email,
            subscriber.categories,
            subscriber.consent_source,
        ),
        "frequency": frequency(words, settings.digest.period),
        "timezone": site.timezone,
        "language": words.language,
    }


def frequency(words: Translator, period: str) -> str:
    """How often the digest comes, as its sentences say it ("the monthly email digest"), in
    `words`' language."""
    # Each word written out in a gettext call of its own, so `pybabel extract` finds both.
    if period == "week":
        # Translators: fills %(frequency)s in "the %(frequency)s email digest of %(site)s".
        return words.gettext("weekly")
    # Translators: fills %(frequency)s in "the %(frequency)s email digest of %(site)s".
    return words.gettext("monthly")


def home_url(settings: Settings) -> str:
    """[site] url with one "/" at its end."""
    url = settings.site.url
    return url if url.endswith("/") else f"{url}/"


# --- rendering -------------------------------------------------------------------------------


@functools.cache
def renderer(templates_dir: Path, locales_dir: Path | None = None) -> ConfirmRenderer:
    """One renderer per templates and catalogs folder for the life of the process (Jinja
    reloads a template whose file changed, the stylesheet is read at each render, and
    syndicate.i18n reads a catalog again when its file changes)."""
    return ConfirmRenderer(templates_dir, locales_dir)


class ConfirmRenderer:
    """Renders the confirmation email from `<templates_dir>/email/confirm.*.j2`.

    The welcome email (syndicate/mail/welcome.py) is rendered the same way from its own
    templates and samples: a subclass that sets these four.
    """

    templates = TEMPLATES  # subject, text, HTML

    def __init__(self, templates_dir: Path, locales_dir: Path | None = None) -> None:
        """Templates from `templates_dir`, translated with the catalogs in `locales_dir`
        (None: the `locales` folder beside the templates, as Settings.locales_dir)."""
        self.templates_dir = templates_dir.resolve()
        self.locales_dir = locales_dir or default_locales_dir(self.templates_dir)
        self.html_env = email_environment(
            self.templates_dir, autoescape=True, locales_dir=self.locales_dir
        )
        # Text is not HTML: escaping would show "Fish &amp; Ships" in the text part.
        self.text_env = email_environment(
            self.templates_dir, autoescape=False, locales_dir=self.locales_dir
        )

    def render(self, variables: Mapping[str, object]) -> Confirmation:
        """The three parts; raises TemplateProblem."""
        subject_name, text_name, html_name = self.templates
        subject = render_template(self.text_env, self.templates_dir, subject_name, variables)
        text = render_template(self.text_env, self.templates_dir, text_name, variables)
        html = inline_css(
            self.templates_dir,
            render_template(self.html_env, self.templates_dir, html_name, variables),
        )
        return Confirmation(subject=_one_line(subject), text=_tidy(text), html=html)

    def check(self) -> list[str]:
        """Render the templates with sample data, in English and in each language with a
        catalog: one "file:line: reason" per problem. A translation can break a template
        that is fine in English (a misspelt "%(name)s", a lone "%"), and then every email
        to that language's readers fails, so its problems also name the catalog."""
        problems: list[str] = []
        for language in [DEFAULT_LANGUAGE, *catalog_languages(self.locales_dir)]:
            for sample in self.samples():
                try:
                    self.render({**sample, "language": language})
                except TemplateProblem as problem:
                    if str(problem) in problems:
                        continue  # the template's own mistake, reported in English
                    problems.append(str(problem) + self._in_catalog(language))
        return problems

    def _in_catalog(self, language: str) -> str:
        found = catalog_file(self.locales_dir, language)
        if language == DEFAULT_LANGUAGE or found is None:
            return ""
        return f" (translated by {display_path(str(found), self.templates_dir)})"

    def samples(self) -> list[dict[str, Any]]:
        return _samples()


def _one_line(value: str) -> str:
    # A header: CR or LF would end it or start another; the template's layout (a comment,
    # a trailing newline) must not show either.
    return " ".join(_CONTROL.sub(" ", value).split())


def _tidy(text: str) -> str:
    """Runs of blank lines collapsed to one, none at the start, one newline at the end."""
    text = re.sub(r"\n(?:[ \t]*\n){2,}", "\n\n", text)
    return text.lstrip("\n").rstrip() + "\n"


def _samples() -> list[dict[str, Any]]:
    """Both branches of the templates: a named web subscriber with categories, and an
    anonymous one an admin added."""
    site = ConfirmSite("Example News", "https://news.example", "News from the example", "en")
    urls = ConfirmUrls("https://news.example/confirm/sample-token", "https://news.example/")
    common: dict[str, Any] = {
        "site": site,
        "urls": urls,
        "expires_days": LIFETIMES["confirm"].days,
        "frequency": "monthly",
        "timezone": "UTC",
        "language": "en",
    }
    named = ConfirmSubscriber("Ann", "ann@example.org", ("News", "Projects"), "web")
    anonymous = ConfirmSubscriber("", "bob@example.org", (), "cli")
    return [{**common, "subscriber": named}, {**common, "subscriber": anonymous}]
