"""The click group and what every command shares (config, clock, error handling).

Domain errors become one line on stderr and an exit code (1 operational, 2 usage or
config); nothing else reaches the user as a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from syndicate import __version__, logs
from syndicate.clock import Clock, SystemClock
from syndicate.errors import ConfigError, SyndicateError
from syndicate.terminal import say

if TYPE_CHECKING:
    from syndicate.config import Settings

T = TypeVar("T")


@dataclass
class AppContext:
    """What every command gets: where the config is, how chatty to be, a clock, consoles."""

    config_option: str | None
    verbosity: int
    clock: Clock = field(default_factory=SystemClock)
    out: Console = field(default_factory=lambda: _console())
    _settings: Settings | None = None

    @property
    def config_file(self) -> Path:
        from syndicate.config import config_path

        return config_path(self.config_option)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from syndicate.config import load_settings

            self._settings = load_settings(self.config_file)
        return self._settings


pass_app = click.make_pass_decorator(AppContext)


def _console() -> Console:
    # Piped output (cron mail, logs, tests) gets wide lines rather than rich's 80 columns.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


class SyndicateGroup(click.Group):
    """Turns SyndicateError into one clear line and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SyndicateError as error:
            # Config problems already start with the file name; others get a label.
            prefix = "" if isinstance(error, ConfigError) else "error: "
            for line in str(error).splitlines() or [type(error).__name__]:
                say(f"{prefix}{line}", err=True)  # it may quote a server or a file
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=SyndicateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_option",
    metavar="PATH",
    envvar="SYNDICATE_CONFIG",
    help="Config file (default: $SYNDICATE_CONFIG, else ./config.toml).",
)
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv: debug).")
@click.version_option(__version__, "--version", prog_name="syndicate")
@click.pass_context
def cli(ctx: click.Context, config_option: str | None, verbose: int) -> None:
    """Ingest blog feeds, publish RSS/Atom/JSON feeds, link forum threads and send a
    monthly digest.

    \b
    Example:
      syndicate --config config.toml check
    """
    logs.configure(verbose)
    # Tests hand in a clock they control as click's `obj` (CliRunner.invoke(..., obj=clock)).
    clock: Clock = ctx.obj if ctx.obj is not None else SystemClock()
    ctx.obj = AppContext(config_option=config_option, verbosity=verbose, clock=clock)
