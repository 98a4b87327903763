"""/healthz and /metrics: what a load balancer and Prometheus ask.

/healthz is 200 while the database can be read and 503 when it cannot (the app can do
nothing useful without it): unreachable, a table that cannot be read, or, on SQLite, damage
that PRAGMA quick_check finds (health.py: at the first request and then at most every
INTEGRITY_EVERY, as it reads the whole file). The body says when sources were last polled
and, under `syndicate run`, what the scheduler is doing.

/metrics reads the store at scrape time through a collector registered in a registry of its
own per scrape: no process-global state, so several apps in one process (tests) never see
each other's numbers. It answers only clients in `[web] metrics_allow` (loopback by
default) or bearing the token in the variable `[web] metrics_token_env` names; anyone
else gets the site's 404, as for a page that does not exist. The client is the address
uvicorn reports: the peer, or X-Forwarded-For when the peer is 127.0.0.1 (a local proxy,
syndicate/web/server.py).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from syndicate.config import Settings
from syndicate.config.settings import WebSettings, secret
from syndicate.errors import SyndicateError
from syndicate.models import SourceState
from syndicate.statuses import BounceKind, DeliveryStatus, InboundOutcome, SubscriberStatus
from syndicate.store import DatabaseHealth, Store
from syndicate.store.health import first_line
from syndicate.web.health import UNHEALTHY
from syndicate.web.services import services

log = logging.getLogger(__name__)

SEND_RATE_WINDOW = timedelta(minutes=5)
SUBSCRIBER_STATUSES = tuple(status.value for status in SubscriberStatus)
NO_CACHE = {"cache-control": "no-store"}


def routes(settings: Settings) -> list[BaseRoute]:
    """The routes; who may read /metrics is settled here, from the config the app starts
    with (like the rest of [web], it changes at a restart)."""
    access = MetricsAccess.of(settings.web)
    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/metrics", functools.partial(metrics, access=access), methods=["GET", "HEAD"]),
    ]


async def healthz(request: Request) -> Response:
    web = services(request)
    checker = web.health
    health = await checker.check()
    last_ingest = None
    if health.ok:
        try:
            last_ingest = last_polled(await web.store.source_states())
        except (SQLAlchemyError, SyndicateError, OSError) as error:
            health = checker.noted(DatabaseHealth("unreadable", first_line(error)))
    body: dict[str, Any] = {
        "status": "ok" if health.ok else "unavailable",
        "database": health.state,
    }
    if not health.ok:
        body["reason"] = UNHEALTHY[health.state]
    body["last_ingest_at"] = last_ingest.isoformat() if last_ingest else None
    body["now"] = web.clock.now().isoformat()
    if web.worker_state is not None:
        body["worker"] = _jsonable(web.worker_state())
    return JSONResponse(body, status_code=200 if health.ok else 503, headers=NO_CACHE)


def last_polled(states: list[SourceState]) -> datetime | None:
    times = [state.last_polled_at for state in states if state.last_polled_at]
    return max(times) if times else None


async def metrics(request: Request, *, access: MetricsAccess) -> Response:
    if not access.allows(request):
        raise HTTPException(404)
    web = services(request)
    snapshot = await take_snapshot(web.store, web.clock.now())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(snapshot))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST, headers=NO_CACHE)


@dataclass(frozen=True, slots=True)
class MetricsAccess:
    """Who may read /metrics: clients in `networks`, or bearing `token`."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    token: bytes | None

    @classmethod
    def of(cls, web: WebSettings) -> MetricsAccess:
        token = secret(web.metrics_token_env)
        return cls(tuple(web.metrics_allow), token.encode() if token else None)

    def allows(self, request: Request) -> bool:
        if self.token is not None and hmac.compare_digest(bearer_token(request), self.token):
            return True
        address = client_address(request)
        return address is not None and any(address in network for network in self.networks)


