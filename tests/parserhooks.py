"""Parse tasks for ParserPool tests. A module of its own: the pool's spawned processes import
it by name to unpickle the task."""

from __future__ import annotations

import os
from datetime import datetime

from syndicate.ingest.workers import ParsedSource, parse_and_normalise

CRASH = b"<!-- crash the parser process -->"  # it exits at once, as a segfault would
SPIN = b"<!-- spin in the parser process -->"  # it spins until its CPU limit kills it


def crash_or_parse(
    body: bytes,
    url: str,
    content_type: str | None,
    source: str,
    default_category: str | None,
    now: datetime,
    language: str | None = None,
) -> ParsedSource:
    if CRASH in body:
        os._exit(70)
    while SPIN in body:
        pass
    return parse_and_normalise(body, url, content_type, source, default_category, now, language)
