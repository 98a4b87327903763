"""Stage `startup`: how long `syndicate` takes before it does anything, and what an idle
worker holds.

`--version`, `--help` and every command's `--help`, each run REPEATS times as a new process
(the console script the user types), median against `python -c pass` on the same
interpreter. Targets: --version and --help <= 0.3 s, any command's --help <= 0.5 s. Then
`syndicate run` (scheduler and web app) is started, left idle and its RSS read, with the
processes it started.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scalekit import Row, Space, free_port, measure, status_mib

REPEATS = 15
IDLE_SECONDS = 10


def run(space: Space) -> list[Row]:
    script = Path(sys.executable).with_name("syndicate")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "syndicate"]
    env = space.env()

    def median(argv: list[str]) -> tuple[float, float]:
        runs = [measure(argv, env=env) for _ in range(REPEATS)]
        return (
            statistics.median(m.seconds for m in runs),
            max(m.peak_rss_mib for m in runs),
        )

    rows: list[Row] = []
    reference, reference_rss = median([sys.executable, "-c", "pass"])
    rows.append(
        Row(
            "python -c pass (reference)",
            "-",
            REPEATS,
            "runs",
            reference,
            reference_rss,
            "-",
            None,
            "median of the runs",
        )
    )
    for args, limit in ((["--version"], 0.3), (["--help"], 0.3)):
        seconds, rss = median([*command, *args])
        rows.append(
            Row(
                f"syndicate {' '.join(args)}",
                "-",
                REPEATS,
                "runs",
                seconds,
                rss,
                f"<= {limit} s",
                seconds <= limit,
                f"median; {seconds / reference:.1f}x python -c pass",
            )
        )
    worst: tuple[float, str, float] = (0.0, "", 0.0)
    commands = _commands()
    for path in commands:
        seconds, rss = median([*command, *path, "--help"])
        worst = max(worst, (seconds, " ".join(path), rss))
    seconds, name, rss = worst
    rows.append(
        Row(
            f"slowest of {len(commands)} commands' --help",
            "-",
            REPEATS,
            "runs",
            seconds,
            rss,
            "<= 0.5 s",
            seconds <= 0.5,
            f"median; `syndicate {name} --help`",
        )
    )
    rows.append(_idle_worker(space, command))
    return rows


def _commands() -> list[list[str]]:
    """Every command and subcommand path (["digest", "send"], ...)."""
    import click

    from syndicate.cli import cli

    found: list[list[str]] = []

    def walk(group: click.Group, prefix: list[str]) -> None:
        for name in group.list_commands(click.Context(group)):
            command = group.get_command(click.Context(group), name)
            found.append([*prefix, name])
            if isinstance(command, click.Group):
                walk(command, [*prefix, name])

    walk(cli, [])
    return found


def _idle_worker(space: Space, command: list[str]) -> Row:
    """`syndicate run` left idle: RSS of the worker and of every process it started."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, "run", "--port", str(port), "--no-access-log"],
        env=space.env(),
        cwd=space.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ready = _wait_for_port(port, process, timeout=60)
        up = time.perf_counter() - started
        time.sleep(IDLE_SECONDS)
        rss = sum(status_mib(pid) or 0.0 for pid in _tree(process.pid))
        processes = len(_tree(process.pid))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    note = f"{processes} process(es), RSS summed, after {IDLE_SECONDS} s idle"
    if not ready:
        note = "the web app never answered: " + (
            process.stdout.read()[-300:] if process.stdout else ""
        )
    return Row(
        "idle `syndicate run`",
        space.database,
        1,
        "process",
        up,
        rss,
        "report",
        None,
        f"time = until the web app answers; {note}",
    )


def _wait_for_port(port: int, process: subprocess.Popen[str], timeout: float) -> bool:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def _tree(pid: int) -> list[int]:
    """The process and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


if __name__ == "__main__":  # python bench/scale_startup.py: this stage alone
    os.execv(
        sys.executable,
        [
            sys.executable,
            str(Path(__file__).with_name("scale.py")),
            "--stage",
            "startup",
            "--database",
            "sqlite",
        ],
    )
