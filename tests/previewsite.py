"""A site and its live preview server (`syndicate digest preview --serve`), for the tests.

The server is the real command in a child process, on a free port of 127.0.0.1, over the
bundled config (four languages, the example feeds ingested) with a SQLite file; it is
stopped with SIGINT, as Ctrl+C would, and must then exit cleanly. Requests go through httpx.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from syndicate.cli import cli

SECRET = "a-test-secret-of-enough-length-0123456789"
READY = "preview of "


def syndicate(project: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(project / "config.toml"), *args])
    assert result.exit_code == 0, result.output
    return result.output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PreviewServer:
    project: Path
    url: str
    process: subprocess.Popen[str]
    link: str = ""  # the address it printed, with the reader chosen on the command line

    def get(self, path: str, **options: object) -> httpx.Response:
        options.setdefault("timeout", 30)
        return httpx.get(self.url + path.lstrip("/"), **options)  # type: ignore[arg-type]

    def edit(self, relative: str, text: str) -> None:
        """Write a file of the site the way an editor saves it, and make sure its time
        moves on (two saves within one clock tick would look unchanged)."""
        path = self.project / relative
        before = path.stat().st_mtime_ns if path.exists() else 0
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if path.stat().st_mtime_ns == before:
            os.utime(path, ns=(before + 1_000_000, before + 1_000_000))

    def generation(self) -> str:
        page = self.get("/").text
        start = page.index('data-generation="') + len('data-generation="')
        return page[start : page.index('"', start)]

    def wait_for_change(self, seen: str) -> str:
        """The generation after `seen`, asking /changes as the page's script does."""
        answer = self.get(f"/changes?seen={seen}").json()["generation"]
        assert answer != seen, "no change seen within the server's long poll"
        return str(answer)


def start(project: Path, *options: str) -> PreviewServer:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "syndicate",
        "--config",
        str(project / "config.toml"),
        "digest",
        "preview",
        "--serve",
        "--port",
        str(port),
        *options,
    ]
    env = {**os.environ, "SYNDICATE_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    said = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        said.append(line)
        if line.startswith(READY):
            link = line.split(" at ", 1)[1].split(" ", 1)[0]
            return PreviewServer(project, link.split("?", 1)[0], process, link)
    process.kill()
    pytest.fail(f"the preview server did not start: {''.join(said)}")


def stop(server: PreviewServer) -> str:
    """Ctrl+C: the server must stop within seconds and exit 0; returns what it printed."""
    server.process.send_signal(signal.SIGINT)
    try:
        out, _ = server.process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        pytest.fail("the preview server did not stop on SIGINT")
    assert server.process.returncode == 0, out
    return out


@pytest.fixture
def preview_project(bundled_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    syndicate(bundled_project, "ingest")
    return bundled_project


@pytest.fixture
def preview(preview_project: Path) -> Iterator[PreviewServer]:
    server = start(preview_project, "--month", "2015-12", "--no-link-check")
    try:
        yield server
    finally:
        if server.process.poll() is None:
            stop(server)
