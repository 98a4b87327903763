"""`syndicate ingest`, `sources` and `run` on the bundled config and its examples."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner, Result
from httpserver import unused_url

from syndicate.cli import cli


def invoke(project: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(project / "config.toml"), *args])


def rows(output: str) -> dict[str, list[str]]:
    """The table's cells by source name."""
    table = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│┃]", line)]
        if len(cells) > 3 and cells[0] and not cells[0].startswith(("source", "━")):
            table[cells[0]] = cells[1:]
    return table


def test_ingest_the_examples_then_nothing_changed(project: Path) -> None:
    first = invoke(project, "ingest")
    assert first.exit_code == 0, first.output
    table = rows(first.stdout)
    assert {name: (cells[0], cells[2]) for name, cells in table.items()} == {
        "riverside-news": ("ok", "14"),
        "wetland-alliance": ("ok", "8"),
        "field-notes": ("ok", "6"),
    }
    second = invoke(project, "ingest")
    assert second.exit_code == 0
    table = rows(second.stdout)
    assert {name: (cells[0], cells[2], cells[3], cells[4]) for name, cells in table.items()} == {
        "riverside-news": ("not modified", "0", "0", "14"),
        "wetland-alliance": ("not modified", "0", "0", "8"),
        "field-notes": ("not modified", "0", "0", "6"),
    }


def test_one_failing_source_exits_1_and_keeps_the_rest(project: Path) -> None:
    config = project / "config.toml"
    config.write_text(
        config.read_text() + f'\n[[sources]]\nname = "down"\nurl = "{unused_url()}"\n'
    )
    result = invoke(project, "ingest")
    assert result.exit_code == 1
    table = rows(result.stdout)
    assert table["down"][0] == "failed" and table["down"][-1].startswith("connection refused")
    assert table["riverside-news"][2] == "14"
    health = rows(invoke(project, "sources").stdout)
    assert health["down"][0] == "failing (1x)"
    assert health["riverside-news"][0] == "ok" and health["riverside-news"][4] == "14"


def test_ingest_one_source_by_name(project: Path) -> None:
    result = invoke(project, "ingest", "--source", "field-notes")
    assert result.exit_code == 0
    assert list(rows(result.stdout)) == ["field-notes"]
    wrong = invoke(project, "ingest", "--source", "feild-notes")
    assert wrong.exit_code == 2
    assert wrong.stderr.startswith("error: no source named 'feild-notes' (sources: ")


def test_run_polls_what_is_due(project: Path) -> None:
    first = invoke(project, "run", "--once")
    assert first.exit_code == 0, first.output
    assert "polled 3 of 3 sources: 28 new, 0 updated, 0 unchanged posts, 0 failed" in first.stdout
    again = invoke(project, "run", "--once")
    assert "polled 0 of 3 sources" in again.stdout  # nothing is due yet


def test_ingest_publishes_when_something_changed(project: Path) -> None:
    first = invoke(project, "ingest")
    assert first.exit_code == 0, first.output
    assert "published to " in first.stdout and " 0 written" not in first.stdout
    assert (project / "feeds" / "index.atom").is_file()
    second = invoke(project, "ingest")
    assert "published to" not in second.stdout  # nothing changed, nothing to publish
    again = invoke(project, "publish")
    assert again.exit_code == 0
    assert re.search(r": 0 written, \d+ unchanged, 0 removed$", again.stdout.strip())


def test_no_publish_flag(project: Path) -> None:
    result = invoke(project, "ingest", "--no-publish")
    assert result.exit_code == 0
    assert not (project / "feeds").exists()


def test_a_large_site_lists_the_sources_with_news_and_counts_the_quiet_ones(
    tmp_path: Path,
) -> None:
    """Past QUIET_LISTED_UP_TO sources, a row each for the ones with nothing new would bury
    the few that changed or failed: they are counted in one line instead."""
    from test_many_sources import feed, write_site

    from syndicate.cli.ingest import QUIET_LISTED_UP_TO

    count = QUIET_LISTED_UP_TO + 10
    config = write_site(tmp_path, f"sqlite:///{tmp_path / 'site.db'}", count)
    ingest = ["--config", str(config), "ingest", "--no-publish"]
    first = CliRunner().invoke(cli, ingest)
    assert first.exit_code == 0, first.output
    assert len(rows(first.stdout)) == count  # every source has new posts: every one listed
    assert "more sources: nothing new" not in first.stdout

    (tmp_path / "in" / "s0003.xml").write_text(feed(3, 5), encoding="utf-8")  # 3 new posts
    (tmp_path / "in" / "s0007.xml").write_bytes(b"\x00 not a feed")
    again = CliRunner().invoke(cli, ingest)
    assert again.exit_code == 1  # a source failed
    table = rows(again.stdout)
    assert {name: (cells[0], cells[2]) for name, cells in table.items()} == {
        "s0003": ("ok", "3"),
        "s0007": ("failed", "0"),
    }, again.stdout
    assert f"{count - 2} more sources: nothing new (not modified, or the same posts)" in (
        again.stdout
    )
