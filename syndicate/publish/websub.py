"""WebSub publish pings: tell the hub which feed URLs changed.

A failed ping is logged and left pending; the next publish tries it again. It is never
fatal: feed readers still poll.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import httpx

from syndicate import __version__

log = logging.getLogger(__name__)


async def ping_hub(
    hub: str,
    topic_urls: Iterable[str],
    *,
    timeout_seconds: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> set[str]:
    """POST hub.mode=publish for each URL; return the URLs the hub accepted (2xx)."""
    accepted: set[str] = set()
    async with httpx.AsyncClient(
        timeout=timeout_seconds,
        transport=transport,
        headers={"User-Agent": f"syndicate/{__version__}"},
    ) as client:
        for url in topic_urls:
            try:
                response = await client.post(hub, data={"hub.mode": "publish", "hub.url": url})
            except httpx.HTTPError as error:
                log.warning(
                    "WebSub ping to %s for %s failed: %s (will retry)",
                    hub,
                    url,
                    type(error).__name__,
                )
                continue
            if response.is_success:
                accepted.add(url)
            else:
                log.warning(
                    "WebSub hub %s answered %d for %s (will retry)", hub, response.status_code, url
                )
    return accepted
