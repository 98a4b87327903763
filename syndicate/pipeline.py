"""The main job, one step after another. Each step is a service function of its own."""

from __future__ import annotations

from dataclasses import dataclass, field

from syndicate.bounces.polling import PollReport, poll_mailbox
from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.digest.review import describe
from syndicate.forum.linker import link_discussions
from syndicate.ingest.poll import IngestReport, ingest
from syndicate.jobs import DigestRun, digest_if_due, pending_digest, retry_deliveries, send_approved
from syndicate.mail.send import SendReport, sender_id
from syndicate.publish.build import publish
from syndicate.store import Store
from syndicate.store.engine import safe_url


@dataclass
class RunReport:
    lines: list[str] = field(default_factory=list)
    ingest: IngestReport | None = None
    digest: DigestRun | None = None
    retries: list[SendReport] = field(default_factory=list)
    bounces: PollReport | None = None

    @property
    def failed(self) -> bool:
        return bool(
            (self.ingest and self.ingest.failed)
            or (self.bounces and self.bounces.error)
            or (self.digest and self.digest.failed)
            or any(report.halted or report.counts.failed for report in self.retries)
        )


async def run_once(settings: Settings, clock: Clock) -> RunReport:
    """Do everything that is due now, once (`syndicate run --once`): poll the sources whose
    time has come, link discussions, publish, read the bounce mailbox, send the due digest (or
    its proof, under review), issues approved since, and deferred deliveries."""
    report = RunReport()
    async with await Store.open(settings.database_url) as store:
        report.lines.append(
            f"database {safe_url(settings.database_url)} at revision {await store.revision()}"
        )
        report.ingest = await ingest(settings, store, clock, due_only=True)
        polled = report.ingest.sources
        report.lines.append(
            f"polled {len(polled)} of {len(settings.sources)} sources: "
            f"{sum(s.new for s in polled)} new, {sum(s.updated for s in polled)} updated, "
            f"{sum(s.unchanged for s in polled)} unchanged posts, "
            f"{len(report.ingest.failed)} failed"
        )
        report.lines.extend(f"  {s.name}: {s.error}" for s in report.ingest.failed)
        linked = await link_discussions(settings, store, clock)
        report.lines.append(linked.summary())
        # Cheap when nothing changed: unchanged documents are recognised by fingerprint.
        published = await publish(settings, store, clock)
        report.lines.append(published.summary())
        if settings.bounces.imap is not None:
            # Before the digest: an address that bounced is not in its recipients.
            report.bounces = bounces = await poll_mailbox(settings, store, clock)
            outcomes = ", ".join(f"{k} {n}" for k, n in sorted(bounces.outcomes.items()))
            report.lines.append(
                f"bounces: {bounces.error}"
                if bounces.error
                else f"bounces: {bounces.mails} mail{'' if bounces.mails == 1 else 's'}"
                + (f" ({outcomes})" if outcomes else "")
            )
        report.digest = await digest_if_due(settings, store, clock, sender_id())
        digest = report.digest
        report.lines.append(
            digest.summary() if digest else await _quiet_digest(settings, store, clock)
        )
        approved = await send_approved(settings, store, clock)
        for sent in approved:
            counts = sent.counts
            report.lines.append(
                f"sent {sent.issue.period} (approved): sent {counts.sent}, "
                f"deferred {counts.deferred}, failed {counts.failed}"
            )
        report.retries = approved + await retry_deliveries(settings, store, clock)
        for retried in report.retries[len(approved) :]:
            counts = retried.counts
            report.lines.append(
                f"retried {retried.issue.period}: sent {counts.sent}, deferred {counts.deferred}, "
                f"failed {counts.failed}"
            )
    return report


async def _quiet_digest(settings: Settings, store: Store, clock: Clock) -> str:
    """The digest line when nothing was done: nothing due, or an issue awaiting review."""
    now = clock.now()
    pending = await pending_digest(settings, store, now)
    issue = await store.issue(pending.period.key) if pending else None
    if issue is None or not issue.awaiting_review:
        return "digest: nothing due"
    return f"digest {issue.period}: {describe(settings.digest, issue, now, settings.site.tz)}"
