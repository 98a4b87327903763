"""What the stages of `bench/scale.py` share: a workspace with its own config and database,
running a `syndicate` command as its user would (a new process, start-up included) while
measuring its wall-clock time and peak RSS, and the rows of the final table.

Each stage module (bench/scale_*.py) has `run(space: Space) -> list[Row]`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SYNDICATE = [sys.executable, "-m", "syndicate"]


@dataclass
class Row:
    """One line of the table: a stage on one database."""

    stage: str
    database: str
    size: int  # the units of work done (rows, messages, sources, requests...)
    unit: str
    seconds: float
    peak_rss_mib: float | None
    target: str  # what it must reach, in words (">= 20,000 rows/s")
    met: bool | None  # None: no target, or it could not be measured (note says why)
    note: str = ""

    @property
    def rate(self) -> float:
        return self.size / self.seconds if self.seconds else 0.0


@dataclass
class Measured:
    seconds: float
    peak_rss_mib: float
    returncode: int
    stdout: str
    stderr: str
    # User + system CPU of the process and the children it waited for: unlike the wall-clock
    # time, barely moved by other work on the machine (a database server's is not in it).
    cpu_seconds: float = 0.0


@dataclass
class Space:
    """A folder, a config.toml and an empty database of one kind for the stages to share.

    `scale` (0 < scale <= 1) shrinks every size for a quick run; the issue's sizes are 1.
    """

    root: Path
    database: str  # "sqlite" or "postgresql"
    scale: float = 1.0
    database_url: str = ""
    _postgres_name: str | None = None
    extra_config: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, root: Path, database: str, scale: float) -> Space:
        root.mkdir(parents=True, exist_ok=True)
        space = cls(root=root, database=database, scale=scale)
        if database == "sqlite":
            space.database_url = f"sqlite:///{root / 'syndicate.db'}"
        else:
            space._postgres_name = f"bench_scale_{uuid.uuid4().hex[:8]}"
            _postgres_admin(f'CREATE DATABASE "{space._postgres_name}"')
            space.database_url = (
                f"postgresql+psycopg://postgres@127.0.0.1:5432/{space._postgres_name}"
            )
        space.write_config()
        return space

    def sized(self, full: int) -> int:
        return max(1, round(full * self.scale))

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    def write_config(self, *extra: str) -> Path:
        """The repository's config.toml with this space's database, outbox, feeds folder and
        no sources; `extra` TOML blocks (e.g. [[sources]] tables) are appended."""
        self.extra_config.extend(extra)
        text = (REPO / "config.toml").read_text(encoding="utf-8")
        head, _, _ = text.partition("# One [[sources]] block per feed")
        tail = text[text.index("# Feed tags that belong") :]
        head = head.replace(
            'database = "sqlite:///var/syndicate.db"', f'database = "{self.database_url}"'
        )
        tail = tail.replace('dir = "feeds"', f'dir = "{self.root / "feeds"}"')
        tail = tail.replace('outbox = "var/outbox"', f'outbox = "{self.root / "outbox"}"')
        body = head + "\n".join(self.extra_config) + "\n" + tail
        self.config.write_text(body, encoding="utf-8")
        # The templates the repository ships, found relative to the config file.
        if not (self.root / "templates").exists():
            (self.root / "templates").symlink_to(REPO / "templates")
        return self.config

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SYNDICATE_CONFIG": str(self.config),
            "SYNDICATE_SECRET": "bench-secret-not-for-production-0123456789",
            "PYTHONUNBUFFERED": "1",
        }

    def syndicate(
        self,
        *args: str,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
        check: bool = True,
    ) -> Measured:
        """Run `syndicate ARGS` in a new process on this space's config, as a user would."""
        return measure(
            [*SYNDICATE, *args],
            env=self.env(),
            stdin=stdin,
            stdout=stdout,
            check=check,
            cwd=self.root,
        )

    def close(self) -> None:
        if self._postgres_name:
            _postgres_admin(f'DROP DATABASE IF EXISTS "{self._postgres_name}" WITH (FORCE)')
        shutil.rmtree(self.root, ignore_errors=True)


def measure(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    check: bool = True,
) -> Measured:
    """Wall-clock time and peak RSS (of the process and the children it waited for) of one
    command; its output is captured unless `stdout` is given."""
    out_file = stdout
    started = time.perf_counter()
    process = subprocess.Popen(
        list(argv),
        env=env,
        cwd=cwd,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=out_file if out_file is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # communicate() drains the pipes; wait4 then reaps this one child for its own rusage.
    captured_out, captured_err = _drain(process)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    result = Measured(
        seconds=seconds,
        peak_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        returncode=process.returncode,
        stdout=captured_out,
        stderr=captured_err,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
    )
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def _drain(process: subprocess.Popen[bytes]) -> tuple[str, str]:
    """Read stdout/stderr to the end without reaping the process (communicate() would)."""
    import threading

    chunks: dict[str, list[bytes]] = {"out": [], "err": []}

    def pump(stream: IO[bytes] | None, key: str) -> None:
        if stream is None:
            return
        for block in iter(lambda: stream.read(65536), b""):
            chunks[key].append(block)

    threads = [
        threading.Thread(target=pump, args=(process.stdout, "out")),
        threading.Thread(target=pump, args=(process.stderr, "err")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (
        b"".join(chunks["out"]).decode("utf-8", "replace"),
        b"".join(chunks["err"]).decode("utf-8", "replace"),
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_mib(pid: int, field: str = "VmRSS") -> float | None:
    """A memory figure of a running process from /proc/<pid>/status (VmRSS now, VmHWM its
    peak), in MiB; None once the process is gone."""
    try:
        with Path(f"/proc/{pid}/status").open(encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def _postgres_admin(statement: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(statement)


def print_table(rows: Sequence[Row]) -> None:
    """One table, stage by stage: time, rate, peak RSS, the target and whether it was met."""
    header = ("stage", "db", "size", "time", "rate", "peak RSS", "target", "met", "note")
    lines = [header]
    for row in rows:
        met = {True: "yes", False: "NO", None: "-"}[row.met]
        rss = f"{row.peak_rss_mib:,.0f} MiB" if row.peak_rss_mib is not None else "-"
        lines.append(
            (
                row.stage,
                row.database,
                f"{row.size:,} {row.unit}",
                f"{row.seconds:,.2f} s",
                f"{row.rate:,.0f} {row.unit}/s",
                rss,
                row.target,
                met,
                row.note,
            )
        )
    print_lines(lines)


def print_lines(lines: Sequence[Sequence[str]]) -> None:
    """Cells in aligned columns, the first line a header ruled off below it."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for number, line in enumerate(lines):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if number == 0:
            print("  ".join("-" * width for width in widths))
    sys.stdout.flush()
