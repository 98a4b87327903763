"""Subscribing on the web: /subscribe, /confirm/<token>, /unsubscribe/<token>, /preferences/<token>.

(The routes are being written; `csrf_token` is here first because the home page needs it.)
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from syndicate.web.csrf import csrf_token

__all__ = ["csrf_token", "routes"]


def routes() -> list[BaseRoute]:
    return []
