"""`syndicate admin`: the /admin dashboard's password, made into the hash the web app reads."""

from __future__ import annotations

import click

from syndicate.cli.app import cli


@cli.group()
def admin() -> None:
    """The /admin dashboard (README, "The dashboard").

    \b
    Example:
      syndicate admin hash-password
    """


@admin.command("hash-password")
@click.password_option(
    "--password",
    prompt="Dashboard password",
    confirmation_prompt="Repeat it",
    help="Read from a prompt when not given (it would stay in the shell's history).",
)
def hash_password(password: str) -> None:
    """Print an argon2 hash of the dashboard's password, to put in the environment
    variable `[web] admin_password_env` names. The password itself is stored nowhere.

    \b
    Example:
      syndicate admin hash-password
      # then, in the service's environment (systemd: an EnvironmentFile=, mode 0600):
      SYNDICATE_ADMIN_PASSWORD='$argon2id$v=19$m=65536,t=3,p=4$...'
    """
    from syndicate.passwords import hash_password as argon2_hash

    if len(password) < 12:
        raise click.BadParameter("use at least 12 characters", param_hint="password")
    hashed = argon2_hash(password)
    click.echo(hashed)
    click.echo(
        "Put it in the environment variable [web] admin_password_env names, in single "
        "quotes (it contains $), e.g.\n"
        f"  export SYNDICATE_ADMIN_PASSWORD='{hashed}'",
        err=True,
    )
