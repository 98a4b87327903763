"""Alembic, driven from code: no alembic.ini, the store's own connection, one lock."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

log = logging.getLogger(__name__)

# Arbitrary constant naming syndicate's migration lock among PostgreSQL advisory locks.
_PG_MIGRATION_LOCK = 0x5359_4E44


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "syndicate.store:migrations")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "no migrations packaged"
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> tuple[str | None, str]:
    """Bring the schema to head inside the caller's transaction; return (before, after).

    On PostgreSQL a transaction-scoped advisory lock makes concurrent starters wait for
    the first one instead of racing to create the same tables.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    before = current_revision(connection)
    head = head_revision()
    if before != head:
        log.info("migrating database schema from %s to %s", before or "empty", head)
        command.upgrade(_config(connection), "head")
    return before, head
