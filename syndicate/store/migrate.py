"""Alembic, driven from code: no alembic.ini, the store's own connection, one lock.

Every command opens the store, and so checks the schema; alembic is imported only when the
database is not at the newest revision (or that cannot be told without it): importing it
costs every command about 11 MiB of memory and its start-up time.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

# Arbitrary constant naming syndicate's migration lock among PostgreSQL advisory locks.
_PG_MIGRATION_LOCK = 0x5359_4E44
_VERSIONS = Path(__file__).parent / "migrations" / "versions"


class MigrationError(Exception):
    """Alembic could not migrate: most likely a newer syndicate's revision in the database."""


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "syndicate.store:migrations")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "no migrations packaged"
    return head


def newest_file_revision() -> str:
    """The newest revision by its file name ("0010_....py" is "0010"): the head, since the
    revisions are numbered one after another (tests/test_store_migrations.py checks that
    alembic agrees), without importing alembic."""
    numbers = [
        found[1]
        for path in _VERSIONS.glob("*.py")
        if (found := re.match(r"(\d{4})_", path.name)) is not None
    ]
    return max(numbers)


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> tuple[str | None, str]:
    """Bring the schema to head inside the caller's transaction; return (before, after).

    On PostgreSQL a transaction-scoped advisory lock makes concurrent starters wait for
    the first one instead of racing to create the same tables.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    head = newest_file_revision()
    if _stored_revision(connection) == head:  # the usual case: nothing to do, no alembic
        return head, head
    from alembic import command
    from alembic.util import CommandError

    try:
        before = current_revision(connection)
        head = head_revision()
        if before != head:
            log.info("migrating database schema from %s to %s", before or "empty", head)
            command.upgrade(_config(connection), "head")
    except CommandError as error:
        raise MigrationError(str(error)) from error
    return before, head


def _stored_revision(connection: Connection) -> str | None:
    """The one revision alembic's table holds; None if it holds none, several, or is not
    there (a new database): then alembic decides."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return rows[0][0] if len(rows) == 1 else None
