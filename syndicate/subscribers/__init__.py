"""Subscribers' life cycle: subscribe and confirm (double opt-in), add, import, list,
remove, export and forget.

Every address goes through `normalise_email` first, so the store only ever sees one
spelling of it (lower-case) and its unique constraint means "unique case-insensitively".
Forgetting an address deletes its row and keeps only a SHA-256 of the address in
`suppressions`, so an add or an import cannot bring it back.

Double opt-in: `subscribe` (the web form; `syndicate subscribers add` does the same) adds a
pending subscriber and emails them a signed link, `<site>/confirm/<token>`, valid for 7 days;
`confirm` turns that token into an active subscriber. Nobody receives a digest before they
confirmed, and an address nobody confirms stays pending and is never written to again unless
someone subscribes it again. An address that is already active gets no email, and
`subscribe` returns the same way for it, so the form cannot tell who is subscribed. A bad,
expired or outdated link raises InvalidLink, which the web app shows as a page.

The checks every address, name and category goes through are in checks.py; importing a
CSV file (streamed, written in batches) in importing.py; exporting in exporting.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.digest.build import issue_web_url
from syndicate.digest.issue import OTHER_LANGUAGES
from syndicate.errors import SyndicateError, UsageError
from syndicate.mail.confirm import send_confirmation
from syndicate.mail.transport import Transport
from syndicate.mail.welcome import send_welcome
from syndicate.models import Subscriber
from syndicate.statuses import SubscriberStatus
from syndicate.store import Store
from syndicate.subscribers.checks import (
    EXPORT_COLUMNS,
    IMPORT_COLUMNS,
    NAME_MAX_LENGTH,
    SUPPRESSED,
    InvalidName,
    RejectedAddress,
    clean_name,
    email_hash,
    normalise_categories,
    normalise_email,
)
from syndicate.subscribers.exporting import export, write_export
from syndicate.subscribers.importing import BATCH_SIZE, ImportResult, import_csv
from syndicate.tokens import TokenError, Tokens

__all__ = [
    "BATCH_SIZE",
    "EXPORT_COLUMNS",
    "IMPORT_COLUMNS",
    "NAME_MAX_LENGTH",
    "SUPPRESSED",
    "Confirmed",
    "ImportResult",
    "InvalidLink",
    "InvalidName",
    "RejectedAddress",
    "add",
    "clean_name",
    "confirm",
    "confirm_subscription",
    "email_hash",
    "export",
    "forget",
    "import_csv",
    "list_subscribers",
    "normalise_categories",
    "normalise_email",
    "remove",
    "subscribe",
    "subscriber_for_link",
    "subscriber_to_confirm",
    "unsubscribe_by_id",
    "unsubscribe_by_link",
    "update_preferences",
    "write_export",
]

log = logging.getLogger(__name__)

STATUSES = tuple(status.value for status in SubscriberStatus)
NO_LONGER_VALID = "this link is no longer valid"


class InvalidLink(UsageError):
    """A confirmation link that cannot confirm anyone: forged or damaged, expired (`expired`
    is True: subscribing again sends a new one), or for a subscriber who no longer exists or
    has since unsubscribed or bounced. The message is fit to show on a web page."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        self.expired = expired
        super().__init__(message)


async def add(
    store: Store,
    email: str,
    now: datetime,
    *,
    name: str = "",
    categories: Sequence[str] = (),
    confirmed: bool = False,
    source: str = "cli",
    language: str | None = None,
) -> tuple[Subscriber, bool]:
    """Add a subscriber; return it and whether it was created.

    Without `confirmed` the subscriber is "pending" (double opt-in will confirm it); with
    it, "active" and confirmed now. An address that exists is never added twice: its row
    is returned unchanged, except that adding it with `confirmed` reactivates it when it
    is pending, unsubscribed or bounced (an admin re-adding someone with their consent),
    taking the new name, categories and language when given. A forgotten address is
    refused, and a name that clean_name refuses raises InvalidName. `language` is one of the
    site's (the caller picks it: syndicate.languages.best_match); None: the site's first.
    """
    address = normalise_email(email)
    name = clean_name(name)
    if await store.is_suppressed(email_hash(address)):
        raise RejectedAddress(f"{address}: {SUPPRESSED}")
    wanted = normalise_categories(categories)
    status = SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.PENDING
    created = await store.insert_subscriber(
        {
            "email": address,
            "name": name,
            "status": status,
            "categories": wanted,
            "consent_source": source,
            "consented_at": now,
            "confirmed_at": now if confirmed else None,
            "bounce_count": 0,
            "created_at": now,
            "language": language,
        }
    )
    if created is not None:
        return created, True
    existing = await store.subscriber_by_email(address)
    assert existing is not None  # the insert just hit its unique constraint
    if confirmed and existing.status != SubscriberStatus.ACTIVE:
        changes: dict[str, Any] = {
            "status": SubscriberStatus.ACTIVE,
            "consent_source": source,
            "consented_at": now,
            "confirmed_at": now,
            "unsubscribed_at": None,
            "bounce_count": 0,
        }
        if name:
            changes["name"] = name
        if wanted:
            changes["categories"] = wanted
        if language:
            changes["language"] = language
        existing = await store.update_subscriber(existing.id, changes)
    return existing, False


