"""The digest commands' --month and --week: a mistake is one line naming the option (exit 2),
found before any work starts, so on a terminal no progress bar is drawn above it."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from syndicate.cli import cli


def invoke(project: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--config", str(project / "config.toml"), *args], catch_exceptions=False
    )


def weekly(project: Path) -> None:
    config = project / "config.toml"
    config.write_text(config.read_text().replace('period = "month"', 'period = "week"', 1))


def on_a_terminal(*args: str, timeout: float = 60) -> tuple[int, str]:
    """Run syndicate with stdout and stderr on a real pseudo-terminal; its exit status and
    everything it wrote there."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "syndicate", *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "COLUMNS": "120"},
    )
    os.close(terminal)
    output, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the other end closed: the process has exited
                break
            if not chunk:
                break
            output += chunk
        return process.wait(timeout=10), output.decode()
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)


COMMANDS = [
    ["digest", "send"],
    ["digest", "send", "--dry-run"],
    ["digest", "preview"],
    ["digest", "preview", "--format", "eml"],
    ["digest", "build"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(
    ("options", "line"),
    [
        (
            ["--month", "2015-13"],
            "error: --month: not a month: '2015-13' (use YYYY-MM, e.g. 2015-12)",
        ),
        (["--month", "2015-W49"], "error: --month: not a month: '2015-W49' (use YYYY-MM"),
        (["--month", ""], "error: --month: not a month: '' (use YYYY-MM"),
        (["--month", "\x1b[2J"], "error: --month: not a month: '\\x1b[2J' (use YYYY-MM"),
        (["--week", "2015-12"], 'error: --week: [digest] period is "month"; use --month 2015-12'),
        ([], "error: --month is required, e.g. --month 2015-12"),
    ],
)
def test_a_bad_period_is_one_line_naming_the_option(
    project: Path, command: list[str], options: list[str], line: str
) -> None:
    result = invoke(project, *command, *options)
    assert result.exit_code == 2
    assert result.stderr.startswith(line)
    assert len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


def test_a_bad_week_names_the_week_option(project: Path) -> None:
    weekly(project)
    cases = {
        "2015-W60": "error: --week: not an ISO week: '2015-W60' (use YYYY-Www, e.g. 2015-W49)",
        "2014-W53": "error: --week: 2014 has no week 53",
    }
    for week, line in cases.items():
        result = invoke(project, "digest", "send", "--week", week)
        assert (result.exit_code, result.stderr) == (2, line + "\n")
    result = invoke(project, "digest", "send", "--month", "2015-12")
    assert (result.exit_code, result.stderr) == (
        2,
        'error: --month: [digest] period is "week"; use --week 2015-W49\n',
    )
    assert invoke(project, "digest", "send", "--week", "2015-W49", "--dry-run").exit_code == 0


def test_a_bad_month_on_a_terminal_draws_no_progress_bar(project: Path) -> None:
    status, output = on_a_terminal(
        "--config", str(project / "config.toml"), "digest", "send", "--month", "2015-13"
    )
    assert status == 2
    assert output == "error: --month: not a month: '2015-13' (use YYYY-MM, e.g. 2015-12)\r\n"


def test_a_good_month_on_a_terminal_still_draws_the_bar(project: Path) -> None:
    status, output = on_a_terminal(
        "--config", str(project / "config.toml"), "digest", "send", "--month", "2015-12"
    )
    assert status == 0, output
    assert "sending" in output  # the bar, drawn once sending starts
    assert output.endswith("2015-12: no posts, no issue to send ([digest] skip_empty)\r\n")