def bearer_token(request: Request) -> bytes:
    """The token of `Authorization: Bearer <token>`, as sent; b"" when there is none."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return b""
    return token.strip().encode("latin-1")  # the header's own bytes (Starlette decoded them)


def client_address(request: Request) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's IP address; an IPv4 client of a dual-stack socket as IPv4."""
    if request.client is None:
        return None
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:  # not an address (a Unix socket, a proxy's "unknown")
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(slots=True)
class Snapshot:
    """The store's numbers at one moment; empty (database_up False) when it is unreachable."""

    database_up: bool = False
    posts: dict[str, int] = field(default_factory=dict)
    sources: list[SourceState] = field(default_factory=list)
    deliveries: dict[str, int] = field(default_factory=dict)
    sent_recently: int = 0
    subscribers: dict[str, int] = field(default_factory=dict)
    bounce_events: dict[str, int] = field(default_factory=dict)  # by BounceKind, ever
    inbound_mail: dict[str, int] = field(default_factory=dict)  # by InboundOutcome, ever


async def take_snapshot(store: Store, now: datetime) -> Snapshot:
    try:
        return Snapshot(
            database_up=True,
            posts=await store.post_counts(),
            sources=await store.source_states(),
            deliveries=await store.delivery_counts(),
            sent_recently=await store.sent_since(now - SEND_RATE_WINDOW),
            subscribers={s: await store.count_subscribers(s) for s in SUBSCRIBER_STATUSES},
            bounce_events=await store.bounce_event_counts(),
            inbound_mail=await store.inbound_counts(),
        )
    except (SQLAlchemyError, SyndicateError, OSError) as error:
        # A scrape must still answer, so Prometheus records "database down" rather than a gap.
        log.warning("metrics: cannot read the store: %s", error)
        return Snapshot()


class StoreCollector(Collector):
    """Yields the metric families of one Snapshot (prometheus_client's custom collector)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        snap = self.snapshot
        yield _gauge(
            "syndicate_database_up",
            "1 when the database answers.",
            [],
            [([], 1.0 * snap.database_up)],
        )
        if not snap.database_up:
            return
        yield _gauge(
            "syndicate_posts",
            "Posts stored, per source.",
            ["source"],
            [([name], count) for name, count in sorted(snap.posts.items())],
        )
        yield _gauge(
            "syndicate_source_consecutive_failures",
            "Failed polls of a source since its last success.",
            ["source"],
            [([s.name], s.consecutive_failures) for s in snap.sources],
        )
        yield _gauge(
            "syndicate_source_last_poll_failed",
            "1 when the source's last poll failed.",
            ["source"],
            [([s.name], 1.0 * (s.consecutive_failures > 0)) for s in snap.sources],
        )
        yield _gauge(
            "syndicate_source_last_poll_timestamp_seconds",
            "When the source was last polled (Unix time).",
            ["source"],
            [([s.name], s.last_polled_at.timestamp()) for s in snap.sources if s.last_polled_at],
        )
        yield _gauge(
            "syndicate_deliveries",
            "Digest deliveries in the ledger, by status.",
            ["status"],
            [([status], n) for status, n in sorted(snap.deliveries.items())],
        )
        sent = CounterMetricFamily("syndicate_deliveries_sent", "Digest deliveries sent, ever.")
        sent.add_metric([], snap.deliveries.get(DeliveryStatus.SENT, 0))
        yield sent
        window = SEND_RATE_WINDOW.total_seconds()
        yield _gauge(
            "syndicate_send_rate_per_second",
            f"Deliveries sent per second over the last {int(window)} seconds.",
            [],
            [([], snap.sent_recently / window)],
        )
        yield _gauge(
            "syndicate_subscribers",
            "Subscribers, by status.",
            ["status"],
            [([status], n) for status, n in snap.subscribers.items()],
        )
        # Every kind and outcome, zeros included, so a rate() over them has a series to read.
        yield _counter(
            "syndicate_bounce_events",
            "Bounces, complaints and unsubscribes by mail stored for subscribers, ever.",
            "kind",
            {kind.value: snap.bounce_events.get(kind, 0) for kind in BounceKind},
        )
        yield _counter(
            "syndicate_inbound_mail",
            "Mail read from the bounce intake, by what became of it, ever.",
            "outcome",
            {outcome.value: snap.inbound_mail.get(outcome, 0) for outcome in InboundOutcome},
        )


def _gauge(
    name: str, doc: str, labels: list[str], samples: list[tuple[list[str], float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


def _counter(name: str, doc: str, label: str, counts: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


def _jsonable(value: Any) -> Any:
    """The worker's state as JSON: datetimes as ISO 8601, anything unknown as text."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