async def subscribe(
    settings: Settings,
    store: Store,
    transport: Transport,
    tokens: Tokens,
    clock: Clock,
    email: str,
    *,
    name: str = "",
    categories: Sequence[str] = (),
    source: str = "web",
    language: str | None = None,
) -> Subscriber:
    """Someone asks to subscribe `email`: add it as pending and send the confirmation email.

    While the subscriber is pending, each call sends a new confirmation (the first may have
    been lost or expired); an address already active is sent nothing, and an unsubscribed or
    bounced one neither (it keeps its status: see the module docstring). Callers must answer
    the same whatever happened, so the answer does not reveal who is subscribed.

    Raises RejectedAddress (invalid or forgotten address), InvalidName (see clean_name),
    DeliveryError when the email could not be handed over (the subscriber stays pending: try
    again), TemplateProblem.
    """
    subscriber, _ = await add(
        store,
        email,
        clock.now(),
        name=name,
        categories=categories,
        source=source,
        language=language,
    )
    if subscriber.status == SubscriberStatus.PENDING:
        await send_confirmation(settings, subscriber, transport, tokens, clock)
    return subscriber


async def confirm(store: Store, tokens: Tokens, token: str, now: datetime) -> Subscriber:
    """The subscriber a confirmation token names, made active (confirmed at `now`).

    Confirming twice is harmless: an active subscriber is returned unchanged. A token that
    is not valid, has expired, or names a subscriber who is gone, unsubscribed or bounced
    raises InvalidLink and changes nothing: an old link must not resubscribe someone who left.
    """
    subscriber, _ = await _confirm(store, tokens, token, now)
    return subscriber


@dataclass(frozen=True, slots=True)
class Confirmed:
    subscriber: Subscriber
    newly: bool  # False: they had confirmed before (nothing changed, no welcome)
    welcomed: bool  # the welcome email was handed to the transport


async def confirm_subscription(
    settings: Settings,
    store: Store,
    transport: Transport,
    tokens: Tokens,
    clock: Clock,
    token: str,
) -> Confirmed:
    """`confirm`, then the welcome email (templates/email/welcome.*.j2) to whoever was
    pending until now, unless `[digest] welcome = false`.

    The confirmation stands whatever happens to the welcome: it is stored before the email
    is built, and a failure to build or send it is logged (an error naming the subscriber
    and why), not raised. InvalidLink as for `confirm`.
    """
    subscriber, newly = await _confirm(store, tokens, token, clock.now())
    welcomed = False
    if newly and settings.digest.welcome:
        welcomed = await _welcome(settings, store, transport, tokens, clock, subscriber)
    return Confirmed(subscriber, newly, welcomed)


async def _welcome(
    settings: Settings,
    store: Store,
    transport: Transport,
    tokens: Tokens,
    clock: Clock,
    subscriber: Subscriber,
) -> bool:
    try:
        period = await store.latest_sent_period()
        latest = issue_web_url(settings, period) if period else None
        await send_welcome(settings, subscriber, transport, tokens, clock, latest_issue=latest)
    except SyndicateError as error:
        log.error(
            "subscriber %s is confirmed, but the welcome email could not be sent: %s",
            subscriber.id,
            error,
            extra={"subscriber": subscriber.id},
        )
        return False
    except Exception:
        # Not a known failure (a bug, a template error of a kind not foreseen): still no
        # reason to tell someone who just confirmed that it did not work.
        log.exception(
            "subscriber %s is confirmed, but the welcome email failed",
            subscriber.id,
            extra={"subscriber": subscriber.id},
        )
        return False
    return True


async def subscriber_to_confirm(tokens: Tokens, store: Store, token: str) -> Subscriber:
    """Whom a confirmation link is for, pending or already active, without changing
    anything (the page with the button); InvalidLink as `confirm` would raise it."""
    subscriber = await _link_owner(tokens, store, "confirm", token)
    if subscriber is None or subscriber.status not in (
        SubscriberStatus.PENDING,
        SubscriberStatus.ACTIVE,
    ):
        raise InvalidLink(NO_LONGER_VALID)
    return subscriber


