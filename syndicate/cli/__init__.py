"""The `syndicate` command: thin click commands over the service functions.

Domain errors become one line on stderr and an exit code (1 operational, 2 usage or
config); nothing else reaches the user as a traceback.
"""

from syndicate.cli import (
    admin,
    bounces,
    check,
    db,
    digest,
    forum,
    ingest,
    publish,
    run,
    serve,
    sources,
    status,
    subscribers,
)
from syndicate.cli.app import cli

__all__ = [
    "admin",
    "bounces",
    "check",
    "cli",
    "db",
    "digest",
    "forum",
    "ingest",
    "main",
    "publish",
    "run",
    "serve",
    "sources",
    "status",
    "subscribers",
]


def main() -> None:
    cli(prog_name="syndicate")
