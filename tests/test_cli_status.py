"""`syndicate status`: sources, the last, due and next digest, the delivery queue."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner, Result
from test_mail_send import NOW, prepared, subscribe

from syndicate.cli import cli
from syndicate.cli.status import describe_due_digest
from syndicate.clock import FrozenClock
from syndicate.jobs import digest_if_due


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


async def test_the_due_digest_line_follows_its_run(project: Path) -> None:
    settings, store = await prepared(project, f"sqlite:///{project / 'var' / 'syndicate.db'}")
    async with store:
        await subscribe(store, "ann@example.org")
        assert await describe_due_digest(settings, store, NOW) == (
            "2015-12: due since 2016-01-01 09:00 GMT, not started "
            "(the worker sends it when it next runs)"
        )
        await digest_if_due(settings, store, FrozenClock(NOW), "worker-a")
        assert await describe_due_digest(settings, store, NOW) == "2015-12: done"
        # November 2016 has no posts: its run is done without an issue.
        december_1 = datetime(2016, 12, 1, 9, 30, tzinfo=UTC)
        await digest_if_due(settings, store, FrozenClock(december_1), "worker-a")
        assert (
            await describe_due_digest(settings, store, december_1)
            == "2016-11: done (no posts, no issue)"
        )
