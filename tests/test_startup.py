"""Start-up stays light: `--version` and every command's `--help` import no heavy library.

Issue 18: `syndicate --version` took 2.6 s because every command imported the whole package
(SQLAlchemy, Alembic, Starlette, pydantic...) before parsing its arguments. The time itself is
measured in bench/scale.py (startup stage); this test fails as soon as a heavy import creeps
back to a command module's top level.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from syndicate.cli.db import COPY_BATCH_SIZE
from syndicate.store.copy import BATCH_SIZE

HEAVY = (
    "sqlalchemy",
    "alembic",
    "pydantic",
    "jinja2",
    "starlette",
    "uvicorn",
    "feedparser",
    "feedgen",
    "httpx",
    "aiosmtplib",
    "apscheduler",
    "nh3",
    "psycopg",
)

# In a fresh interpreter: --version, the group's --help, then every command's and
# subcommand's --help, each through click as the shell would call them; then which heavy
# modules got imported along the way.
PROBE = textwrap.dedent(
    """
    import sys
    import click
    from syndicate.cli import cli

    def paths(command, prefix):
        yield prefix
        if isinstance(command, click.Group):
            for name in command.list_commands(None):
                yield from paths(command.get_command(None, name), [*prefix, name])

    for args in (["--version"], *([*path, "--help"] for path in paths(cli, []))):
        try:
            cli.main(args, prog_name="syndicate", standalone_mode=False)
        except SystemExit:
            pass
    heavy = sys.argv[1].split(",")
    print("imported:", ",".join(sorted({name.split(".")[0] for name in sys.modules} & set(heavy))))
    """
)


def test_help_and_version_import_no_heavy_library():
    done = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Usage: syndicate digest send" in done.stdout  # every --help really ran
    assert "syndicate, version" in done.stdout
    imported = done.stdout.rsplit("imported:", 1)[1].strip()
    assert imported == "", f"--help/--version imported {imported}"


def test_command_does_import_what_it_needs(tmp_path):
    """The other side: the imports moved into the commands still happen when they run."""
    done = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(tmp_path / "missing.toml"), "check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "missing.toml" in done.stderr


def test_copy_batch_size_default_matches_the_store():
    assert COPY_BATCH_SIZE == BATCH_SIZE
