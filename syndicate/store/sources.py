"""Sources' fetch state. The config lists sources; these rows remember how polling went."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from syndicate.models import SourceState
from syndicate.store.base import Queries
from syndicate.store.tables import sources
from syndicate.store.versions import bump


class SourceQueries(Queries):
    async def sync_sources(self, configured: Iterable[tuple[str, str]]) -> None:
        """Make the rows match the config's (name, url) pairs.

        A new source gets a fresh row; a source whose URL changed starts over (its
        validators and redirects belonged to the old URL); a removed one is deleted.
        """
        wanted = dict(configured)
        async with self.write() as conn:
            # Two workers starting together on PostgreSQL both read the rows before either
            # inserts: the second one's insert of the same name must not fail its start.
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            rows = (await conn.execute(select(sources.c.name, sources.c.url))).all()
            known = {name: url for name, url in rows}
            # One statement run for many rows (executemany), never one with a value per
            # source: SQLite caps a statement at 32,766 variables.
            stale = [{"gone": name} for name in known if wanted.get(name) != known[name]]
            if stale:
                await conn.execute(
                    delete(sources).where(sources.c.name == bindparam("gone")), stale
                )
            new = [
                {"name": name, "url": url, "consecutive_failures": 0}
                for name, url in wanted.items()
                if known.get(name) != url
            ]
            if new:
                await conn.execute(
                    dialect.insert(sources).on_conflict_do_nothing(index_elements=["name"]), new
                )

    async def source_states(self) -> list[SourceState]:
        async with self.read() as conn:
            rows = (await conn.execute(select(sources).order_by(sources.c.name))).all()
        return [SourceState(**row._mapping) for row in rows]

    async def source_state(self, name: str) -> SourceState | None:
        async with self.read() as conn:
            row = (await conn.execute(select(sources).where(sources.c.name == name))).first()
        return SourceState(**row._mapping) if row else None

    async def save_source_states(self, states: Sequence[SourceState]) -> None:
        """Save many sources' poll results in one transaction."""
        if not states:
            return
        fields = [field for field in SourceState.__slots__ if field != "name"]
        async with self.write() as conn:
            await conn.execute(
                update(sources)
                .where(sources.c.name == bindparam("source_name"))
                .values({field: bindparam(field) for field in fields}),
                [{"source_name": s.name, **{f: getattr(s, f) for f in fields}} for s in states],
            )
            await bump(conn)  # the sources' titles and links are shown with their posts
