"""What goes wrong outside syndicate reaches the admin as one line and an exit status:
a publish folder that cannot be written, a damaged database file.

The full and read-only folders are real: a tmpfs mounted in a private mount namespace
(`unshare --mount`, so nothing outlives the test), since root writes through permissions.
That needs root with CAP_SYS_ADMIN; without it these tests fail saying so.
"""

from __future__ import annotations

import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from syndicate.cli import cli


def invoke(project: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--config", str(project / "config.toml"), *args], catch_exceptions=False
    )


def publish_into(project: Path, folder: str) -> None:
    config = project / "config.toml"
    config.write_text(config.read_text().replace('dir = "feeds"', f'dir = "{folder}"', 1))


def in_mount_namespace(script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` (sh) in a mount namespace of its own: its mounts vanish with it."""
    probe = subprocess.run(
        ["unshare", "--mount", "true"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.fail(
            "this test mounts a tmpfs: it needs root with CAP_SYS_ADMIN "
            f"(unshare --mount said: {probe.stderr.strip()})"
        )
    return subprocess.run(
        ["unshare", "--mount", "sh", "-ec", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def syndicate_command(project: Path, *args: str) -> str:
    return shlex.join(
        [sys.executable, "-m", "syndicate", "--config", str(project / "config.toml"), *args]
    )


def test_publish_under_a_file_is_one_line(project: Path) -> None:
    publish_into(project, "config.toml/feeds")
    result = invoke(project, "publish")
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot write {project}/config.toml/feeds: Not a directory\n"
    assert "Traceback" not in result.output


def test_publish_into_a_read_only_folder_is_one_line(project: Path) -> None:
    publish_into(project, "site/feeds")
    (project / "site").mkdir()
    result = in_mount_namespace(
        f"mount -t tmpfs -o ro,size=64k tmpfs {project / 'site'}\n"
        f"exec {syndicate_command(project, 'publish')}"
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr == (f"error: cannot write {project}/site/feeds: Read-only file system\n")


def test_publish_into_a_full_folder_is_one_line_and_loses_nothing(project: Path) -> None:
    publish_into(project, "site/feeds")
    (project / "site").mkdir()
    site = shlex.quote(str(project / "site"))
    result = in_mount_namespace(
        f"mount -t tmpfs -o size=4m tmpfs {site}\n"
        f"mkdir {site}/feeds\n"
        f"head -c 8000000 /dev/zero > {site}/filler 2>/dev/null || true  # until it is full\n"
        f"{syndicate_command(project, 'publish')} || echo exit $? >&2\n"
        # Space again: the next publish writes every file, none counted as written before.
        f"rm {site}/filler\n"
        f"exec {syndicate_command(project, 'publish')}"
    )
    assert result.returncode == 0, result.stderr
    failed, exit_line = result.stderr.splitlines()
    assert failed.startswith(f"error: cannot write {project}/site/feeds/")
    assert failed.endswith(": No space left on device")
    assert exit_line == "exit 1"
    written = re.fullmatch(
        rf"published to {re.escape(str(project))}/site/feeds: (\d+) written, 0 unchanged, "
        r"0 removed\n",
        result.stdout,
    )
    assert written is not None, result.stdout
    assert int(written[1]) > 10  # every feed and archive page


EVERY_COMMAND = [
    ["status"],
    ["sources"],
    ["publish"],
    ["ingest"],
    ["forum", "relink"],
    ["subscribers", "list"],
    ["subscribers", "add", "a@example.org", "--confirmed"],
    ["digest", "preview", "--month", "2015-12"],
    ["digest", "send", "--month", "2015-12"],
    ["run", "--once"],
    ["db", "upgrade"],
]
# Not `ingest`: when no source changed (as here) it reads only the posts' indexes (the
# counts by source, and the linker's look-up by (source, discussion_key)), not the table; the
# damage shows at the next command that reads posts.
READING_POSTS = [
    ["publish"],
    ["forum", "relink"],
    ["digest", "preview", "--month", "2015-12"],
    ["digest", "send", "--month", "2015-12"],
    ["run", "--once"],
]


def overwrite(database: Path, offset: int, size: int) -> None:
    """Real damage: bytes of the file replaced, as a failing disk or a stray write does."""
    with database.open("r+b") as file:
        file.seek(offset)
        file.write(b"\xa5" * size)


def ingested(project: Path) -> Path:
    assert invoke(project, "ingest").exit_code == 0
    database = project / "var" / "syndicate.db"
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file itself
    conn.close()
    return database


def test_a_database_with_a_damaged_header_is_one_line_for_every_command(project: Path) -> None:
    database = ingested(project)
    overwrite(database, 0, 100)  # the header: "SQLite format 3" and the page size
    for command in EVERY_COMMAND:
        result = invoke(project, *command)
        assert (result.exit_code, result.stderr) == (
            1,
            f"error: database {database} is damaged: file is not a database "
            "(restore it from a backup)\n",
        ), command


def test_a_damaged_table_is_one_line_for_every_command_that_reads_it(project: Path) -> None:
    database = ingested(project)
    with sqlite3.connect(database) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'posts'").fetchone()
    conn.close()
    overwrite(database, (root - 1) * page_size, 64)  # the posts table's b-tree page header
    for command in READING_POSTS:
        result = invoke(project, *command)
        assert (result.exit_code, result.stderr) == (
            1,
            f"error: database {database} is damaged: database disk image is malformed "
            "(restore it from a backup)\n",
        ), command
    # What does not read the posts still works: the rest of the file is sound.
    assert invoke(project, "subscribers", "list").exit_code == 0
