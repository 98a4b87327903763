"""The main job, one step after another. Each step is a service function of its own."""

from __future__ import annotations

from dataclasses import dataclass, field

from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.store import Store
from syndicate.store.engine import safe_url


@dataclass
class RunReport:
    lines: list[str] = field(default_factory=list)
    failed: bool = False


async def run_once(settings: Settings, clock: Clock) -> RunReport:
    report = RunReport()
    async with await Store.open(settings.database_url) as store:
        report.lines.append(
            f"database {safe_url(settings.database_url)} at revision {await store.revision()}"
        )
        await store.sync_sources((s.name, s.url) for s in settings.sources)
        report.lines.append(f"{len(settings.sources)} sources registered")
    return report
