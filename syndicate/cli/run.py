"""`syndicate run`: the main job."""

from __future__ import annotations

import sys

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async
from syndicate.pipeline import run_once


@cli.command()
@pass_app
def run(app: AppContext) -> None:
    """Run the main job once: poll the sources that are due, link discussions, publish.

    \b
    Example:
      syndicate --config config.toml run
    """
    report = run_async(run_once(app.settings, app.clock))
    for line in report.lines:
        click.echo(line)
    if report.failed:
        sys.exit(1)
