"""The web server sheds slow and idle connections (syndicate/web/connections.py), tested on a
real `syndicate serve` process over real sockets on 127.0.0.1.

The processes run with a small RLIMIT_NOFILE, so that running out of file descriptors takes
a hundred connections rather than thousands. Nothing here sleeps to order events: a test
waits for the server to close each socket (end of file) or for a log line, and the time
limits are only there so that a server that never does stops the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import tomlkit

from syndicate.config import Settings
from syndicate.store import Store

HERE = Path(__file__).parent
ENV = {**os.environ, "SYNDICATE_SECRET": "connections-test-secret"}
HANG_GUARD = 60  # seconds; only a server that never answers or never closes reaches it

pytestmark = pytest.mark.timeout(180)


def set_web(config: Path, **values: object) -> None:
    """Set keys of the [web] section of a config file."""
    document = tomlkit.parse(config.read_text(encoding="utf-8"))
    for key, value in values.items():
        document["web"][key] = value  # type: ignore[index]
    config.write_text(tomlkit.dumps(document), encoding="utf-8")


def read_log(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")


def descriptor_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child, before it executes Python
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


class Server:
    """A server process: its URL (from the line it prints once listening) and its log."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path, url: str) -> None:
        self.proc = proc
        self.log = log
        self.url = url
        self.port = int(url.rsplit(":", 1)[1].strip("/"))

    def log_text(self) -> str:
        return read_log(self.log)

    async def log_line(self, pattern: str) -> re.Match[str]:
        """Wait for a line of the log matching `pattern`."""
        async with asyncio.timeout(HANG_GUARD):
            while not (found := re.search(pattern, self.log_text(), re.MULTILINE)):
                if self.proc.returncode is not None:
                    raise AssertionError(f"exited; no {pattern!r} in:\n{self.log_text()}")
                await asyncio.sleep(0.05)
        return found

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(HANG_GUARD):
            return await self.proc.wait()


@contextlib.asynccontextmanager
async def server(
    command: list[str], log: Path, *, descriptors: int, ready: str
) -> AsyncIterator[Server]:
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,  # a file: the old code wrote megabytes, which would fill a pipe
            env=ENV,
            preexec_fn=descriptor_limit(descriptors),
            start_new_session=True,
        )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(HANG_GUARD):
            line = (await proc.stdout.readline()).decode()
        found = re.search(ready, line)
        assert found, line + read_log(log)
        yield Server(proc, log, found.group(1))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


