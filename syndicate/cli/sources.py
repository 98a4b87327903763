"""`syndicate sources ...`: list sources with their health; OPML import and export."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async
from syndicate.errors import ConfigError, UsageError
from syndicate.terminal import cell

if TYPE_CHECKING:
    from syndicate.models import SourceState


@cli.group(invoke_without_command=True)
@click.pass_context
def sources(ctx: click.Context) -> None:
    """List sources with their health (or manage them with a subcommand).

    \b
    Example:
      syndicate sources
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_sources)


@sources.command("list")
@pass_app
def list_sources(app: AppContext) -> None:
    """Show each source's health: last poll, HTTP status, failures, next poll, posts.

    \b
    Example:
      syndicate sources list
    """
    from rich.table import Table

    from syndicate.store import Store

    settings = app.settings

    async def go() -> tuple[dict[str, SourceState], dict[str, int]]:
        async with await Store.open(settings.database_url) as store:
            await store.sync_sources((s.name, s.url) for s in settings.sources)
            states = {s.name: s for s in await store.source_states()}
            counts = await store.post_counts()  # one query, not one per source
            return states, counts

    states, counts = run_async(go())
    table = Table(show_edge=False, pad_edge=False)
    for column in ("source", "health", "last poll", "http", "next poll", "posts", "error"):
        table.add_column(column, overflow="fold")
    for source in settings.sources:
        state = states[source.name]
        table.add_row(
            *map(
                cell,
                (
                    source.name,
                    _health(state, source.enabled),
                    _when(state.last_polled_at),
                    state.last_status or "-",
                    _when(state.next_poll_at),
                    counts.get(source.name, 0),
                    state.last_error or "",  # a feed server's words
                ),
            )
        )
    app.out.print(table)


@sources.command("import-opml")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def import_opml(app: AppContext, file: Path) -> None:
    """Add the feeds of an OPML file to config.toml as [[sources]] (comments are kept).

    Feeds whose URL is already configured are skipped. The new config is validated before
    it is written.

    \b
    Example:
      syndicate sources import-opml partners.opml
    """
    from syndicate.opml import add_to_config, parse_opml

    config_file = app.config_file
    try:
        feeds = parse_opml(file.read_bytes())
    except ValueError as error:
        raise UsageError(f"{file}: {error}") from None
    app.settings  # noqa: B018 (refuse to edit a config that is already broken)
    text, added, skipped = add_to_config(config_file.read_text(encoding="utf-8"), feeds)
    _write_validated(config_file, text)
    click.echo(
        f"added {len(added)} sources to {config_file}" + (f": {', '.join(added)}" if added else "")
    )
    if skipped:
        click.echo(f"skipped {len(skipped)} already configured")


@sources.command("export-opml")
@pass_app
def export_opml(app: AppContext) -> None:
    """Print the configured sources as OPML 2.0.

    \b
    Example:
      syndicate sources export-opml > sources.opml
    """
    from syndicate.opml import render_opml

    click.echo(render_opml(app.settings), nl=False)


def _write_validated(path: Path, text: str) -> None:
    """Write only a config that loads; atomically, so a crash leaves the old file."""
    from syndicate.config import load_settings

    folder = path.resolve().parent
    handle, temp_name = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=folder)
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        try:
            load_settings(temp)
        except ConfigError as error:
            raise ConfigError(
                [line.replace(str(temp), str(path)) for line in error.problems]
            ) from None
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)


def _health(state: SourceState, enabled: bool) -> str:
    if not enabled:
        return "disabled in config"
    if state.disabled_reason:
        return f"stopped: {state.disabled_reason}"
    if state.last_polled_at is None:
        return "never polled"
    if state.consecutive_failures:
        return f"failing ({state.consecutive_failures}x)"
    return "ok"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"
