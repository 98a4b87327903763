"""`syndicate status`: sources, the last and next digest, the delivery queue."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from syndicate.cli import cli


def test_status_shows_sources_digests_and_the_queue(project: Path) -> None:
    config = project / "config.toml"

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)

    empty = invoke("status")
    assert empty.exit_code == 0, empty.output
    assert "last digest   none yet" in empty.stdout
    assert "deliveries    none" in empty.stdout
    assert invoke("ingest").exit_code == 0
    assert invoke("subscribers", "add", "a@example.org", "--confirmed").exit_code == 0
    assert invoke("digest", "send", "--month", "2015-12").exit_code == 0

    shown = invoke("status")
    assert shown.exit_code == 0, shown.output
    assert "riverside-news" in shown.stdout and "wetland-alliance" in shown.stdout
    assert (
        "last digest   2015-12: 'Riverside Commons News: December 2015' "
        "(not sent by the scheduler); sent 1"
    ) in shown.stdout
    assert "next digest   " in shown.stdout and " at " in shown.stdout
    assert "deliveries    sent 1" in shown.stdout