def syndicate_serve(
    settings: Settings, log: Path, *, descriptors: int
) -> contextlib.AbstractAsyncContextManager[Server]:
    command = [sys.executable, "-m", "syndicate", "--config", str(settings.path)]
    command += ["serve", "--port", "0", "--no-access-log"]
    return server(command, log, descriptors=descriptors, ready=r"on (http://\S+/) ")


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """One HTTP response with a Content-Length, head and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"\r\ncontent-length: (\d+)\r\n", head, re.IGNORECASE)
    assert length, head
    return head + await reader.readexactly(int(length.group(1)))


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    try:
        return await reader.read()
    except ConnectionResetError:
        return b""


async def test_half_sent_requests_are_shed_and_real_ones_still_answered(
    web_site: tuple[Settings, Store], tmp_path: Path
) -> None:
    settings, _ = web_site
    set_web(settings.path, request_timeout=2)
    async with syndicate_serve(settings, tmp_path / "serve.log", descriptors=128) as served:
        # 200 clients that send half a request and stall: more than the connection limit
        # and more than the process has descriptors.
        async def half_request() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: news.example\r\n")
            await writer.drain()
            return reader, writer

        async with asyncio.timeout(HANG_GUARD):
            stalled = await asyncio.gather(*(half_request() for _ in range(200)))

        # A real request is answered, over a new connection.
        async with httpx.AsyncClient(base_url=served.url, timeout=HANG_GUARD) as client:
            response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json()["status"] == "ok"

        # Every stalled client is disconnected: the oldest to make room for newer ones, the
        # rest once request_timeout has passed, without an answer.
        async with asyncio.timeout(HANG_GUARD):
            leftovers = await asyncio.gather(*(closed_by_server(r) for r, _ in stalled))
        assert leftovers == [b""] * 200
        for _, writer in stalled:
            writer.close()
        assert await served.stop() == 0

    log = served.log_text()
    # The limit is held to half the descriptors.
    assert "web: at most 64 connections at once, not [web] max_connections = 512" in log
    assert "Traceback" not in log
    assert "Too many open files" not in log
    assert len(re.findall(r"cannot accept connections", log)) <= 1
    assert len(re.findall(r"connections open, the limit", log)) == 1  # once, not per client


async def test_idle_trickling_and_oversized_requests_are_cut_off(
    web_site: tuple[Settings, Store], tmp_path: Path
) -> None:
    settings, _ = web_site
    set_web(settings.path, request_timeout=1, keepalive_timeout=1)
    async with syndicate_serve(settings, tmp_path / "serve.log", descriptors=1024) as served:
        writers = []  # held: a StreamWriter closes its connection when collected

        async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writers.append(writer)
            return reader, writer

        async with asyncio.timeout(HANG_GUARD):
            silent, _ = await connect()  # connects and never sends a byte

            kept_alive, writer = await connect()  # one request, then idle
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: news.example\r\n\r\n")
            assert (await read_response(kept_alive)).startswith(b"HTTP/1.1 200 ")

            second_half, writer = await connect()  # one request, then half of another
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: news.example\r\n\r\n")
            assert (await read_response(second_half)).startswith(b"HTTP/1.1 200 ")
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: news.exa")

            slow_body, writer = await connect()  # headers promise 100 bytes; 10 come
            writer.write(
                b"POST /subscribe HTTP/1.1\r\nHost: news.example\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 100\r\n\r\nemail=a%40"
            )

            huge, writer = await connect()  # headers that never end
            writer.write(b"GET / HTTP/1.1\r\nHost: news.example\r\n")
            writer.write(b"X-Padding: " + b"a" * 100_000 + b"\r\n")

            silent_end, idle_end, second_end, slow_end, huge_end = await asyncio.gather(
                closed_by_server(silent),
                closed_by_server(kept_alive),
                closed_by_server(second_half),
                closed_by_server(slow_body),
                closed_by_server(huge),
            )
        # Closed without a word: nothing was asked, or not in time.
        assert silent_end == idle_end == second_end == slow_end == b""
        assert huge_end.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
        assert await served.stop() == 0
    assert "Traceback" not in served.log_text()


async def test_running_out_of_descriptors_is_one_log_line_and_serving_goes_on(
    web_site: tuple[Settings, Store], tmp_path: Path
) -> None:
    """Something else in the process (here tests/descriptor_hog.py) takes every descriptor:
    accept() fails until it lets go. The log says so once, and the waiting clients are
    answered afterwards."""
    settings, _ = web_site
    command = [sys.executable, str(HERE / "descriptor_hog.py"), str(settings.path)]
    ready = r"holding \d+ descriptors; serving on (http://\S+/)"
    async with server(command, tmp_path / "serve.log", descriptors=256, ready=ready) as served:

        async def ask() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = await closed_by_server(reader)
            writer.close()
            return answer

        async with asyncio.timeout(HANG_GUARD):
            waiting = [asyncio.create_task(ask()) for _ in range(10)]
            await served.log_line(r"web: cannot accept connections: Too many open files")
            served.proc.send_signal(signal.SIGUSR1)  # the hog lets go
            answers = await asyncio.gather(*waiting)
        assert all(answer.startswith(b"HTTP/1.1 200 ") for answer in answers), answers
        failed = int(
            (await served.log_line(r"accepting connections again, after (\d+) failed")).group(1)
        )
        assert await served.stop() == 0

    log = served.log_text()
    assert failed > 1  # many failed accept() calls ...
    assert len(re.findall(r"cannot accept connections", log)) == 1  # ... one line
    assert "Traceback" not in log
    assert "out of system resource" not in log  # asyncio's own message, once per attempt


async def test_when_every_connection_has_a_request_in_progress_a_new_one_gets_a_503(
    web_site: tuple[Settings, Store], tmp_path: Path
) -> None:
    settings, _ = web_site
    set_web(settings.path, max_connections=2, request_timeout=2)
    async with syndicate_serve(settings, tmp_path / "serve.log", descriptors=1024) as served:
        writers = []  # held: a StreamWriter closes its connection when collected

        async def posting() -> asyncio.StreamReader:
            """A form post whose body has been asked for (100 Continue) and never comes:
            its request is in progress on the server."""
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writers.append(writer)
            writer.write(
                b"POST /subscribe HTTP/1.1\r\nHost: news.example\r\nExpect: 100-continue\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
            )
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100 Continue")
            return reader

        async def get() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = await closed_by_server(reader)
            writer.close()
            return answer

        async with asyncio.timeout(HANG_GUARD):
            busy = [await posting(), await posting()]
            refused = await get()
            # The posts are cut off once request_timeout passes without their bodies ...
            assert await asyncio.gather(*(closed_by_server(r) for r in busy)) == [b"", b""]
            answered = await get()  # ... and then there is room again.
        assert refused.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert b"\r\nretry-after: 1\r\n" in refused
        assert answered.startswith(b"HTTP/1.1 200 ")
        assert await served.stop() == 0
    log = served.log_text()
    assert "Traceback" not in log
    assert "at the limit, 0 waiting ones were closed and 1 new ones refused" in log
