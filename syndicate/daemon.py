"""The worker process: the scheduler, the web app and the config watcher in one event loop.

    await run_worker(settings, config_file, clock, echo=print)   # until SIGINT or SIGTERM

SIGINT or SIGTERM stops gracefully: no new work, SMTP transactions in flight finish, the
ledger is committed, then exit within 10 s. A second signal exits at once (the ledger is
safe: rows left "sending" by a dead process on this host are taken over at the next start).
SIGHUP reloads the config.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from syndicate import __version__
from syndicate.clock import Clock
from syndicate.config import Settings
from syndicate.config.fields import format_duration
from syndicate.mail.send import sender_id
from syndicate.reload import ConfigWatcher
from syndicate.store import Store
from syndicate.store.engine import safe_url
from syndicate.summary import next_digest
from syndicate.web.server import serve
from syndicate.worker import STOP_GRACE, Worker

WEB_GRACE = 10 - STOP_GRACE  # the web app's requests in flight get what is left of 10 s


async def run_worker(
    settings: Settings,
    config_file: Path,
    clock: Clock,
    *,
    echo: Callable[[str], None],
    web: bool = True,
    host: str | None = None,
    port: int | None = None,
    access_log: bool = True,
) -> None:
    """Run until SIGINT or SIGTERM; raise ServeError when the web app cannot listen."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def event(line: str) -> None:
        echo(f"{datetime.now(settings.site.tz):%Y-%m-%d %H:%M:%S} {line}")

    async with await Store.open(settings.database_url) as store:
        owner = sender_id()
        worker = Worker(settings, store, clock, owner=owner, on_event=event)
        watcher = ConfigWatcher(config_file, worker, on_event=event)
        for line in _banner(settings, owner, await store.revision()):
            echo(line)
        started = asyncio.Event()
        _handle_stop_signals(loop, stop)
        _handle_hangup(loop, watcher, started)
        web_task: asyncio.Task[None] | None = None
        try:
            if web:  # listening first: a port in use stops us before any work starts
                listening: asyncio.Future[str] = loop.create_future()
                web_task = asyncio.create_task(
                    serve(
                        settings,
                        host=host,
                        port=port,
                        store=store,
                        worker_state=worker.state,
                        access_log=access_log,
                        on_ready=listening.set_result,
                        stop=stop,
                        graceful_timeout=WEB_GRACE,
                        on_started=lambda web: worker.on_reload.append(web.reconfigure),
                    )
                )
                await asyncio.wait([listening, web_task], return_when=asyncio.FIRST_COMPLETED)
                if web_task.done():
                    web_task.result()  # raises why it could not listen
                echo(f"web: {listening.result()}")
            await worker.start()
            started.set()
            echo(_next_digest(settings, clock.now()))
            echo("running: Ctrl-C or SIGTERM stops; SIGHUP (or saving the config) reloads it")
            watch_task = asyncio.create_task(watcher.watch())
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait(
                [stopped, *([web_task] if web_task else [])], return_when=asyncio.FIRST_COMPLETED
            )
            stopped.cancel()
            watch_task.cancel()
            if web_task is not None and web_task.done():
                web_task.result()  # the web app stopped by itself: say why
            echo("stopping: finishing the work in flight")
        finally:
            stop.set()
            await worker.stop()
            if web_task is not None and not web_task.done():
                await web_task
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(signum)
    echo("stopped")


def _handle_stop_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    def on_stop(signum: int) -> None:
        if stop.is_set():
            # Asked twice: go now. Claimed deliveries are released by the next start.
            print(f"{signal.Signals(signum).name} again: exiting at once", file=sys.stderr)
            for child in multiprocessing.active_children():  # the feed parsers
                child.kill()
            os._exit(128 + signum)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_stop, signum)


def _handle_hangup(
    loop: asyncio.AbstractEventLoop, watcher: ConfigWatcher, started: asyncio.Event
) -> None:
    reloads: set[asyncio.Task[bool]] = set()  # a task must be referenced until it is done

    async def reload() -> bool:
        await started.wait()  # a reload reschedules jobs: only once they are scheduled
        return await watcher.reload("SIGHUP")

    def on_hangup() -> None:
        task = loop.create_task(reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hangup)


def _banner(settings: Settings, owner: str, revision: str | None) -> list[str]:
    polled = [s for s in settings.sources if s.enabled]
    sources = ", ".join(f"{s.name} every {format_duration(s.every)}" for s in polled)
    return [
        f"syndicate {__version__} worker {owner}",
        f"database: {safe_url(settings.database_url)} (revision {revision})",
        f"sources: {len(polled)} polled" + (f" ({sources})" if sources else ""),
        f"feeds: {settings.publish_dir} (served as {settings.site.url.rstrip('/')}/feeds/)",
    ]


def _next_digest(settings: Settings, now: datetime) -> str:
    upcoming = next_digest(settings, now)
    if upcoming is None:
        return "next digest: never ([digest] schedule does not fire again)"
    fire, period = upcoming
    return (
        f"next digest: {fire:%Y-%m-%d %H:%M %Z} ({settings.site.timezone}), "
        f"the issue for {period.key}"
    )
