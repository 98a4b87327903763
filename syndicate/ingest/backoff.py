"""When to poll a source next, after a success or a failure."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from syndicate.models import SourceState

MAX_BACKOFF = timedelta(hours=24)
MAX_ERROR_LENGTH = 500


def after_success(
    state: SourceState, *, now: datetime, every: timedelta, status: int
) -> SourceState:
    return replace(
        state,
        last_polled_at=now,
        last_success_at=now,
        last_status=status,
        last_error=None,
        consecutive_failures=0,
        next_poll_at=now + every,
        disabled_reason=None,
    )


def after_failure(
    state: SourceState,
    *,
    now: datetime,
    every: timedelta,
    error: str,
    status: int | None = None,
    retry_after: timedelta | None = None,
    gone: bool = False,
) -> SourceState:
    """Back off exponentially (every, 2x, 4x ... capped at a day); honour Retry-After;
    stop polling a source the server says is gone (410) until someone polls it by hand."""
    failures = state.consecutive_failures + 1
    delay = min(every * 2 ** (failures - 1), MAX_BACKOFF)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return replace(
        state,
        last_polled_at=now,
        last_status=status,
        last_error=error[:MAX_ERROR_LENGTH],
        consecutive_failures=failures,
        next_poll_at=now + delay,
        disabled_reason=f"410 Gone on {now:%Y-%m-%d}" if gone else state.disabled_reason,
    )
