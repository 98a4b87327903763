"""The main job, one step after another. Each step is a service function of its own."""

from __future__ import annotations

from dataclasses import dataclass, field

from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.forum.linker import link_discussions
from syndicate.ingest.poll import IngestReport, ingest
from syndicate.publish.build import publish
from syndicate.store import Store
from syndicate.store.engine import safe_url


@dataclass
class RunReport:
    lines: list[str] = field(default_factory=list)
    ingest: IngestReport | None = None

    @property
    def failed(self) -> bool:
        return bool(self.ingest and self.ingest.failed)


async def run_once(settings: Settings, clock: Clock) -> RunReport:
    """Do everything that is due now: poll sources whose time has come, publish."""
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
    return report
