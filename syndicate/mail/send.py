"""Sending a digest issue: the ledger decides what is sent, the transport delivers it.

    report = await IssueSender(settings, store, clock, issue, transport).run()

1. Snapshot: the issue's recipients (the active subscribers) become one pending row each,
   once per issue (store.snapshot_deliveries).
2. Claim a batch of due rows (pending, deferred and due, or left "sending" by a sender that
   died) while the previous batch is being sent, so the pool never waits for the database.
3. Each claimed row is personalised (the issue's shared body with the subscriber's name and
   signed links filled in; a subscriber who chose categories gets the issue's own posts in
   them, syndicate.digest.issue), built into an RFC 5322 message, optionally DKIM-signed,
   and handed to the transport by one of `concurrency` workers, one per connection.
4. Each outcome is recorded as it happens (syndicate.mail.recorder: those that queue while
   one transaction is written go together in the next): sent; deferred with
   exponential backoff after a transient failure (4xx, timeout, dropped connection) until
   `[mail] max_attempts`; failed after a permanent one (5xx), which also counts towards the
   subscriber's bounces. When the transport cannot send anything (server unreachable, AUTH
   or TLS failing, our sender refused) the run stops and releases its rows untried: no
   address is blamed.

What a crash costs: a worker sends its next message only once the outcome of its previous
one is stored, so after a kill -9 the only messages sent but not recorded are those on the
wire at that moment, at most one per connection; they may go a second time, and every other
row is sent exactly once by the next run. Their Message-ID is the same, so receiving servers
and clients that saw the first copy can drop the second. Rows claimed but not yet sent are
taken over by the next run at once (their owner is dead), or after the lease elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr

from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.digest.build import (
    build_issue,
    copy_renderer,
    reader_words,
    stored_content,
)
from syndicate.digest.context import DigestSubscriber
from syndicate.digest.issue import IssueContent
from syndicate.digest.render import DigestRenderer, RenderedDigest
from syndicate.errors import DeliveryError, TransportUnavailable
from syndicate.i18n import Translator
from syndicate.mail.dkim import DkimSigner, dkim_signer_for
from syndicate.mail.message import MessageFactory
from syndicate.mail.proof import AwaitingReview, review_gate
from syndicate.mail.recorder import OutcomeRecorder
from syndicate.mail.transport import Transport, open_transport
from syndicate.mail.verp import VerpAddresses
from syndicate.mail.wire import MailCopy
from syndicate.models import ClaimedDelivery, DigestIssue, Recipient
from syndicate.statuses import UNSENT, DeliveryStatus, SubscriberStatus
from syndicate.store import Store
from syndicate.store.outcomes import Outcome, OutcomeWriter
from syndicate.tokens import Tokens, signing_secret

log = logging.getLogger(__name__)

# A row left "sending" this long is presumed abandoned even if its owner cannot be asked
# (another machine). Far longer than a batch takes, even rate-limited (see _batch_size).
LEASE = timedelta(minutes=15)
MESSAGES_PER_CONNECTION_BATCH = 25


@dataclass
class SendCounts:
    """What this run did, message by message (progress bars read it as it changes)."""

    total: int = 0  # rows of the issue still to send when the run started
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def done(self) -> int:
        return self.sent + self.deferred + self.failed + self.skipped


@dataclass
class SendReport:
    issue: DigestIssue
    counts: SendCounts
    ledger: dict[str, int] = field(default_factory=dict)  # every row of the issue, by status
    next_retry_at: datetime | None = None
    errors: list[str] = field(default_factory=list)  # a sample of failures, for the summary
    stopped: bool = False  # asked to stop before the work was done
    halted: str | None = None  # the transport could not send anything: why


def sender_id() -> str:
    """Who claims rows: host and pid (so a dead sender on this host can be recognised) and a
    random part (so two senders in one process, or a reused pid, are told apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def dead_owners(owners: set[str], me: str) -> set[str]:
    """The owners on this host whose process is gone; others are left to the lease."""
    host = socket.gethostname()
    dead = set()
    for owner in owners - {me}:
        owner_host, _, rest = owner.rpartition(":")[0].rpartition(":")
        if owner_host != host or not rest.isdigit():
            continue
        try:
            os.kill(int(rest), 0)
        except ProcessLookupError:
            dead.add(owner)
        except PermissionError:  # alive, someone else's
            pass
    return dead


class IssueSender:
    """Sends one issue; see the module docstring.

    report = await IssueSender(settings, store, clock, issue, transport).run()
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        issue: DigestIssue,
        transport: Transport,
        *,
        concurrency: int | None = None,
        signer: DkimSigner | None = None,
        tokens: Tokens | None = None,
        on_progress: Callable[[SendCounts], None] | None = None,
        stop: asyncio.Event | None = None,
        owner: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.issue = issue
        self.transport = transport
        mail = settings.mail
        self.concurrency = concurrency or (mail.smtp.pool if mail.transport == "smtp" else 4)
        self.batch = _batch_size(
            self.concurrency, mail.smtp.rate if mail.transport == "smtp" else 0
        )
        self.signer = signer
        self.tokens = tokens or Tokens(signing_secret(settings), clock)
        # Per-copy addresses that bring bounces and unsubscribe mail back to a subscriber.
        self.verp = VerpAddresses(signing_secret(settings)) if _uses_verp(settings) else None
        self.on_progress = on_progress
        # `stop` is the caller's (a worker shutting down); a halt stops only this run.
        self.stop = stop or asyncio.Event()
        self._halted = asyncio.Event()
        self.owner = owner or sender_id()
        self.envelope_from = parseaddr(settings.digest.sender)[1]
        self.counts = SendCounts()
        self.errors: list[str] = []
        self.halted: str | None = None  # why the transport made this run stop
        self.factory: MessageFactory  # in run(): 8bit bodies if the transport accepts them
        # Each reader's words, by the language their row names (None: the site's default).
        self._words: dict[str | None, Translator] = {}
        self._default_language = self._words_for(None).language
        # A copy per language, choice of categories and choice of other languages' posts;
        # the stored one is the default language's for no categories and the site's choice.
        self._copies: dict[tuple[str, frozenset[str], str | None], MailCopy | None] = {
            (self._default_language, frozenset(), None): MailCopy(
                RenderedDigest(
                    subject=issue.subject,
                    html=issue.html,
                    text=issue.text,
                    home_url=f"{settings.site.url.rstrip('/')}/",
                )
            )
        }
        self._copy_lock = asyncio.Lock()
        # Claimed rows: not yet taken by a worker, taken and not yet delivered (by id), and
        # the claim of the next batch.
        self._rows: deque[ClaimedDelivery] = deque()
        self._taken: dict[int, ClaimedDelivery] = {}
        self._take_lock = asyncio.Lock()
        self._claiming: asyncio.Future[list[ClaimedDelivery]]
        self._made_of: tuple[IssueContent, DigestRenderer] | None = None
        self._dead: set[str] | None = None  # owners of rows in "sending" found dead
        self._after = 0  # the highest id claimed: the next claim's pending rows start past it
        # The progress log: which tenth of the send is next, and when the last one ended.
        self._tenth = 0
        self._tenth_at = 0.0
        self._tenth_done = 0

    async def run(self) -> SendReport:
        try:
            eight_bit = await self.transport.accepts_8bit()
        except TransportUnavailable as error:
            eight_bit = False
            self._halt(error)
        self.factory = MessageFactory.for_issue(
            self.settings, self.issue, clock=self.clock, eight_bit=eight_bit
        )
        began = time.perf_counter()
        created = await self.store.snapshot_deliveries(self.issue.id, self.clock.now())
        if created:  # once per issue; how long it took says whether the list outgrew it
            log.info(
                "snapshot: %d recipients in %.2f s",
                created,
                time.perf_counter() - began,
                extra={"issue": self.issue.period},
            )
        ledger = await self.store.delivery_counts(self.issue.id)
        self.counts.total = sum(ledger.get(s, 0) for s in UNSENT)
        self._progress()
        self._claiming = asyncio.ensure_future(self._claim())
        writer = self.store.outcome_writer(self.owner, self.settings.mail.bounce_limit)
        recorder = OutcomeRecorder(
            lambda outcomes: writer.write(outcomes, self.clock.now()),
            connections=self.concurrency,
        )
        workers = [asyncio.ensure_future(self._work(recorder)) for _ in range(self.concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            # Whatever happens (a stop, a signal, an error), what was sent is recorded and
            # what was claimed but not sent is released, so that nothing waits for the lease.
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.shield(self._finish(recorder, writer))
        return SendReport(
            issue=self.issue,
            counts=self.counts,
            ledger=await self.store.delivery_counts(self.issue.id),
            next_retry_at=await self.store.next_retry_at(self.issue.id),
            errors=self.errors,
            stopped=self.stop.is_set(),
            halted=self.halted,
        )

    async def _claim(self) -> list[ClaimedDelivery]:
        """The next batch: pending rows past the last one claimed, then due and abandoned
        ones. A claim that comes back short looks again from the start (rows released or
        left behind by others), asking again who is dead: rows of a dead owner come after
        the pending and due ones, so asking at every claim (which read the issue's rows in
        "sending" each time, and the index entries every row sent so far left) was waste."""
        if self._stopping():
            return []
        fresh = self._dead is None
        if self._dead is None:
            self._dead = await self._dead_owners()
        claimed = await self._claim_some(self.batch, self._dead, self._after)
        if len(claimed) < self.batch and (self._after or not fresh):
            if not fresh:
                self._dead = await self._dead_owners()
            claimed += await self._claim_some(self.batch - len(claimed), self._dead, 0)
        if claimed:
            self._after = max(self._after, max(row.id for row in claimed))
        return claimed

    async def _dead_owners(self) -> set[str]:
        return dead_owners(await self.store.sending_owners(self.issue.id), self.owner)

    async def _claim_some(self, limit: int, dead: set[str], after: int) -> list[ClaimedDelivery]:
        now = self.clock.now()
        return await self.store.claim_deliveries(
            self.issue.id,
            self.owner,
            now,
            limit,
            lease_expired_before=now - LEASE,
            dead_owners=dead,
            pending_after=after,
        )

    async def _work(self, recorder: OutcomeRecorder) -> None:
        """One connection's loop: take a row, deliver it, hand the outcome to the recorder.
        The message after it is sent only once that outcome is stored (see _deliver)."""
        stored: asyncio.Future[None] | None = None
        while (claimed := await self._take()) is not None:
            outcome = await self._deliver(claimed, recorder, stored)
            stored = recorder.add(outcome)
            del self._taken[claimed.id]
            self._count(outcome)

    async def _take(self) -> ClaimedDelivery | None:
        """The next claimed row for a worker (None: stopping, or nothing left to send); the
        next batch is claimed while this one is being sent, so workers never wait for it."""
        async with self._take_lock:
            if self._stopping():
                return None
            if not self._rows:
                # Shielded: a claim whose result were lost would leave its rows "sending"
                # until the lease runs out.
                batch = await asyncio.shield(self._claiming)
                if not batch:
                    return None
                self._rows.extend(batch)
                self._claiming = asyncio.ensure_future(self._claim())
            claimed = self._rows.popleft()
            self._taken[claimed.id] = claimed
            return claimed

    async def _finish(self, recorder: OutcomeRecorder, writer: OutcomeWriter) -> None:
        """Release what was claimed and not delivered, and store every outcome."""
        unsent = [*self._taken.values(), *self._rows]
        self._taken.clear()
        self._rows.clear()
        # A claim that failed holds nothing (a worker that waited for it raised its error).
        with contextlib.suppress(Exception, asyncio.CancelledError):
            unsent += await self._claiming
        for claimed in unsent:
            recorder.add(_release(claimed))
        try:
            await recorder.close()
        finally:
            await writer.close()

    async def _deliver(
        self,
        claimed: ClaimedDelivery,
        recorder: OutcomeRecorder,
        previous: asyncio.Future[None] | None,
    ) -> Outcome:
        """Build and send one message. `previous` (the outcome this connection recorded
        last) must be stored before it goes, so that a kill loses at most the message on
        the wire: the message is built first, then that outcome's write is waited for."""
        subscriber = claimed.subscriber
        if subscriber.status != SubscriberStatus.ACTIVE:
            return _outcome(
                claimed, DeliveryStatus.SKIPPED, error=f"subscriber is {subscriber.status}"
            )
        words = self._words_for(subscriber.language)
        copy = await self._copy_for(subscriber.categories, words, subscriber.other_languages)
        if copy is None:
            return _outcome(
                claimed, DeliveryStatus.SKIPPED, error="no posts in their categories or language"
            )
        site_url = self.settings.site.url
        unsubscribe = self.tokens.link(site_url, "unsubscribe", subscriber)
        preferences = self.tokens.link(site_url, "preferences", subscriber)
        message_id = self.factory.message_id(self.issue.id, subscriber.id)
        envelope_from, mailto = self._verp_addresses(subscriber)
        try:
            html, text = copy.bodies(
                DigestSubscriber.of(subscriber.name, subscriber.email, words),
                unsubscribe,
                preferences,
            )
            raw = self.factory.build(
                subscriber,
                html,
                text,
                unsubscribe,
                message_id,
                mailto,
                subject=copy.rendered.subject,
            )
            if self.signer is not None:
                raw = self.signer.sign(raw)
        except ValueError as error:  # an address this builder cannot write
            return self._failed(claimed, f"{subscriber.email}: {error}", bounced=False)
        if previous is not None:
            await recorder.stored(previous)
            if self._stopping():  # asked to stop while waiting: this one has not started
                return _release(claimed)
        try:
            await self.transport.send(raw, envelope_from, subscriber.email)
        except TransportUnavailable as error:
            self._halt(error)
            return _release(claimed)
        except DeliveryError as error:
            if error.permanent:
                return self._failed(claimed, str(error), bounced=True)
            return self._deferred(claimed, str(error))
        except Exception as error:  # a bug must not stop the other deliveries
            log.exception("sending to %s failed unexpectedly", subscriber.email)
            return self._deferred(claimed, f"internal error: {error!r}")
        return _outcome(claimed, DeliveryStatus.SENT, message_id=message_id)

    def _verp_addresses(self, subscriber: Recipient) -> tuple[str, str | None]:
        """The copy's envelope sender ([mail] return_path with a token naming the issue and
        the subscriber, else [digest] from's address) and its unsubscribe mailto (None
        without [mail] unsubscribe_mailbox)."""
        mail = self.settings.mail
        if self.verp is None:
            return self.envelope_from, None
        envelope_from = self.envelope_from
        if mail.return_path is not None:
            envelope_from = self.verp.return_path(mail.return_path, self.issue.id, subscriber)
        mailto = None
        if mail.unsubscribe_mailbox is not None:
            mailto = self.verp.unsubscribe(mail.unsubscribe_mailbox, subscriber, self.clock.now())
        return envelope_from, mailto

    def _halt(self, error: TransportUnavailable) -> None:
        """Every other message would fail the same way, and no address is to blame: stop, and
        leave the rows (released untried) for a run after the problem is fixed."""
        if self.halted is None:
            self.halted = str(error)
            log.error("sending stopped: %s", error)
        self._halted.set()

    def _stopping(self) -> bool:
        return self.stop.is_set() or self._halted.is_set()

    def _deferred(self, claimed: ClaimedDelivery, error: str) -> Outcome:
        mail = self.settings.mail
        if claimed.attempts >= mail.max_attempts:
            return self._failed(
                claimed, f"{error} (gave up after {claimed.attempts} attempts)", bounced=False
            )
        delay = mail.retry_backoff * 2 ** (claimed.attempts - 1)
        return _outcome(
            claimed, DeliveryStatus.DEFERRED, error=error, next_attempt_at=self.clock.now() + delay
        )

    def _failed(self, claimed: ClaimedDelivery, error: str, *, bounced: bool) -> Outcome:
        if len(self.errors) < 20:
            self.errors.append(error)
        return _outcome(claimed, DeliveryStatus.FAILED, error=error, bounced=bounced)

    def _words_for(self, language: str | None) -> Translator:
        if language not in self._words:
            self._words[language] = reader_words(self.settings, language)
        return self._words[language]

    async def _copy_for(
        self, categories: tuple[str, ...], words: Translator, other_languages: str | None
    ) -> MailCopy | None:
        """The issue for a reader of the language of `words` who chose `categories` and
        what to get of other languages' posts (None: the site's choice), rendered once per
        distinct language and choices from what the issue is made of (its posts as they
        were, its templates: a post edited or added since does not show); None when none of
        its posts is for them."""
        chosen_categories = frozenset(category.casefold() for category in categories)
        key = (words.language, chosen_categories, other_languages)
        if key in self._copies:
            return self._copies[key]
        async with self._copy_lock:
            if key not in self._copies:
                content, renderer = await self._content()
                stored = (self._default_language, frozenset(), None)
                chosen = content.for_reader(chosen_categories, words, other_languages)
                if not chosen.posts and not chosen.other_posts:
                    self._copies[key] = None
                elif (
                    words.language == self._default_language
                    and other_languages in (None, content.other_languages)
                    and content.is_whole(content.for_categories(chosen_categories))
                ):  # everything, in the default language: the stored copy itself
                    self._copies[key] = self._copies[stored]
                else:
                    self._copies[key] = MailCopy(renderer.render(chosen))
        return self._copies[key]

    async def _content(self) -> tuple[IssueContent, DigestRenderer]:
        if self._made_of is None:
            content = await stored_content(self.settings, self.store, self.issue)
            self._made_of = content, copy_renderer(self.settings, content)
        return self._made_of

    def _count(self, outcome: Outcome) -> None:
        counts = self.counts
        if outcome.status == DeliveryStatus.SENT:
            counts.sent += 1
        elif outcome.status == DeliveryStatus.DEFERRED:
            counts.deferred += 1
        elif outcome.status == DeliveryStatus.FAILED:
            counts.failed += 1
        elif outcome.status == DeliveryStatus.SKIPPED:
            counts.skipped += 1
        self._progress()

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.counts)
        counts = self.counts
        if counts.total and counts.done * 10 >= counts.total * self._tenth:
            # A line a tenth (-v): a long send under cron shows its pace, and a rate that
            # falls tenth after tenth shows something growing with the list.
            now = time.perf_counter()
            if self._tenth:
                log.info(
                    "%d of %d done (%d sent), %.0f msg/s over the last tenth",
                    counts.done,
                    counts.total,
                    counts.sent,
                    (counts.done - self._tenth_done) / max(now - self._tenth_at, 1e-9),
                    extra={"issue": self.issue.period},
                )
            self._tenth += 1
            self._tenth_at, self._tenth_done = now, counts.done


