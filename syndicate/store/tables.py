"""The schema as SQLAlchemy Core tables. Migrations in migrations/versions/ create it;
tests check that the two agree, so change both together."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from syndicate.store.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Fetch state of each configured source; the config says what to poll, this says how it went.
sources = Table(
    "sources",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("permanent_url", Text),  # where a 301/308 said the feed now lives
    Column("etag", Text),
    Column("last_modified", Text),
    Column("content_hash", String(64)),  # of the last body parsed, for files and no-ETag servers
    Column("last_polled_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("next_poll_at", UTCDateTime),
    Column("disabled_reason", Text),  # e.g. "410 Gone"; the source is not polled while set
    Column("feed_title", Text),
    Column("feed_link", Text),
    Column("feed_id", Text),  # the feed's own id, credited in our Atom entries' <source>
)

posts = Table(
    "posts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("guid", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("authors", JSON, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("published", UTCDateTime, nullable=False),
    Column("updated", UTCDateTime, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("summary_html", Text, nullable=False),
    Column("content_html", Text, nullable=False),
    Column("excerpt", Text, nullable=False),
    Column("image_url", Text),
    Column("image_alt", Text),  # the feed's alt text for it (None: it gave none)
    Column("image_width", Integer),  # its natural size in pixels, when the feed says
    Column("image_height", Integer),
    Column("enclosure", JSON),  # {"url", "type", "length"} of the first enclosure
    Column("comments_url", Text),  # the discussion link the source feed itself gives
    Column("language", String(35)),
    # The feed wrote it in the Zawgyi encoding; the text stored is its Unicode conversion.
    Column("zawgyi", Boolean, nullable=False, default=False, server_default=false()),
    Column("content_hash", String(64), nullable=False),
    Column("discussion_url", Text),  # resolved by the forum linker
    Column("forum_topic_id", Integer),
    Column("reply_count", Integer),
    Column("forum_checked_at", UTCDateTime),
    # How discussion_url was found ("feed", "template:<hash>", "discourse:<url>"): a post
    # whose source now uses another strategy or template is linked again.
    Column("discussion_key", String(120)),
    UniqueConstraint("source", "guid"),
    Index(None, "url"),
    Index(None, "published"),
    # The linker's "which posts are not linked with their source's current key?", asked at
    # every ingest, reads this index instead of every post (revision 0012).
    Index(None, "source", "discussion_key"),
)

# Change counters (store/versions.py): bumped in the transactions that change what pages
# show, so the web app can tell with one lookup whether a page it rendered is still current.
versions = Table(
    "versions",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("version", Integer, nullable=False),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),  # stored normalised, lower-case
    Column("name", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False),  # a SubscriberStatus
    Column("categories", JSON, nullable=False),
    Column("consent_source", Text, nullable=False),
    Column("consented_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    Column("unsubscribed_at", UTCDateTime),
    Column("bounce_count", Integer, nullable=False, default=0),
    # The language they read the digest and pages in (a [site] languages code); None: the
    # site's first.
    Column("language", String(35)),
    # What they get of the posts in other languages: "include", "link" or "omit"; None: the
    # site's [digest] other_languages.
    Column("other_languages", String(8)),
    # When the row was added (the service passes its clock's time). A link signed before
    # links named their owner's address (syndicate/tokens.py) counts only for a row created
    # no later than it was signed.
    Column("created_at", UTCDateTime, nullable=False, default=lambda: datetime.now(UTC)),
    Index(None, "status"),
    # A signed link names an id, so an id must never be handed out twice: on SQLite that
    # takes AUTOINCREMENT (without it, deleting the newest row frees its id again).
    sqlite_autoincrement=True,
)

# Addresses that asked to be forgotten, kept only as the SHA-256 of the normalised address:
# enough to refuse a later add or import, without keeping the personal data itself.
suppressions = Table(
    "suppressions",
    metadata,
    Column("email_sha256", String(64), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# A digest issue: one per period, holding what every delivery of it shares.
digest_issues = Table(
    "digest_issues",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("period", String(16), nullable=False, unique=True),  # "2015-12" or "2015-W49"
    Column("subject", Text, nullable=False),
    Column("post_ids", JSON, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # When its recipients were written into the ledger: once, so a later subscriber does
    # not get an old issue when a send is resumed.
    Column("snapshot_at", UTCDateTime),
    # What the issue is made of (posts as they were, templates), as JSON, so that a copy for
    # some categories is rendered from the issue itself (syndicate.digest.issue).
    Column("content", JSON),
    # Proof and approval ([digest] review; migration 0016, syndicate/digest/review.py).
    Column("version", Integer, nullable=False, default=1, server_default="1"),
    Column("fingerprint", String(64)),  # of what it is made of; a change makes a new version
    Column("awaiting_review", Boolean, nullable=False, default=False, server_default=false()),
    Column("proof_version", Integer),  # the version whose proofs are claimed or sent
    Column("proof_claimed_at", UTCDateTime),
    Column("proof_sent_at", UTCDateTime),  # None while the claimed proofs are being sent
    Column("review_deadline", UTCDateTime),
    Column("approved_at", UTCDateTime),
    Column("approved_by", String(320)),
)

# The delivery ledger: one row per (issue, subscriber), whose status says what was sent.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("issue_id", Integer, ForeignKey("digest_issues.id"), nullable=False),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
    # pending | sending | sent | deferred | failed | skipped (no longer active, or nothing
    # in the issue for their categories)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime),
    Column("last_error", Text),
    Column("message_id", Text),
    Column("claimed_by", Text),
    Column("claimed_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    UniqueConstraint("issue_id", "subscriber_id"),
    # id last: a claim reads an issue's rows of one status in id order (revision 0011).
    Index(None, "issue_id", "status", "id"),
)

# One row per periodic run ("digest:2015-12"): the unique key is what makes a run happen once.
job_runs = Table(
    "job_runs",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("status", String(16), nullable=False),  # a RunStatus
    Column("owner", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("error", Text),
)

# What publishing wrote last time: lets a build skip documents whose inputs did not change,
# remove documents that no longer exist, and retry WebSub pings that failed.
published_files = Table(
    "published_files",
    metadata,
    Column("path", String(512), primary_key=True),  # relative to [publish] dir
    Column("fingerprint", String(64), nullable=False),  # of everything the bytes depend on
    Column("sha256", String(64), nullable=False),
    Column("written_at", UTCDateTime, nullable=False),
    Column("ping_pending", Boolean, nullable=False, default=False),
    # files.file_stamp() of the file as written: an unchanged one is known without reading
    # it (NULL: read it and compare sha256, as for a folder another worker published to).
    Column("stamp", String(100)),
)

# Mail that came back to us (bounces, complaints, mail to an unsubscribe mailbox address),
# one row each, keyed on its bytes' hash: a mail read twice (a poll that stopped before it
# moved the mail away) is processed once.
inbound_mail = Table(
    "inbound_mail",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("origin", String(16), nullable=False),  # "imap" or "file"
    Column("kind", String(16), nullable=False),  # syndicate.bounces.reports.ReportKind
    Column("outcome", String(16), nullable=False),  # an InboundOutcome
    Column("detail", Text, nullable=False),  # one line; no address (ids only)
    Column("received_at", UTCDateTime, nullable=False),
    Index(None, "received_at"),
)

# What returning mail said about a subscriber: the evidence behind a "bounced" or a
# complaint's unsubscribe ([bounces] policy, store/bounces.py).
bounce_events = Table(
    "bounce_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
    Column("issue_id", Integer, ForeignKey("digest_issues.id")),
    Column("mail_id", Integer, ForeignKey("inbound_mail.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # a BounceKind
    Column("status_code", String(16), nullable=False),
    Column("diagnostic", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    # "How many soft bounces has this subscriber had in the window?" for each report.
    Index(None, "subscriber_id", "kind", "received_at"),
    Index(None, "received_at"),
)
