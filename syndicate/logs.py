"""Logging to stderr, leveled, naming the source or subscriber a line concerns.

Pass context as ``log.warning("...", extra={"source": name})``; it is printed as
``[source=name]`` so a line can be traced back to the feed or address it is about.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from syndicate.terminal import printable

CONTEXT_KEYS = ("source", "subscriber", "issue", "job")


class ContextFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        # Messages quote feed and mail servers: one line each, no control characters.
        record.message = printable(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return printable(super().formatException(ei), newlines=True)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{key}={getattr(record, key)}"
            for key in CONTEXT_KEYS
            if getattr(record, key, None) is not None
        )
        return f"{line} [{context}]" if context else line


def configure(verbosity: int = 0) -> None:
    """0: warnings and errors; 1 (-v): progress; 2 (-vv): debugging, libraries included."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        ContextFormatter(
            "%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%Y-%m-%d %H:%M:%S"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if verbosity < 2 else logging.DEBUG)
    logging.getLogger("syndicate").setLevel(level)
    # Alembic announces every migration step at INFO; ours is one line already.
    logging.getLogger("alembic").setLevel(logging.WARNING if verbosity < 2 else logging.DEBUG)
