"""A test send: one copy of a period's digest to an admin's address, outside the ledger.

    sent = await send_test(settings, store, clock, "2015-12", "editor@example.org",
                           as_email="ann@example.org")

The copy is the one `digest send` would give that subscriber (their categories, language,
choice of other languages' posts, their name in the greeting), or a reader of the site's
default language who chose nothing. It is rendered from the stored issue when the period's
issue is built (what subscribers get), else from the posts as they are now, without storing
anything (as `digest preview` does).

What keeps it a test and not a delivery:
- no ledger row is written or read, so it never counts as sent and can be repeated;
- the subject says "[Test]"; its Message-ID is one of its own (never the
  `<digest-<issue>-<subscriber>@...>` bounce processing matches), and the envelope sender
  is `[digest] from`, not a subscriber's signed return path: a bounce of a test copy counts
  against nobody;
- the unsubscribe and preferences links lead to the site's home page, not to signed links:
  a colleague clicking "Unsubscribe" in a test copy must not unsubscribe the subscriber it
  was personalised as.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import format_datetime, make_msgid, parseaddr

from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.digest.build import (
    copy_renderer,
    issue_content,
    period_of,
    reader_words,
    renderer_for,
    stored_content,
)
from syndicate.digest.context import DigestSubscriber
from syndicate.digest.issue import IssueContent
from syndicate.digest.render import DigestRenderer
from syndicate.errors import UsageError
from syndicate.mail import headers
from syndicate.mail.headers import HeaderError
from syndicate.mail.message import alternative_message, site_domain
from syndicate.mail.transport import open_transport
from syndicate.models import Subscriber
from syndicate.store import Store

SUBJECT_PREFIX = "[Test] "


@dataclass(frozen=True, slots=True)
class SentTest:
    """What was sent: to whom, personalised as whom, in which language, from what."""

    period: str
    to: str
    subject: str
    language: str
    posts: int  # in the copy, not counting other languages' listed by title
    as_email: str | None
    stored: bool  # from the stored issue (else from the posts as they are now)


async def send_test(
    settings: Settings,
    store: Store,
    clock: Clock,
    key: str,
    to: str,
    *,
    as_email: str | None = None,
) -> SentTest:
    """Send one test copy of period `key` to `to` through [mail] transport (see the module
    docstring). UsageError for a subscriber that does not exist or would get no copy, an
    address that cannot be written; what the transport raises when it fails."""
    period = period_of(settings, key)
    person: Subscriber | None = None
    if as_email is not None:
        person = await store.subscriber_by_email(as_email)
        if person is None:
            raise UsageError(f"--as: no subscriber {as_email!r}")
    issue = await store.issue(period.key)
    if issue is not None:
        content = await stored_content(settings, store, issue)
        renderer = copy_renderer(settings, content)
    else:
        content = await issue_content(settings, store, period)
        renderer = renderer_for(settings)
    copy = personal_copy(settings, period.key, content, renderer, person, to)
    html, text = copy.html, copy.text
    subject = SUBJECT_PREFIX + copy.subject
    try:
        message = loose_copy(settings, clock, "test", ("", to), subject, html, text)
    except HeaderError as error:
        raise UsageError(f"--to {to!r}: {error}") from None
    transport = open_transport(settings)
    try:
        await transport.send(message, parseaddr(settings.digest.sender)[1], to)
    finally:
        await transport.close()
    return SentTest(
        period=period.key,
        to=to,
        subject=subject,
        language=copy.language,
        posts=copy.posts,
        as_email=as_email,
        stored=issue is not None,
    )


class NoCopy(UsageError):
    """The reader chosen would get no copy: no posts in their categories or language."""


@dataclass(frozen=True, slots=True)
class PersonalCopy:
    """One reader's copy of an issue, its unsubscribe and preferences links to the home page."""

    subject: str
    html: str
    text: str
    language: str
    posts: int  # in the copy, not counting other languages' listed by title


def personal_copy(
    settings: Settings,
    key: str,
    content: IssueContent,
    renderer: DigestRenderer,
    person: Subscriber | None,
    address: str,
    *,
    language: str | None = None,
) -> PersonalCopy:
    """The copy of period `key` that `person` gets (their categories, language, choice of
    other languages' posts and name), or with no person a reader at `address` who chose
    nothing; `language`, when given, replaces theirs. Links that would act on a
    subscription lead to the site's home page instead. NoCopy when that reader would get
    nothing."""
    words = reader_words(settings, language or (person.language if person else None))
    categories = frozenset(c.casefold() for c in person.categories) if person else frozenset()
    chosen = content.for_reader(categories, words, person.other_languages if person else None)
    if not chosen.posts and not chosen.other_posts:
        if person is not None:
            who = person.email
        else:
            who = f"a reader of {language}" if language else "a reader of the default language"
        raise NoCopy(f"{who} would get no copy of {key}: no posts in their categories or language")
    rendered = renderer.render(chosen)
    home = f"{settings.site.url.rstrip('/')}/"
    if person is not None:
        reader = DigestSubscriber.of(person.name, person.email, words)
    else:
        reader = DigestSubscriber.of("", address, words)
    html, text = rendered.personalise(reader, home, home)
    return PersonalCopy(rendered.subject, html, text, words.language, len(chosen.posts))


def loose_copy(
    settings: Settings,
    clock: Clock,
    kind: str,
    to: tuple[str, str],
    subject: str,
    html: str,
    text: str,
) -> bytes:
    """A copy of an issue sent outside the ledger (a test copy, a proof) to `to` (name,
    address): from `[digest] from`, with a Message-ID of its own ("<...kind...@site>") that
    bounce processing never matches to a subscriber. HeaderError for an address or a
    subject that cannot be written."""
    fields = [
        headers.configured_mailbox("From", settings.digest.sender),
        headers.mailbox("To", *to),
        headers.text("Subject", subject),
        headers.fixed("Date", format_datetime(clock.now())),
        headers.fixed("Message-ID", make_msgid(kind, domain=site_domain(settings.site.url))),
        headers.fixed("Auto-Submitted", "auto-generated"),
    ]
    return alternative_message(fields, text, html)
