"""Proofs and the review gate: an issue awaiting review, sent to `[digest] reviewers`.

    passed = await review_gate(settings, store, clock, issue, transport)
    if isinstance(passed, AwaitingReview): ...   # proofs sent now or before; not to send
    else: ...                                    # the issue to send (approved, or no review)

The steps are syndicate.digest.review's; this module takes them.

A proof is the whole issue as a reader of the site's default language who chose nothing
gets it, greeting the reviewer, with "[Proof]" before the subject and a note on top: the
signed link to the issue's preview page (where it can be approved), the command that
approves it, and when its window ends. Like a test copy (syndicate.mail.testsend) it is
sent outside the ledger and never counts as a delivery: its unsubscribe and preferences
links lead to the home page, its Message-ID and envelope sender name no subscriber.

Each version's proofs go out once: they are claimed on the issue's row first
(store.claim_proof), so two workers, or a worker and `digest send`, never both send them.
A claim whose sender died is taken over after PROOF_LEASE; if none of the reviewers could
be sent theirs, the claim is let go at once and the next try sends them.
"""

from __future__ import annotations

import html as markup
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr

from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.digest.build import copy_renderer, publish_web_copy, reader_words, stored_content
from syndicate.digest.context import DigestSubscriber
from syndicate.digest.review import (
    PROOF_LEASE,
    WINDOW_ENDED,
    Step,
    deadline_after,
    next_step,
    review_link,
)
from syndicate.errors import DeliveryError, TransportUnavailable
from syndicate.mail.headers import HeaderError
from syndicate.mail.testsend import loose_copy
from syndicate.mail.transport import Transport
from syndicate.models import DigestIssue
from syndicate.store import Store
from syndicate.tokens import signing_secret

SUBJECT_PREFIX = "[Proof] "
_BODY_TAG = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ProofReport:
    """The proofs of one version of an issue: to whom they went, and who could not get one."""

    issue: DigestIssue
    deadline: datetime
    sent: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = field(default=())  # (address, the server's words)


@dataclass(frozen=True, slots=True)
class AwaitingReview:
    """An issue not to be sent yet: its proofs are out (`step` WAIT), its window ended and
    it is held (HOLD), or its proofs could not go out now (PROOF)."""

    issue: DigestIssue
    step: Step
    proofs: ProofReport | None  # the proofs sent by this call
    rebuilt: bool = False  # made again as a new version by this call


async def review_gate(
    settings: Settings,
    store: Store,
    clock: Clock,
    issue: DigestIssue,
    transport: Transport,
    *,
    rebuilt: bool = False,
) -> DigestIssue | AwaitingReview:
    """`issue` when it may be sent now, else where it is in its review, after sending its
    proofs if this version has none yet."""
    step = next_step(settings.digest, issue, clock.now())
    proofs = None
    if step is Step.PROOF:
        proofs = await send_proofs(settings, store, clock, issue, transport)
        issue = await store.issue(issue.period) or issue
        step = next_step(settings.digest, issue, clock.now())
    if step is not Step.SEND:
        return AwaitingReview(issue, step, proofs, rebuilt)
    if issue.awaiting_review:
        # The window ended with [digest] unreviewed = "send", or review was turned off.
        by = WINDOW_ENDED if settings.digest.review is not None else "review turned off"
        issue = (
            await store.approve_issue(issue.id, issue.version, by, clock.now())
            or await store.issue(issue.period)
            or issue
        )
        await publish_web_copy(settings, store, issue)
    return issue


async def send_proofs(
    settings: Settings, store: Store, clock: Clock, issue: DigestIssue, transport: Transport
) -> ProofReport | None:
    """Send `issue`'s proofs unless another sender has them; None then. Raises what the
    transport raises when it is unusable (after letting the claim go)."""
    now = clock.now()
    if not await store.claim_proof(issue, now, now - PROOF_LEASE):
        return None
    deadline = issue.review_deadline or deadline_after(settings.digest, now)
    content = await stored_content(settings, store, issue)
    words = reader_words(settings, content.default_language)
    rendered = copy_renderer(settings, content).render(content.for_reader(frozenset(), words))
    home = f"{settings.site.url.rstrip('/')}/"
    secret = signing_secret(settings)
    envelope_from = parseaddr(settings.digest.sender)[1]
    sent: list[str] = []
    failed: list[tuple[str, str]] = []
    try:
        for reviewer in settings.digest.reviewers:
            name, address = parseaddr(reviewer)
            html, text = rendered.personalise(DigestSubscriber.of(name, address, words), home, home)
            link = review_link(settings, secret, clock, issue, address)
            note = _Note(settings, issue, link, deadline)
            try:
                message = loose_copy(
                    settings,
                    clock,
                    "proof",
                    (name, address),
                    SUBJECT_PREFIX + rendered.subject,
                    note.above_html(html),
                    note.above_text(text),
                )
                await transport.send(message, envelope_from, address)
            except TransportUnavailable:
                raise  # nothing can be sent now: the claim is let go below
            except (HeaderError, DeliveryError) as error:  # this address only
                failed.append((address, str(error)))
            else:
                sent.append(address)
    except BaseException:
        await store.release_proof(issue)
        raise
    if sent:
        await store.proofs_sent(issue, clock.now(), deadline)
    else:
        await store.release_proof(issue)
    return ProofReport(issue, deadline, tuple(sent), tuple(failed))


@dataclass(frozen=True, slots=True)
class _Note:
    """What a reviewer reads above the proof."""

    settings: Settings
    issue: DigestIssue
    link: str
    deadline: datetime

    def lines(self) -> tuple[str, str, str]:
        digest = self.settings.digest
        until = self.deadline.astimezone(self.settings.site.tz)
        then = "sent to every subscriber" if digest.unreviewed == "send" else "held"
        return (
            f"Proof of the {self.issue.period} issue, version {self.issue.version}: "
            "subscribers do not have it yet.",
            f"Read and approve it at {self.link}",
            f"or run: syndicate digest approve {_period_option(self.issue.period)}. "
            f"Unless it is approved by {until:%Y-%m-%d %H:%M %Z}, it will be {then}.",
        )

    def above_text(self, text: str) -> str:
        return "\n".join(self.lines()) + "\n\n" + "-" * 40 + "\n\n" + text

    def above_html(self, html: str) -> str:
        first, _, last = self.lines()
        link = markup.escape(self.link)
        box = (
            '<div style="border:2px solid #b45309;background:#fffbeb;color:#111;'
            'padding:12px 16px;margin:0 0 16px;font:15px/1.5 sans-serif">'
            f"<strong>{markup.escape(first)}</strong><br>"
            f'<a href="{link}" style="color:#b45309">Read and approve it on its page</a><br>'
            f"{markup.escape(last)}</div>"
        )
        found = _BODY_TAG.search(html)
        at = found.end() if found else 0
        return html[:at] + box + html[at:]


def _period_option(period: str) -> str:
    return f"--week {period}" if "-W" in period else f"--month {period}"
