"""(to be written)"""

from __future__ import annotations

from typing import Any

from starlette.middleware import Middleware

from syndicate.config import Settings


def middleware(settings: Settings) -> list[Middleware]:
    return []


def exception_handlers() -> dict[Any, Any]:
    return {}
