"""Job runs: a row per periodic run, whose unique key makes each run happen once."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import ColumnElement, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from syndicate.models import JobRun
from syndicate.statuses import RunStatus
from syndicate.store.base import Queries
from syndicate.store.tables import job_runs


class RunQueries(Queries):
    async def claim_run(self, key: str, owner: str, now: datetime) -> bool:
        """Start the run `key` unless it ran or is running; True when this caller owns it.

        A run that failed may be claimed again; one that is running or done may not.
        """
        return await self._start_run(key, owner, now, job_runs.c.status == RunStatus.FAILED)

    async def begin_run(self, key: str, owner: str, now: datetime) -> bool:
        """Mark the run `key` running for `owner` unless it is done; False when it is done.

        For runs whose work is safe to repeat or share (a digest: its issue is built once and
        the ledger decides what is sent), so a run left "running" by a crash is taken over.
        """
        return await self._start_run(key, owner, now, job_runs.c.status != RunStatus.DONE)

    async def lease_run(
        self,
        key: str,
        owner: str,
        now: datetime,
        *,
        expired_before: datetime,
        dead_owners: Collection[str] = (),
    ) -> bool:
        """Hold the run `key` as a lease (one source's poll): True unless another owner holds
        it, started after `expired_before` and is not among `dead_owners`.

        For work that must not run twice at once but runs again and again under one key;
        `finish_run` releases it, and a holder that crashed loses it when the lease expires.
        """
        restartable = or_(
            job_runs.c.status != RunStatus.RUNNING,
            job_runs.c.started_at < expired_before,
            job_runs.c.owner.in_(list(dead_owners)),
        )
        return await self._start_run(key, owner, now, restartable)

    async def running_leases(
        self, prefix: str, *, exclude_owner: str, expired_before: datetime
    ) -> dict[str, datetime]:
        """Runs under `prefix` others hold now (key -> started_at), leases not yet expired."""
        async with self.read() as conn:
            rows = await conn.execute(
                select(job_runs.c.key, job_runs.c.started_at).where(
                    job_runs.c.key.startswith(prefix, autoescape=True),
                    job_runs.c.status == RunStatus.RUNNING,
                    job_runs.c.owner != exclude_owner,
                    job_runs.c.started_at >= expired_before,
                )
            )
            return {key: started_at for key, started_at in rows}

    async def _start_run(
        self, key: str, owner: str, now: datetime, restartable: ColumnElement[bool]
    ) -> bool:
        # The insert, not an earlier read, decides who starts a new run: the key is unique.
        try:
            async with self.write() as conn:
                await conn.execute(
                    insert(job_runs).values(
                        key=key, status=RunStatus.RUNNING, owner=owner, started_at=now
                    )
                )
            return True
        except IntegrityError:
            pass
        async with self.write() as conn:
            result = await conn.execute(
                update(job_runs)
                .where(job_runs.c.key == key, restartable)
                .values(
                    status=RunStatus.RUNNING,
                    owner=owner,
                    started_at=now,
                    finished_at=None,
                    error=None,
                )
            )
            return result.rowcount == 1

    async def finish_run(self, key: str, now: datetime, error: str | None = None) -> None:
        async with self.write() as conn:
            await conn.execute(
                update(job_runs)
                .where(job_runs.c.key == key)
                .values(
                    status=RunStatus.FAILED if error else RunStatus.DONE,
                    finished_at=now,
                    error=error,
                )
            )

    async def wait_run(self, key: str, now: datetime) -> None:
        """The run `key` is not done but has nothing to do until something changes (a digest
        awaiting review): any worker takes it up again, as after a failure."""
        async with self.write() as conn:
            await conn.execute(
                update(job_runs)
                .where(job_runs.c.key == key)
                .values(status=RunStatus.WAITING, finished_at=now, error=None)
            )

    async def get_run(self, key: str) -> JobRun | None:
        async with self.read() as conn:
            row = (await conn.execute(select(job_runs).where(job_runs.c.key == key))).first()
        return JobRun(**row._mapping) if row else None