def _uses_verp(settings: Settings) -> bool:
    return settings.mail.return_path is not None or settings.mail.unsubscribe_mailbox is not None


def _batch_size(concurrency: int, rate: float) -> int:
    size = concurrency * MESSAGES_PER_CONNECTION_BATCH
    if rate > 0:
        # A rate-limited batch must finish well within the lease: a minute's worth at most.
        size = min(size, max(1, int(rate * 60)))
    return size


def _outcome(
    claimed: ClaimedDelivery,
    status: str,
    *,
    message_id: str | None = None,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
    bounced: bool = False,
) -> Outcome:
    return Outcome(
        claimed.id, claimed.subscriber.id, status, message_id, error, next_attempt_at, bounced
    )


def _release(claimed: ClaimedDelivery) -> Outcome:
    """Back to pending, untried: this sender is stopping before it got to the row."""
    return _outcome(claimed, DeliveryStatus.PENDING)


async def send_period(
    settings: Settings,
    store: Store,
    clock: Clock,
    key: str,
    *,
    transport: Transport | None = None,
    on_progress: Callable[[SendCounts], None] | None = None,
    stop: asyncio.Event | None = None,
) -> SendReport | AwaitingReview | None:
    """Build the period's issue if needed, then send it; None when there is no issue to
    send (no posts and `[digest] skip_empty`). Run again, it resumes: only what is not yet
    sent goes out. With [digest] review on, an issue not approved is not sent: its proofs
    are, once per version (AwaitingReview; syndicate.mail.proof)."""
    built = await build_issue(settings, store, clock, key)
    if built.issue is None:
        return None
    signer = dkim_signer_for(settings)  # before connecting: a missing key fails fast
    own_transport = transport is None
    transport = transport or open_transport(settings)
    try:
        passed = await review_gate(
            settings, store, clock, built.issue, transport, rebuilt=built.rebuilt
        )
        if isinstance(passed, AwaitingReview):
            return passed
        sender = IssueSender(
            settings,
            store,
            clock,
            passed,
            transport,
            signer=signer,
            on_progress=on_progress,
            stop=stop,
        )
        return await sender.run()
    finally:
        if own_transport:
            await transport.close()
