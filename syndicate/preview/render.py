"""The upcoming issue as one reader would get it, for the live preview.

    preview = await render_preview(settings, store, clock, "2015-12", Reader("ann@example.org"))
    preview.html, preview.text, preview.message     # None when it could not be rendered
    preview.problems                                # what stopped it, or is worth a look

The copy is rendered as the issue would be built now: the period's posts as they are, the
intro file (digest/intro/<period>.md) and the templates as they are on disk, whatever was
stored before (an issue awaiting review is rebuilt from the same things). The reader is a
subscriber (their categories, name, language and choice of other languages' posts) or,
with no address, a reader who chose no categories, in `language` or the site's first.
Like a test copy, its unsubscribe and preferences links lead to the home page.

Nothing here raises for what an admin is editing: a template error becomes a "template"
problem at its file:line, an unknown subscriber or a reader who would get no copy a
"reader" problem; the page shows them where the issue would be.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.digest import period as periods
from syndicate.digest.build import issue_content, period_of, renderer_for
from syndicate.digest.context import DigestPeriod
from syndicate.jobs import pending_digest
from syndicate.mail.message import MessageFactory, message_id_for, site_domain
from syndicate.mail.testsend import NoCopy, personal_copy
from syndicate.models import Recipient, Subscriber
from syndicate.preview.problem import Problem
from syndicate.preview.problems import clipping, images_without_alt, template_problem
from syndicate.store import Store


@dataclass(frozen=True, slots=True)
class Reader:
    """Whose copy to show: a subscriber's address, and/or a language the site offers."""

    email: str | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Preview:
    period: str
    reader: str  # who the copy is for, as the page says it
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    message: bytes | None = None  # as a transport would send it (8bit bodies)
    posts: int = 0
    problems: list[Problem] = field(default_factory=list)


async def upcoming_period(settings: Settings, store: Store, now: datetime) -> DigestPeriod:
    """The issue the preview shows by default: the one due and not yet sent (built, maybe
    awaiting review) if there is one, else the period in progress, sent at its end."""
    pending = await pending_digest(settings, store, now)
    if pending is not None:
        return pending.period
    return periods.containing(now, settings.digest.period, settings.site.tz)


async def render_preview(
    settings: Settings, store: Store, clock: Clock, key: str, reader: Reader
) -> Preview:
    """Period `key`'s copy for `reader` with the problems seen in rendering it: template
    errors, the reader's, the images without alt text and the message's size. (Links and
    the spam score take seconds: the page asks for them apart, see server.py.)"""
    period = period_of(settings, key)
    person: Subscriber | None = None
    problems: list[Problem] = []
    if reader.email:
        person = await store.subscriber_by_email(reader.email)
        if person is None:
            problems.append(
                Problem(
                    "reader",
                    reader.email,
                    "No subscriber has this address; showing a reader who chose nothing.",
                    "warning",
                )
            )
    address = person.email if person else f"reader@{site_domain(settings.site.url)}"
    who = _who(person, reader.language)
    content = await issue_content(settings, store, period)
    if not content.post_ids:
        empty = Problem(
            "reader",
            period.key,
            f"No posts in {period.key} yet, so there is no issue to show "
            "(--month chooses another period).",
            "warning",
        )
        return Preview(period.key, who, problems=[*problems, empty])
    try:
        copy = personal_copy(
            settings,
            period.key,
            content,
            renderer_for(settings),
            person,
            address,
            language=reader.language,
        )
    except NoCopy as error:
        return Preview(period.key, who, problems=[*problems, Problem("reader", who, str(error))])
    except Exception as error:  # a template's: shown at its file:line, the server keeps going
        return Preview(
            period.key, who, problems=[*problems, template_problem(error, settings.templates_dir)]
        )
    message = _as_sent(settings, clock, copy.subject, copy.html, copy.text, person, address)
    problems += images_without_alt(copy.html)
    if (size := clipping(message)) is not None:
        problems.append(size)
    return Preview(
        period.key,
        who,
        subject=copy.subject,
        html=copy.html,
        text=copy.text,
        message=message,
        posts=copy.posts,
        problems=problems,
    )


def _who(person: Subscriber | None, language: str | None) -> str:
    if person is None:
        return f"a reader of {language}" if language else "a reader of the default language"
    name = f"{person.name} <{person.email}>" if person.name else person.email
    return f"{name}, in {language}" if language else name


def _as_sent(
    settings: Settings,
    clock: Clock,
    subject: str,
    html: str,
    text: str,
    person: Subscriber | None,
    address: str,
) -> bytes:
    """The message with the headers a subscriber's copy has (List-Unsubscribe and all), for
    its size and its spam score. 8bit bodies, as sent to a server that offers 8BITMIME (as
    Gmail's and most do): quoted-printable would make the HTML a third bigger."""
    factory = MessageFactory.for_subject(settings, subject, clock=clock, eight_bit=True)
    recipient = Recipient(
        id=person.id if person else 0,
        email=address,
        name=person.name if person else "",
        status="active",
        categories=(),
    )
    home = f"{settings.site.url.rstrip('/')}/"
    return factory.build(
        recipient, html, text, home, message_id_for(0, recipient.id, factory.domain)
    )
