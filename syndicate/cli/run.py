"""`syndicate run`: the main job, long-running (scheduler and web app) or `--once`."""

from __future__ import annotations

import sys

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async
from syndicate.terminal import say


@cli.command()
@click.option(
    "--once", is_flag=True, help="Do what is due now and exit (for cron or a systemd timer)."
)
@click.option("--no-web", is_flag=True, help="Do not serve the web app; only the scheduled jobs.")
@click.option("--host", metavar="HOST", help="Web app address (default: [web] host).")
@click.option("--port", type=click.IntRange(0, 65535), help="Web app port (default: [web] port).")
@click.option("--no-access-log", is_flag=True, help="Do not log every web request.")
@pass_app
def run(
    app: AppContext,
    once: bool,
    no_web: bool,
    host: str | None,
    port: int | None,
    no_access_log: bool,
) -> None:
    """Run the worker: poll each source on its schedule, link discussions, publish the
    feeds, send the digest when it is due, retry deferred deliveries, and serve the web app.

    Runs until Ctrl-C or SIGTERM, which stop it gracefully (a second one stops it at once).
    SIGHUP, or saving the config file, reloads the config; an invalid one is reported and
    the running one kept. Several workers may share a PostgreSQL database.

    With --once: do everything that is due now, print what was done and exit, with status 1
    if something failed.

    \b
    Example:
      syndicate run
      syndicate run --once
      syndicate --config /etc/syndicate/config.toml run --no-web
    """
    settings = app.settings
    if once:
        from syndicate.pipeline import run_once

        report = run_async(run_once(settings, app.clock))
        for line in report.lines:
            say(line)
        if report.failed:
            sys.exit(1)
        return
    from syndicate.daemon import run_worker

    run_async(
        run_worker(
            settings,
            app.config_file,
            app.clock,
            echo=say,  # the worker's events quote feed and mail servers
            web=not no_web,
            host=host,
            port=port,
            access_log=not no_access_log,
        )
    )
