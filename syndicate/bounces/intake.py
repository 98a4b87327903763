"""One returning mail in, one stored outcome out: bounces, complaints, unsubscribe mail.

    intake = Intake(settings, store, clock)
    processed = await intake.process(raw, origin="imap")       # or "file"
    processed.outcome        # applied, ignored, unmatched, forged or unreadable

1. A mail whose bytes were stored before is skipped (it was read twice: a poll that stopped
   after storing it and before moving it away).
2. It is read (syndicate.bounces.reports): a hard or soft bounce, a complaint (ARF), an
   auto-reply, a success notice, a person's message, or unreadable.
3. It is matched to a subscriber, only on evidence we signed or sent:
   - a token in an address it was delivered to or quotes ([mail] return_path and
     unsubscribe_mailbox, syndicate.mail.verp), checked against the subscriber's id and
     address; a token that does not check out is "forged" and changes nothing;
   - without one, for a bounce or a complaint, the Message-ID of our copy it quotes
     (<digest-ISSUE-SUBSCRIBER@site>), and only when the failed address it reports is that
     subscriber's and that copy was sent. An address alone is no evidence: anyone can write
     a bounce for any address.
4. The mail's row, its event and the subscriber's change are stored in one transaction
   (store/bounces.py applies [bounces] hard_limit, soft_limit and soft_window; a complaint
   unsubscribes and suppresses; a mail to the unsubscribe mailbox unsubscribes).

Unreadable mail is kept in the Maildir [bounces] keep before its row is stored, so nothing is
lost; every outcome is one log line naming the address or the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import mailbox
import re
from dataclasses import dataclass
from pathlib import Path

from syndicate.bounces.reports import Failure, Report, ReportKind, read_report
from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.mail.message import site_domain
from syndicate.mail.verp import Purpose, VerpAddresses, VerpClaim
from syndicate.models import BounceEvent, BouncePolicy, InboundMail, Subscriber
from syndicate.statuses import BounceKind, InboundOutcome
from syndicate.store import Store
from syndicate.terminal import cell
from syndicate.tokens import signing_secret

log = logging.getLogger(__name__)

# How much of a mail is searched for a return-path token it quotes (a bounce quotes our
# headers near its start; a 10 MB attachment need not be scanned).
SCAN_BYTES = 2_000_000
_REPORT_KINDS = {
    ReportKind.HARD: BounceKind.HARD,
    ReportKind.SOFT: BounceKind.SOFT,
    ReportKind.COMPLAINT: BounceKind.COMPLAINT,
}
# Outcomes an admin should hear of without -v: mail that claims what it cannot show.
_BAD = {InboundOutcome.FORGED, InboundOutcome.UNMATCHED, InboundOutcome.UNREADABLE}
_ADDRESS = re.compile(r"[^\s<>(),]+@[^\s<>(),]+")
_IGNORED = {
    ReportKind.AUTO_REPLY: "an auto-reply",
    ReportKind.DELIVERED: "a delivery notice (delivered)",
}


@dataclass(frozen=True, slots=True)
class Processed:
    """What became of one mail."""

    outcome: InboundOutcome
    kind: str  # the report's kind
    detail: str  # one line, as logged (may name the address)
    duplicate: bool = False  # stored before: nothing was done again
    subscriber_id: int | None = None
    status_change: tuple[str, str] | None = None  # (before, after) when it changed


@dataclass(frozen=True, slots=True)
class _Decision:
    outcome: InboundOutcome
    detail: str
    event: BounceEvent | None = None
    subscriber: Subscriber | None = None


class Intake:
    def __init__(self, settings: Settings, store: Store, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.verp = VerpAddresses(signing_secret(settings))
        bounces = settings.bounces
        self.policy = BouncePolicy(bounces.hard_limit, bounces.soft_limit, bounces.soft_window)
        self.domain = site_domain(settings.site.url)
        mail = settings.mail
        self._message_id = re.compile(rf"<digest-(\d+)-(\d+)@{re.escape(self.domain)}>", re.I)
        self._quoted_token = _quoted_token_pattern(mail.return_path)

    async def process(self, raw: bytes, origin: str, recipient: str | None = None) -> Processed:
        """Read, match and store one mail (see the module docstring). `recipient` is the
        address it was delivered to when the caller knows it (a mail server's pipe)."""
        digest = hashlib.sha256(raw).hexdigest()
        if await self.store.is_inbound_known(digest):
            return Processed(InboundOutcome.IGNORED, "", "read before", duplicate=True)
        report = await asyncio.to_thread(read_report, raw)
        decision = await self._decide(report, raw, recipient)
        if decision.outcome == InboundOutcome.UNREADABLE:
            where = await asyncio.to_thread(self._keep, raw)
            decision = _Decision(decision.outcome, f"{decision.detail}; kept in {where}")
        now = self.clock.now()
        mail = InboundMail(
            sha256=digest,
            origin=origin,
            kind=str(report.kind),
            outcome=decision.outcome,
            detail=_stored_detail(decision),
            received_at=now,
        )
        recorded = await self.store.record_inbound(mail, decision.event, self.policy, now)
        if recorded.duplicate:
            return Processed(InboundOutcome.IGNORED, str(report.kind), "read before", True)
        change = None
        if recorded.status_before is not None and recorded.status_after != recorded.status_before:
            assert recorded.status_after is not None
            change = (recorded.status_before, recorded.status_after)
        detail = decision.detail + (f": {change[0]} -> {change[1]}" if change else "")
        log.log(
            logging.WARNING if decision.outcome in _BAD else logging.INFO,
            "%s mail (%s, %s): %s",
            origin,
            report.kind,
            decision.outcome,
            detail,
        )
        subscriber_id = decision.event.subscriber_id if decision.event else None
        return Processed(decision.outcome, str(report.kind), detail, False, subscriber_id, change)

    async def _decide(self, report: Report, raw: bytes, recipient: str | None) -> _Decision:
        if report.kind == ReportKind.UNREADABLE:
            return _Decision(InboundOutcome.UNREADABLE, f"unreadable: {report.problem}")
        if report.kind in _IGNORED:
            return _Decision(InboundOutcome.IGNORED, _IGNORED[report.kind])
        delivered_to = [*([recipient] if recipient else []), *report.delivered_to]
        if report.kind == ReportKind.MESSAGE:
            return await self._unsubscribe_by_mail(report, delivered_to)
        kind = _REPORT_KINDS[report.kind]
        quoted = self._quoted_tokens(raw)
        return_path = self.settings.mail.return_path
        found = await self._claimed(return_path, "bounce", [*delivered_to, *quoted])
        if isinstance(found, _Decision):
            return found
        if found is not None:
            claim, subscriber = found
            failure = _failure_for(report, subscriber.email)
            return self._event(kind, subscriber, claim.number, failure, "its return path")
        return await self._by_message_id(report, kind)

    async def _unsubscribe_by_mail(self, report: Report, delivered_to: list[str]) -> _Decision:
        mailbox_address = self.settings.mail.unsubscribe_mailbox
        found = await self._claimed(mailbox_address, "unsubscribe", delivered_to)
        if isinstance(found, _Decision):
            return found
        if found is None:
            return _Decision(
                InboundOutcome.IGNORED,
                f"a message from {cell(report.sender or '?')} to no unsubscribe address of ours",
            )
        _, subscriber = found
        event = BounceEvent(
            subscriber.id, None, BounceKind.UNSUBSCRIBE, "", report.subject, self.clock.now()
        )
        detail = f"{subscriber.email} unsubscribed by mail (subscriber {subscriber.id})"
        return _Decision(InboundOutcome.APPLIED, detail, event, subscriber)

    async def _claimed(
        self, configured: str | None, purpose: Purpose, addresses: list[str]
    ) -> tuple[VerpClaim, Subscriber] | _Decision | None:
        """The first address that carries a valid `purpose` token of `configured`'s; a FORGED
        or UNMATCHED decision when tokens were found and none is valid; None for no token."""
        if configured is None:
            return None
        refused: _Decision | None = None
        now = self.clock.now()
        for address in addresses:
            claim = self.verp.read(configured, address)
            if claim is None or claim.purpose != purpose:
                continue
            subscriber = await self.store.subscriber_by_id(claim.subscriber_id)
            if subscriber is None:
                refused = refused or _Decision(
                    InboundOutcome.UNMATCHED,
                    f"a token for subscriber {claim.subscriber_id}, who is gone",
                )
            elif self.verp.belongs_to(claim, subscriber, now):
                return claim, subscriber
            else:
                refused = _Decision(
                    InboundOutcome.FORGED,
                    f"a token that does not check out ({cell(address)}): nothing changed",
                )
        return refused

    async def _by_message_id(self, report: Report, kind: BounceKind) -> _Decision:
        failed = {failure.address for failure in report.failures if failure.address}
        for message_id in report.message_ids:
            match = self._message_id.fullmatch(message_id.strip())
            if match is None:
                continue
            issue_id, subscriber_id = int(match[1]), int(match[2])
            subscriber = await self.store.subscriber_by_id(subscriber_id)
            if subscriber is None:
                continue
            if subscriber.email not in failed:
                return _Decision(
                    InboundOutcome.UNMATCHED,
                    f"it quotes our copy {message_id} but reports "
                    f"{cell(', '.join(sorted(failed)) or 'no address')}, "
                    f"not subscriber {subscriber_id}'s",
                )
            if not await self.store.was_sent(issue_id, subscriber_id, message_id):
                return _Decision(
                    InboundOutcome.UNMATCHED, f"it quotes {message_id}, which we never sent"
                )
            failure = _failure_for(report, subscriber.email)
            return self._event(kind, subscriber, issue_id, failure, f"Message-ID {message_id}")
        addresses = ", ".join(sorted(failed)) or "no address"
        return _Decision(
            InboundOutcome.UNMATCHED,
            f"{kind} for {cell(addresses)} with no token or Message-ID of ours",
        )

    def _event(
        self,
        kind: BounceKind,
        subscriber: Subscriber,
        issue_id: int | None,
        failure: Failure | None,
        evidence: str,
    ) -> _Decision:
        status = failure.status if failure else ""
        diagnostic = failure.diagnostic if failure else ""
        event = BounceEvent(
            subscriber.id, issue_id, kind, status, diagnostic, received_at=self.clock.now()
        )
        what = "complaint" if kind == BounceKind.COMPLAINT else f"{kind} bounce"
        code = f" {status}" if status else ""
        detail = (
            f"{what}{code} for {subscriber.email} (subscriber {subscriber.id}, "
            f"issue {issue_id}, by {evidence})"
        )
        return _Decision(InboundOutcome.APPLIED, detail, event, subscriber)

    def _quoted_tokens(self, raw: bytes) -> list[str]:
        """Return-path addresses the mail quotes (our copy's Return-Path in a complaint, a
        DSN sent to another mailbox): checked like any other token."""
        if self._quoted_token is None:
            return []
        head = raw[:SCAN_BYTES].decode("latin-1")
        return list(dict.fromkeys(match.lower() for match in self._quoted_token.findall(head)))

    def _keep(self, raw: bytes) -> Path:
        keep = self.settings.bounces_keep_dir
        box = mailbox.Maildir(keep, create=True)
        try:
            box.add(raw)
        finally:
            box.close()
        return keep


def _quoted_token_pattern(return_path: str | None) -> re.Pattern[str] | None:
    if return_path is None:
        return None
    from syndicate.config.fields import verp_parts

    local, domain = verp_parts(return_path)
    return re.compile(
        rf"{re.escape(local)}\+b\d{{1,10}}-\d{{1,10}}-[a-z2-7]{{16}}@{re.escape(domain)}",
        re.IGNORECASE,
    )


def _failure_for(report: Report, email: str) -> Failure | None:
    """The report's failure for `email`, else its first (a token is evidence enough even
    when the server reports an alias the address forwarded to)."""
    for failure in report.failures:
        if failure.address == email:
            return failure
    return report.failures[0] if report.failures else None


def _stored_detail(decision: _Decision) -> str:
    """The detail kept in the database: the logged line without addresses (the subscriber's
    id says who; a forgotten subscriber's address must not stay behind in it)."""
    return _ADDRESS.sub("<address>", decision.detail)
