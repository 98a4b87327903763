"""The long-running worker (`syndicate run`): the scheduler decides when, the database once.

    worker = Worker(settings, store, clock, owner=sender_id(), on_event=print)
    await worker.start()            # in the running loop: schedules the jobs, runs what is due
    await worker.reload(settings)   # a changed config: new sources polled, removed ones dropped
    await worker.stop()             # no new work; sends in flight finish; within STOP_GRACE

The jobs run on an APScheduler 3 AsyncIOScheduler in the caller's event loop, with the
memory job store: what is due is read from the database each time, so nothing is lost while
no worker runs and nothing is done twice when several do.

- `poll:<source>` runs at the source's next poll time from the database (`every` after its
  last poll, later after failures or a Retry-After) plus a little jitter, so sources with the
  same `every` spread out. The poll holds the source's lease row (`poll:<source>` in
  job_runs), so two workers never poll one source at once.
- publishing follows a poll that changed posts, and every LINK_EVERY (a forum that was down
  gets its threads created): link discussions, then publish; a burst of changes is one build.
- `bounces` reads the [bounces.imap] mailbox every [bounces] every, when there is one,
  under its lease row (syndicate.bounces.polling: each mail acts once, then moves away).
- `digest` runs on `[digest] schedule`, and `deliveries` at start-up and every DELIVERY_EVERY:
  both send the due digest unless its run row is done (jobs.digest_if_due), then retry the
  deferred deliveries whose time has come.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from syndicate.bounces.polling import poll_mailbox
from syndicate.clock import Clock
from syndicate.config import Settings, SourceSettings
from syndicate.cron import cron_trigger
from syndicate.forum.linker import link_discussions
from syndicate.ingest.poll import Poller, SourceReport
from syndicate.jobs import digest_if_due, pending_digest, retry_deliveries, send_approved
from syndicate.mail.send import dead_owners
from syndicate.models import SourceState
from syndicate.publish.build import publish
from syndicate.statuses import RunStatus
from syndicate.store import Store

log = logging.getLogger(__name__)

DELIVERY_EVERY = timedelta(minutes=1)
LINK_EVERY = timedelta(minutes=15)
PUBLISH_DELAY = 2.0  # seconds: sources changing together are published together
STOP_GRACE = 8.0  # seconds for work in flight at a stop; the web app gets the rest of 10
LEASE_MARGIN = timedelta(minutes=5)  # a poll's lease: the fetch timeout plus parsing
HELD_RETRY = timedelta(minutes=1)  # another worker holds the lease: look again then
MAX_JITTER = timedelta(minutes=5)
# What a reload cannot switch in a running process: the database, and where the web app
# listens (with the secret its links are signed with).
RESTART_NOTES = {
    "storage": "takes effect after a restart",
    "web": "takes effect after a restart",
}
SETTLE_CHECK = 0.5  # seconds between looks at other workers' polls before a digest


@dataclass(slots=True)
class _Switch:
    """A reload, prepared: the new config and what changes with it, ready to switch in."""

    settings: Settings
    changes: list[str] = field(default_factory=list)  # for the admin, a line each
    dropped: list[str] = field(default_factory=list)  # sources no longer polled
    polls: dict[str, datetime] = field(default_factory=dict)  # new or changed: next poll
    digest: BaseTrigger | None = None  # the new schedule's trigger, when it changed
    poller: Poller | None = None  # for new [ingest] settings


class Worker:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        *,
        owner: str,
        on_event: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.settings = settings
        # By name: a poll looks its source up, and a scan of 5,000 per poll is quadratic.
        self._sources = {source.name: source for source in settings.sources}
        self.store = store
        self.clock = clock
        self.owner = owner
        self.on_event = on_event
        self.on_reload: list[Callable[[Settings], None]] = []  # others that follow the config
        self.stopping = asyncio.Event()
        self.started_at: datetime | None = None
        self.last: dict[str, dict[str, Any]] = {}  # job -> when it last ran and how it went
        self.scheduler = AsyncIOScheduler(
            timezone=settings.site.tz,
            # The database decides what is due; a late run is still worth running, once.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._poller = Poller.open(settings, store, clock)
        self._polls: dict[asyncio.Task[Any], Poller] = {}  # polls in flight, by their poller
        # Replaced by a reload, closed once unused. A list: a Poller hashes its settings,
        # which hold lists.
        self._retired: list[Poller] = []
        self._running: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._changes = asyncio.Event()
        self.caught_up = asyncio.Event()  # the first polls and publish are done
        self.publish_delay = PUBLISH_DELAY
        self._delivery_lock = asyncio.Lock()
        self._publish_lock = asyncio.Lock()
        self._reload_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Schedule every job; what is due now (polls, a missed digest) starts at once."""
        self.started_at = self.clock.now()
        await self._sync_sources()
        self.scheduler.start()  # needs the running loop: AsyncIOScheduler uses it
        due = []
        states = await self._source_states()  # one read for all the sources
        for source in self._polled_sources():
            state = states.get(source.name)
            if state is not None and state.due(self.started_at):
                due.append(source.name)
            else:
                self._add_poll_job(source.name, self._next_poll(source, state))
        # What is due is polled first and published, then the digest is looked at: a digest
        # missed while no worker ran then includes what the sources posted meanwhile.
        self._spawn(self._first_round(due))
        now = datetime.now(UTC)
        self.scheduler.add_job(
            self._deliver_job,
            cron_trigger(self.settings.digest.schedule, self.settings.site.tz),
            id="digest",
        )
        self.scheduler.add_job(
            self._deliver_job,
            "interval",
            seconds=DELIVERY_EVERY.total_seconds(),
            next_run_time=now,
            id="deliveries",
        )
        self.scheduler.add_job(
            self._link_job, "interval", seconds=LINK_EVERY.total_seconds(), id="link"
        )
        if self.settings.bounces.imap is not None:
            self._add_bounces_job(now)
        self._spawn(self._publisher())

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Take no new work; let what runs finish (an SMTP transaction, a poll) for up to
        `grace` seconds, then cancel it: what was not sent stays in the ledger."""
        self.stopping.set()
        self._changes.set()  # wakes the publisher, which sees the stop
        if self.scheduler.running:
            self.scheduler.pause()
        running = set(self._running)
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                log.warning("stopping: cancelled %s", task.get_name())
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for poller in [*self._retired, self._poller]:
            await poller.aclose()

    async def reload(self, settings: Settings) -> list[str]:
        """Switch to a new, valid config, all or nothing; returns what changed, a line each.

        What the new config needs (a poller for new [ingest] settings, the sources' rows,
        each changed source's next poll, the digest's trigger) is made first, while the
        old config runs on; it is switched in only when all of that succeeded, in one step
        with no await in it. A failure raises and leaves the worker as it was.
        """
        if self.stopping.is_set():
            return ["stopping: ignored"]
        async with self._reload_lock:  # each reload is prepared against the config in use
            switch = await self._prepare(settings)
            self._switch_to(switch)
            return switch.changes

    def state(self) -> dict[str, Any]:
        """What /healthz says about the worker."""
        jobs = {job.id: job.next_run_time for job in self.scheduler.get_jobs()}
        return {
            "owner": self.owner,
            "started_at": self.started_at,
            "stopping": self.stopping.is_set(),
            "next_runs": dict(sorted(jobs.items())),
            "last": self.last,
        }

    def request_publish(self) -> None:
        self._changes.set()

    async def _first_round(self, due: list[str]) -> None:
        await asyncio.gather(*(self._poll_job(name) for name in due))
        # Published even when nothing was due: templates or settings may have changed.
        self._changes.clear()
        await self._run_job("publish", self._link_and_publish())
        self.caught_up.set()

    # -- polling ---------------------------------------------------------------------------

    async def _poll_job(self, name: str) -> None:
        await self._run_job(f"poll:{name}", self._poll(name))

    async def _poll(self, name: str) -> None:
        source = self._sources.get(name)
        if source is None or not source.enabled or self.stopping.is_set():
            return
        not_before: datetime | None = None
        task = asyncio.current_task()
        assert task is not None
        self._polls[task] = poller = self._poller
        try:
            report = await self._poll_leased(source, poller)
            if report is None:
                not_before = self.clock.now() + min(source.every, HELD_RETRY)
            else:
                self._report_poll(report)
        finally:
            del self._polls[task]
            # A reload while this poll ran may have dropped the source or changed its `every`.
            current = self._sources.get(name)
            if current is not None and current.enabled and not self.stopping.is_set():
                await self._schedule_poll(current, not_before=not_before)

    async def _poll_leased(self, source: SourceSettings, poller: Poller) -> SourceReport | None:
        """Poll `source` if it is due and no other worker is at it; None when one is."""
        key, now = f"poll:{source.name}", self.clock.now()
        lease = self._poll_lease()
        holder = await self.store.get_run(key)
        dead = dead_owners({holder.owner}, self.owner) if holder else set()
        if not await self.store.lease_run(
            key, self.owner, now, expired_before=now - lease, dead_owners=dead
        ):
            return None
        try:
            # Read after taking the lease: another worker may have polled it a moment ago.
            state = await self.store.source_state(source.name)
            if state is None or not state.due(self.clock.now()):
                return SourceReport(source.name, "not due")
            report, polled = await poller.guarded(source, state)
            await self.store.save_source_states([polled])
            return report
        finally:
            await self.store.finish_run(key, self.clock.now())

    def _report_poll(self, report: SourceReport) -> None:
        if report.status == "failed":
            self.on_event(f"poll {report.name}: failed: {report.error}")
        elif report.new or report.updated:
            self.on_event(f"poll {report.name}: {report.new} new, {report.updated} updated")
            self.request_publish()

    async def _schedule_poll(
        self, source: SourceSettings, *, not_before: datetime | None = None, jitter: bool = True
    ) -> None:
        """Schedule the source's next poll for when the database says it is due."""
        self._add_poll_job(
            source.name, await self._poll_time(source, not_before=not_before, jitter=jitter)
        )

    async def _poll_time(
        self, source: SourceSettings, *, not_before: datetime | None = None, jitter: bool = True
    ) -> datetime:
        """When the source is next due, by the database; `every` from now if it cannot say."""
        try:
            state = await self.store.source_state(source.name)
        except Exception:  # the database is away: look again after `every`
            log.exception("cannot read the poll state", extra={"source": source.name})
            state = None
        return self._next_poll(source, state, not_before=not_before, jitter=jitter)

    def _next_poll(
        self,
        source: SourceSettings,
        state: SourceState | None,
        *,
        not_before: datetime | None = None,
        jitter: bool = True,
    ) -> datetime:
        """When the source is next due by its `state`; `every` from now without one."""
        now = self.clock.now()
        if state is None or state.disabled_reason is not None:
            # Disabled after a 410 until polled by hand: only look at the state again.
            when = now + source.every
        else:
            when = max(state.next_poll_at or now, now)
        if jitter:
            spread = min(source.every / 10, MAX_JITTER).total_seconds()
            when += timedelta(seconds=random.uniform(0, spread))  # noqa: S311 (not secret)
        if not_before is not None:
            when = max(when, not_before)
        return when

    def _add_poll_job(self, name: str, when: datetime) -> None:
        self.scheduler.add_job(
            self._poll_job,
            "date",
            run_date=self._scheduler_time(when),
            args=[name],
            id=f"poll:{name}",
            replace_existing=True,
        )

    async def _retire(self, poller: Poller) -> None:
        """Close a poller replaced by a reload once the polls using it are done."""
        users = [task for task, used in self._polls.items() if used is poller]
        await asyncio.gather(*users, return_exceptions=True)
        await poller.aclose()
        self._retired.remove(poller)

    # -- reloading -------------------------------------------------------------------------

    async def _prepare(self, settings: Settings) -> _Switch:
        """Everything `settings` needs, made without touching what runs (but the source rows,
        written last: nothing that can fail comes after them)."""
        old = self.settings
        switch = _Switch(settings)
        for section, note in RESTART_NOTES.items():
            if getattr(old, section) != getattr(settings, section):
                switch.changes.append(f"[{section}] changed: {note}")
        before = {s.name: s for s in old.sources if s.enabled}
        after = {s.name: s for s in settings.sources if s.enabled}
        for name in before:
            if name not in after:
                switch.dropped.append(name)
                switch.changes.append(f"source {name}: no longer polled")
        changed = [source for name, source in after.items() if before.get(name) != source]
        for source in changed:
            switch.changes.append(
                f"source {source.name}: {'changed' if source.name in before else 'added'}"
            )
        if old.digest.schedule != settings.digest.schedule or old.site.tz != settings.site.tz:
            switch.digest = cron_trigger(settings.digest.schedule, settings.site.tz)
            switch.changes.append(f'digest schedule: "{settings.digest.schedule}"')
        if old.bounces != settings.bounces:
            imap = settings.bounces.imap
            switch.changes.append(
                f"bounce mailbox: {imap.host}:{imap.effective_port} {imap.folder}"
                if imap
                else "bounce mailbox: not read"
            )
        if old.ingest != settings.ingest:
            switch.poller = Poller.open(settings, self.store, self.clock)
        try:
            await self.store.sync_sources((s.name, s.url) for s in settings.sources)
            if changed:  # read after the sync: a new or moved source is due now
                states = await self._source_states()
                for source in changed:
                    switch.polls[source.name] = self._next_poll(
                        source, states.get(source.name), jitter=False
                    )
        except BaseException:
            if switch.poller is not None:
                await switch.poller.aclose()
            raise
        return switch

    def _switch_to(self, switch: _Switch) -> None:
        """Put a prepared config in place. No await: no job sees half of it."""
        bounces_before = self.settings.bounces
        self.settings = switch.settings
        if switch.settings.bounces != bounces_before:
            if switch.settings.bounces.imap is not None:
                self._add_bounces_job(datetime.now(UTC))
            elif self.scheduler.get_job("bounces"):
                self.scheduler.remove_job("bounces")
        self._sources = {source.name: source for source in switch.settings.sources}
        for name in switch.dropped:
            if self.scheduler.get_job(f"poll:{name}"):
                self.scheduler.remove_job(f"poll:{name}")
        for name, when in switch.polls.items():
            self._add_poll_job(name, when)
        if switch.digest is not None:
            self.scheduler.reschedule_job("digest", trigger=switch.digest)
        if switch.poller is not None:
            retired, self._poller = self._poller, switch.poller
            self._retired.append(retired)
            self._spawn(self._retire(retired))
        for follow in self.on_reload:
            try:
                follow(switch.settings)
            except Exception:  # the worker has switched: one follower must not undo that
                log.exception("%s did not follow the reload", follow)
        self.request_publish()  # templates, formats or forum settings may have changed

    # -- publishing ------------------------------------------------------------------------

    async def _link_job(self) -> None:
        # A coroutine: APScheduler would run a plain function in a thread, and asyncio
        # events are not thread-safe.
        self.request_publish()

    async def _publisher(self) -> None:
        while True:
            await self._changes.wait()
            if self.stopping.is_set():
                return
            await asyncio.sleep(self.publish_delay)
            if self.stopping.is_set():
                return
            self._changes.clear()
            await self._run_job("publish", self._link_and_publish())

    async def _link_and_publish(self) -> None:
        async with self._publish_lock:  # the first round and the publisher may meet
            await self._link_and_publish_now()

    async def _link_and_publish_now(self) -> None:
        linked = await link_discussions(self.settings, self.store, self.clock)
        if linked.linked or linked.failed:
            self.on_event(linked.summary())
        published = await publish(self.settings, self.store, self.clock)
        if published.written or published.removed or published.ping_failures:
            self.on_event(published.summary())

    # -- digest and deliveries -------------------------------------------------------------

    async def _deliver_job(self) -> None:
        await self._run_job("deliveries", self._deliver())

    async def _deliver(self) -> None:
        if not self.caught_up.is_set():
            stopping = asyncio.create_task(self.stopping.wait())
            caught_up = asyncio.create_task(self.caught_up.wait())
            await asyncio.wait([stopping, caught_up], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            caught_up.cancel()
            if self.stopping.is_set():
                return
        async with self._delivery_lock:  # the schedule and the minutely check may meet
            pending = await pending_digest(self.settings, self.store, self.clock.now())
            if pending is not None:
                if pending.run is None or pending.run.status != RunStatus.WAITING:
                    await self._settle()  # not for an issue built already, awaiting review
                run = await digest_if_due(
                    self.settings, self.store, self.clock, self.owner, stop=self.stopping
                )
                if run is not None:
                    self.on_event(run.summary())
                    # Its web copy is written: the list of past issues gets it.
                    self.request_publish()
            for approved in await send_approved(
                self.settings, self.store, self.clock, stop=self.stopping
            ):
                counts = approved.counts
                self.on_event(
                    f"sent {approved.issue.period} (approved): sent {counts.sent}, "
                    f"deferred {counts.deferred}, failed {counts.failed}"
                )
                self.request_publish()
            for retried in await retry_deliveries(
                self.settings, self.store, self.clock, stop=self.stopping
            ):
                counts = retried.counts
                self.on_event(
                    f"retried {retried.issue.period}: sent {counts.sent}, "
                    f"deferred {counts.deferred}, failed {counts.failed}"
                )

    async def _settle(self) -> None:
        """Before an issue is built: let the polls other workers have in flight store their
        posts (at a catch-up every source is due at once), and give the posts their threads."""
        lease = self._poll_lease()
        now = self.clock.now()
        in_flight = await self.store.running_leases(
            "poll:", exclude_owner=self.owner, expired_before=now - lease
        )
        deadline = asyncio.get_running_loop().time() + lease.total_seconds()
        while in_flight and not self.stopping.is_set():
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(SETTLE_CHECK)
            now = self.clock.now()
            current = await self.store.running_leases(
                "poll:", exclude_owner=self.owner, expired_before=now - lease
            )
            # Only the polls that were running count: new ones may start all the time.
            in_flight = {k: at for k, at in in_flight.items() if current.get(k) == at}
        async with self._publish_lock:
            await link_discussions(self.settings, self.store, self.clock)
        self.request_publish()

    # -- bounces ---------------------------------------------------------------------------

    def _add_bounces_job(self, first: datetime | None = None) -> None:
        self.scheduler.add_job(
            self._bounces_job,
            "interval",
            seconds=self.settings.bounces.every.total_seconds(),
            next_run_time=first,
            id="bounces",
            replace_existing=True,
        )

    async def _bounces_job(self) -> None:
        await self._run_job("bounces", self._poll_bounces())

    async def _poll_bounces(self) -> None:
        """Read the bounce mailbox, holding the `bounces` lease so that one worker at a time
        does (two would fetch the same mail; it would act once, but be read twice)."""
        if self.settings.bounces.imap is None or self.stopping.is_set():
            return
        key, now = "bounces", self.clock.now()
        lease = timedelta(seconds=self.settings.bounces.imap.timeout) + LEASE_MARGIN
        holder = await self.store.get_run(key)
        dead = dead_owners({holder.owner}, self.owner) if holder else set()
        if not await self.store.lease_run(
            key, self.owner, now, expired_before=now - lease, dead_owners=dead
        ):
            return
        error = None
        try:
            report = await poll_mailbox(self.settings, self.store, self.clock)
            error = report.error
            if report.mails:
                counts = ", ".join(f"{name} {n}" for name, n in sorted(report.outcomes.items()))
                mails = f"{report.mails} mail{'' if report.mails == 1 else 's'}"
                self.on_event(f"bounces: {mails} ({counts or 'read before'})")
        finally:
            await self.store.finish_run(key, self.clock.now(), error)
        if error is not None:
            self.on_event(f"bounces: {error}")

    # -- plumbing --------------------------------------------------------------------------

    def _poll_lease(self) -> timedelta:
        return timedelta(seconds=self.settings.ingest.total_timeout) + LEASE_MARGIN

    async def _run_job(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        """Run one job: tracked (a stop waits for it), timed, and its failure logged, never
        raised (the worker carries on; the next run tries again)."""
        task = asyncio.current_task()
        assert task is not None
        task.set_name(name)
        self._running.add(task)
        started = self.clock.now()
        try:
            await work
            self.last[name] = {"at": started, "ok": True}
        except Exception as error:
            log.exception("job %s failed", name, extra={"job": name})
            self.last[name] = {"at": started, "ok": False, "error": f"{error}"}
            self.on_event(f"{name}: failed: {type(error).__name__}: {error}")
        finally:
            self._running.discard(task)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _sync_sources(self) -> None:
        await self.store.sync_sources((s.name, s.url) for s in self.settings.sources)

    async def _source_states(self) -> dict[str, SourceState]:
        return {state.name: state for state in await self.store.source_states()}

    def _polled_sources(self) -> list[SourceSettings]:
        return [source for source in self.settings.sources if source.enabled]

    def _scheduler_time(self, moment: datetime) -> datetime:
        # The scheduler runs on the system clock; `moment` is on ours (frozen in tests).
        return datetime.now(UTC) + (moment - self.clock.now())
