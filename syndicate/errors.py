"""The exception tree. Code raises domain errors; only the edges translate them.

    SyndicateError                 anything syndicate itself reports
    ├── ConfigError                the config file is missing, unreadable or invalid (exit 2)
    ├── StoreError                 the database cannot be reached or migrated (exit 1)
    └── SourceError                one source could not be fetched or parsed; the rest go on

The CLI prints ``str(error)`` as one line (one line per problem for ConfigError) and exits
with ``error.exit_code``; the worker logs it and carries on.
"""

from __future__ import annotations


class SyndicateError(Exception):
    """Base class: an error meant for the user, with a message that needs no traceback."""

    exit_code = 1


class ConfigError(SyndicateError):
    """The configuration cannot be used. ``problems`` holds one line per bad key."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class StoreError(SyndicateError):
    """The database cannot be opened, migrated or queried."""


class SourceError(SyndicateError):
    """One source failed (fetch, size, parse). ``source`` names it."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        super().__init__(f"{source}: {message}")
