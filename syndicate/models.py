"""Plain data passed between the pipeline's stages. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the store knows about polling one source."""

    name: str
    url: str
    permanent_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    last_polled_at: datetime | None = None
    last_success_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    next_poll_at: datetime | None = None
    disabled_reason: str | None = None
    feed_title: str | None = None
    feed_link: str | None = None
    feed_id: str | None = None  # the feed's own id (Atom <id>, JSON Feed feed_url)

    def due(self, now: datetime) -> bool:
        return self.disabled_reason is None and (
            self.next_poll_at is None or self.next_poll_at <= now
        )


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a periodic job, keyed like "digest:2015-12"."""

    key: str
    status: str  # a RunStatus (syndicate.statuses): running | done | failed
    owner: str
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Enclosure:
    url: str
    type: str | None = None
    length: int | None = None


@dataclass(frozen=True, slots=True)
class Post:
    """A normalised, sanitised post, as stored and published.

    HTML fields are sanitised with absolute URLs; datetimes are aware UTC. `id` is None
    until the store has saved the post. Every URL is a public http(s) one
    (syndicate.links), or absent: `url` is "" for a post whose feed gave no link we may
    publish.
    """

    source: str
    guid: str
    url: str  # the post's public link, or "" when it has none
    title: str
    published: datetime
    updated: datetime
    first_seen: datetime
    content_hash: str
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    summary_html: str = ""
    content_html: str = ""
    excerpt: str = ""
    image_url: str | None = None
    # What the feed says of that image: its alt text (None: it gave none) and its natural
    # size in pixels (None unless both are known).
    image_alt: str | None = None
    image_width: int | None = None
    image_height: int | None = None
    enclosure: Enclosure | None = None
    comments_url: str | None = None
    language: str | None = None
    zawgyi: bool = False  # the feed wrote it in Zawgyi; the text here is its Unicode form
    discussion_url: str | None = None
    forum_topic_id: int | None = None
    reply_count: int | None = None
    forum_checked_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class PostKey:
    """A post without its content: enough to decide which documents hold it and whether
    they changed, cheap to load for every post at once."""

    id: int
    source: str
    categories: tuple[str, ...]
    published: datetime
    updated: datetime
    content_hash: str
    discussion_url: str | None
    reply_count: int | None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class DigestIssue:
    """A built digest: one per period, holding what every delivery of it shares."""

    id: int
    period: str
    subject: str
    post_ids: tuple[int, ...]
    html: str
    text: str
    created_at: datetime
    snapshot_at: datetime | None = None  # when its recipients went into the ledger
    # What it is made of, as JSON (syndicate.digest.issue.IssueContent); None for an issue
    # stored before revision 0007.
    content: dict[str, Any] | None = None
    # Proof and approval (syndicate/digest/review.py): see syndicate/store/tables.py.
    version: int = 1
    fingerprint: str | None = None
    awaiting_review: bool = False
    proof_version: int | None = None
    proof_claimed_at: datetime | None = None
    proof_sent_at: datetime | None = None
    review_deadline: datetime | None = None
    approved_at: datetime | None = None
    approved_by: str | None = None


@dataclass(frozen=True, slots=True)
class IssueSummary:
    """A built issue as the list of past issues shows it."""

    period: str  # "2015-12" or "2015-W49"
    subject: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    email: str  # normalised, lower-case
    name: str
    status: str  # a SubscriberStatus (syndicate.statuses)
    categories: tuple[str, ...]
    consent_source: str
    consented_at: datetime
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    bounce_count: int = 0
    # When the row was added; None only for a Subscriber that was never stored.
    created_at: datetime | None = None
    language: str | None = None  # a [site] languages code; None: the site's first
    # "include", "link" or "omit" the posts in other languages; None: [digest] other_languages
    other_languages: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    """What sending one message needs to know of its subscriber (a claim loads only this)."""

    id: int
    email: str
    name: str
    status: str
    categories: tuple[str, ...]
    language: str | None = None  # their language tag; None: the site's default
    other_languages: str | None = None  # their choice; None: [digest] other_languages


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A ledger row this process now owns ("sending"), with the subscriber to send to."""

    id: int
    attempts: int  # including this one
    subscriber: Recipient


@dataclass(frozen=True, slots=True)
class BounceEvent:
    """What a returning mail says happened to one subscriber's mail (bounce_events)."""

    subscriber_id: int
    issue_id: int | None  # the issue whose copy bounced, when the mail says
    kind: str  # a BounceKind
    status_code: str  # "5.1.1", "" when the report gives none
    diagnostic: str  # the server's words, one line
    received_at: datetime


@dataclass(frozen=True, slots=True)
class InboundMail:
    """One mail read from the bounce intake, and what became of it (inbound_mail)."""

    sha256: str  # of its bytes: the same mail read twice is processed once
    origin: str  # "imap" or "file"
    kind: str  # what it was (syndicate.bounces.reports.ReportKind)
    outcome: str  # an InboundOutcome
    detail: str  # one line: what was done, or why not
    received_at: datetime


@dataclass(frozen=True, slots=True)
class BouncePolicy:
    """When reported bounces make a subscriber "bounced" ([bounces] in the config)."""

    hard_limit: int
    soft_limit: int
    soft_window: timedelta


@dataclass(frozen=True, slots=True)
class RecordedMail:
    """What storing one inbound mail did."""

    duplicate: bool  # stored before (read twice): nothing was done again
    status_before: str | None = None  # the subscriber's status, when an event was stored
    status_after: str | None = None
