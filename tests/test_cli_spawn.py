"""Worker processes are spawned: the real entry points must survive being re-imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_python_m_syndicate_ingest_with_worker_processes(project: Path) -> None:
    # Spawning re-imports __main__; an unguarded `python -m syndicate` would re-run the CLI
    # in every worker. `workers = 2` forces the pool even on a one-core machine.
    config = project / "config.toml"
    config.write_text(config.read_text().replace("workers = 0", "workers = 2"))
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(config), "ingest"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(" ok ") == 3
    assert "Traceback" not in result.stderr


def test_inline_parsing_gives_the_same_posts(project: Path) -> None:
    config = project / "config.toml"
    config.write_text(config.read_text().replace("workers = 0", "workers = 1"))
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(config), "ingest"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "│" in line]
    assert [row.split("│")[3].strip() for row in rows] == ["14", "8", "6"]