async def _confirm(
    store: Store, tokens: Tokens, token: str, now: datetime
) -> tuple[Subscriber, bool]:
    subscriber = await _link_owner(tokens, store, "confirm", token)
    if subscriber is None:
        raise InvalidLink(NO_LONGER_VALID)
    confirmed = await store.confirm_pending_subscriber(subscriber.id, now)
    if confirmed is not None:
        return confirmed, True
    current = await store.subscriber_by_id(subscriber.id)
    if current is not None and current.status == SubscriberStatus.ACTIVE:
        return current, False
    raise InvalidLink(NO_LONGER_VALID)


async def subscriber_for_link(tokens: Tokens, store: Store, purpose: str, token: str) -> Subscriber:
    """The subscriber an unsubscribe or preferences link names; InvalidLink when the token is
    forged, expired or for another purpose, or names a subscriber who was forgotten."""
    subscriber = await _link_owner(tokens, store, purpose, token)
    if subscriber is None:
        raise InvalidLink(NO_LONGER_VALID)
    return subscriber


async def unsubscribe_by_link(
    tokens: Tokens, store: Store, token: str, now: datetime
) -> Subscriber | None:
    """Unsubscribe whoever an unsubscribe link names (see unsubscribe_by_id); None when they
    were forgotten since. InvalidLink when the token is forged, expired or for another
    purpose."""
    subscriber = await _link_owner(tokens, store, "unsubscribe", token)
    if subscriber is None:
        return None
    return await unsubscribe_by_id(store, subscriber.id, now)


async def _link_owner(tokens: Tokens, store: Store, purpose: str, token: str) -> Subscriber | None:
    """The subscriber a signed link is for, None when it is no one's any more: the row is
    gone, or the id now belongs to someone else (tokens.py). Both look the same to callers,
    so a link cannot be used to find out whether an address is subscribed."""
    try:
        claim = tokens.verify(purpose, token.strip())
    except TokenError as error:
        raise InvalidLink(str(error), expired=error.expired) from None
    subscriber = await store.subscriber_by_id(claim.subscriber_id)
    if subscriber is None or not tokens.belongs_to(claim, subscriber):
        return None
    return subscriber


async def unsubscribe_by_id(store: Store, subscriber_id: int, now: datetime) -> Subscriber | None:
    """Unsubscribe the subscriber with this id (a signed link's), whatever their status.

    Idempotent: unsubscribing twice keeps the first date. None when there is no such
    subscriber (forgotten since): they receive nothing either way.
    """
    changed = await store.unsubscribe_subscriber(subscriber_id, now)
    if changed is not None:
        return changed
    return await store.subscriber_by_id(subscriber_id)


async def update_preferences(
    store: Store,
    subscriber_id: int,
    *,
    name: str,
    categories: Sequence[str],
    language: str | None = None,
    other_languages: str | None = None,
) -> Subscriber:
    """Set a subscriber's name, categories (none: every post), language (None: left as it
    is; the caller checks it is one of the site's) and what they get of the posts in other
    languages ("include", "link", "omit"; "": the site's choice; None: left as it is).
    Their status is left alone: saving preferences never resubscribes someone who left.

    Raises InvalidName (see clean_name), InvalidLink when the subscriber no longer exists.
    """
    if other_languages not in (None, "", *OTHER_LANGUAGES):
        raise UsageError(
            f"other languages {other_languages!r}: one of {', '.join(OTHER_LANGUAGES)}"
        )
    updated = await store.update_subscriber_preferences(
        subscriber_id, clean_name(name), normalise_categories(categories), language, other_languages
    )
    if updated is None:
        raise InvalidLink(NO_LONGER_VALID)
    return updated


async def list_subscribers(store: Store, status: str | None = None) -> list[Subscriber]:
    if status is not None and status not in STATUSES:
        raise UsageError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    return await store.list_subscribers(status)


async def remove(store: Store, email: str, now: datetime) -> Subscriber:
    """Unsubscribe: the row stays (with when they left), so they get no more digests and an
    import cannot silently make them pending again. Removing twice keeps the first date."""
    subscriber = await _existing(store, email)
    if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        return subscriber
    return await store.update_subscriber(
        subscriber.id, {"status": SubscriberStatus.UNSUBSCRIBED, "unsubscribed_at": now}
    )


async def forget(store: Store, email: str, now: datetime) -> None:
    """Erase a subscriber's personal data and suppress the address for good.

    The row is deleted; what remains is the SHA-256 of the normalised address, enough to
    refuse it later without storing it.
    """
    subscriber = await _existing(store, email)
    if not await store.forget_subscriber(subscriber.email, email_hash(subscriber.email), now):
        raise UsageError(f"no subscriber {subscriber.email}")


async def _existing(store: Store, email: str) -> Subscriber:
    address = normalise_email(email)
    subscriber = await store.subscriber_by_email(address)
    if subscriber is None:
        raise UsageError(f"no subscriber {address}")
    return subscriber
