"""Alembic environment. The store runs migrations on a connection it already holds
(``config.attributes["connection"]``), so there is no alembic.ini and no URL here."""

from alembic import context

from syndicate.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
