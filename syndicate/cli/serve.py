"""`syndicate serve`: the web app (feeds, home page, subscriptions, health) under uvicorn."""

from __future__ import annotations

import contextlib

import click

from syndicate.cli.app import AppContext, cli, pass_app, run_async


@cli.command("serve")
@click.option("--host", metavar="HOST", help="Address to listen on (default: [web] host).")
@click.option(
    "--port", type=click.IntRange(0, 65535), help="Port to listen on (default: [web] port)."
)
@click.option("--no-access-log", is_flag=True, help="Do not log every request.")
@pass_app
def serve_command(app: AppContext, host: str | None, port: int | None, no_access_log: bool) -> None:
    """Serve the feeds, the home page and the subscription pages over HTTP.

    Listens on [web] host and port until Ctrl-C (or SIGTERM), then finishes the requests
    in flight and stops. Put a TLS-terminating proxy (nginx, Caddy) in front of it.

    \b
    Example:
      syndicate serve --host 0.0.0.0 --port 8080    # on every network interface

    /metrics then still answers only loopback clients (127.0.0.0/8, ::1), unless [web]
    metrics_allow lists other networks or [web] metrics_token_env names a variable holding
    a bearer token; anyone else gets a 404.
    """
    from syndicate.web.server import serve

    settings = app.settings

    def ready(url: str) -> None:
        click.echo(f"serving {settings.site.title} on {url} (Ctrl-C to stop)")

    # uvicorn shuts down gracefully on Ctrl-C and then re-raises it; for a server that is
    # the normal way to stop, not an error.
    with contextlib.suppress(KeyboardInterrupt):
        run_async(
            serve(settings, host=host, port=port, access_log=not no_access_log, on_ready=ready)
        )
    click.echo("stopped")
