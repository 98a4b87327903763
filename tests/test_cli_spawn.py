"""Worker processes are spawned: the real entry points must survive being re-imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def ingest_with_workers(project: Path, workers: int) -> subprocess.CompletedProcess[str]:
    config = project / "config.toml"
    config.write_text(config.read_text().replace("workers = 0", f"workers = {workers}"))
    return subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(config), "ingest"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def new_posts(stdout: str) -> list[str]:
    rows = [line for line in stdout.splitlines() if "│" in line]
    return [row.split("│")[3].strip() for row in rows]


def test_python_m_syndicate_ingest_with_worker_processes(project: Path) -> None:
    # Spawning re-imports __main__; an unguarded `python -m syndicate` would re-run the CLI
    # in every worker. `workers = 2` forces the pool even on a one-core machine.
    result = ingest_with_workers(project, 2)
    assert result.returncode == 0, result.stderr
    assert new_posts(result.stdout) == ["14", "8", "6"]
    assert "Traceback" not in result.stderr


def test_inline_parsing_gives_the_same_posts(project: Path) -> None:
    result = ingest_with_workers(project, 1)
    assert result.returncode == 0, result.stderr
    assert new_posts(result.stdout) == ["14", "8", "6"]
