"""`syndicate bounces process`, `subscribers show` and `status` as an admin (and a mail
server's pipe) runs them: one message, a Maildir, an mbox, stdin; a database that is down."""

from __future__ import annotations

import asyncio
import mailbox
import socket
from pathlib import Path

from click.testing import CliRunner, Result
from test_bounce_intake import FIXTURES, LATER, world

from syndicate.bounces.reports import read_report
from syndicate.cli import cli
from syndicate.clock import FrozenClock
from syndicate.statuses import SubscriberStatus

JANE = "jane.doe@example.net"
KIM = "kim@example.net"


def invoke(project: Path, *args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(
        cli,
        ["--config", str(project / "config.toml"), *args],
        input=input,
        obj=FrozenClock(LATER),
        catch_exceptions=False,
    )


def readdressed(project: Path, database_url: str, *fixtures: tuple[str, str | None]) -> list[bytes]:
    """A sent issue (test_bounce_intake.world) and `fixtures` readdressed to its copies, for
    the commands below, which run their own event loop."""

    async def prepare() -> list[bytes]:
        w = await world(project, database_url)
        async with w.store:
            return [w.readdressed(name, address=address) for name, address in fixtures]

    return asyncio.run(prepare())


def test_process_one_file_then_status_and_show(project: Path, database_url: str) -> None:
    [raw] = readdressed(project, database_url, ("postfix-550-user-unknown.eml", None))
    bounce = project / "bounce.eml"
    bounce.write_bytes(raw)
    done = invoke(project, "bounces", "process", str(bounce))
    assert done.exit_code == 0, done.output
    assert f"{bounce}: applied: hard bounce 5.1.1 for {JANE}" in done.stdout
    assert "active -> bounced" in done.stdout
    assert done.stdout.rstrip().endswith("1 mail: applied 1")
    # Again: the same mail acts once.
    again = invoke(project, "bounces", "process", str(bounce))
    assert again.exit_code == 0 and again.stdout.strip() == "1 mail: read before 1"

    status = invoke(project, "status")
    assert status.exit_code == 0, status.output
    assert "bounces       30 days: hard 1; ever: hard 1" in status.stdout
    assert "returned mail 30 days: applied 1" in status.stdout
    assert "subscribers   active 7, bounced 1" in status.stdout

    show = invoke(project, "subscribers", "show", JANE)
    assert show.exit_code == 0, show.output
    assert "status        bounced" in show.stdout
    assert "hard bounces  1" in show.stdout
    assert "5.1.1" in show.stdout and "User unknown" in show.stdout
    assert "2015-12" in show.stdout  # their copy of the issue, sent

    missing = invoke(project, "subscribers", "show", "nobody@example.org")
    assert missing.exit_code == 1 and "no subscriber nobody@example.org" in missing.stderr


def test_process_a_maildir_an_mbox_and_stdin(project: Path, database_url: str) -> None:
    hard, soft, auto = readdressed(
        project,
        database_url,
        ("postfix-550-user-unknown.eml", None),
        ("postfix-mailbox-full-452.eml", None),
        ("out-of-office.eml", "ann@example.org"),
    )
    folder = mailbox.Maildir(project / "Maildir", create=True)
    folder.add(hard)
    folder.add(auto)
    by_maildir = invoke(project, "bounces", "process", str(project / "Maildir"))
    assert by_maildir.exit_code == 0, by_maildir.output
    assert by_maildir.stdout.rstrip().endswith("2 mails: applied 1, ignored 1")
    assert len(folder) == 2  # an admin's Maildir is read, never changed

    box = mailbox.mbox(project / "bounces.mbox", create=True)
    box.add(hard)  # read before, through the Maildir
    box.add(soft)
    box.close()
    by_mbox = invoke(project, "bounces", "process", str(project / "bounces.mbox"))
    assert by_mbox.exit_code == 0, by_mbox.output
    assert by_mbox.stdout.rstrip().endswith("2 mails: applied 1, read before 1")

    greylist = (FIXTURES / "greylist-451.eml").read_bytes()
    by_stdin = invoke(project, "bounces", "process", input=greylist)
    assert by_stdin.exit_code == 0, by_stdin.output
    # The fixture as written: its placeholder return path is no token of ours.
    assert "stdin: unmatched: soft for lee@greylisting.example" in by_stdin.stdout


def test_a_database_that_is_down_makes_the_pipe_try_again_later(project: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = project / "config.toml"
    config.write_text(
        config.read_text().replace(
            'database = "sqlite:///var/syndicate.db"',
            f'database = "postgresql+psycopg://postgres@127.0.0.1:{port}/none"',
        )
    )
    raw = (FIXTURES / "postfix-550-user-unknown.eml").read_bytes()
    piped = invoke(project, "bounces", "process", input=raw)
    assert piped.exit_code == 75, piped.output  # EX_TEMPFAIL: Postfix keeps the mail
    assert "the mail server keeps the mail" in piped.stderr
    saved = project / "saved.eml"
    saved.write_bytes(raw)
    by_hand = invoke(project, "bounces", "process", str(saved))
    assert by_hand.exit_code == 1 and "error: cannot" in by_hand.stderr


def test_a_missing_file_and_no_mailbox_are_clear_errors(project: Path) -> None:
    missing = invoke(project, "bounces", "process", str(project / "nope.eml"))
    assert missing.exit_code == 1
    assert f"{project / 'nope.eml'}: no such file or folder" in missing.stderr
    (project / "not-a-maildir").mkdir()
    folder = invoke(project, "bounces", "process", str(project / "not-a-maildir"))
    assert folder.exit_code == 1 and "not a Maildir" in folder.stderr
    fetch = invoke(project, "bounces", "fetch")
    assert fetch.exit_code == 2 and "[bounces.imap] is not configured" in fetch.stderr


def test_status_of_a_clean_list(project: Path) -> None:
    status = invoke(project, "status")
    assert status.exit_code == 0, status.output
    assert "bounces       30 days: none; ever: none" in status.stdout
    assert "returned mail 30 days: none" in status.stdout
    assert SubscriberStatus.BOUNCED not in status.stdout.split("subscribers")[-1].split("\n")[0]


def test_a_real_postfix_bounce_through_the_pipe(project: Path) -> None:
    # What a real Postfix 3.7 on this machine handed its alias command: a "From " line, its
    # own DSN for an unknown local user, to the return path of a copy sent by syndicate
    # (from a trial with another secret, so here its token does not check out).
    raw = (FIXTURES / "postfix-real-local-pipe.eml").read_bytes()
    assert raw.startswith(b"From MAILER-DAEMON ")
    report = read_report(raw.partition(b"\n")[2])
    assert report.kind == "hard"
    [failure] = report.failures
    assert (failure.address, failure.status, failure.action) == (
        "ghost@riverside-trial.net",
        "5.1.1",
        "failed",
    )
    assert failure.diagnostic == 'X-Postfix; unknown user: "ghost"'
    assert report.message_ids == ("<digest-2-3@news.riverside-commons.example>",)
    assert report.delivered_to[0] == "bounces+b2-3-qulaikyscoau2gms@riverside-trial.net"
    config = project / "config.toml"
    config.write_text(
        config.read_text().replace(
            "[mail]\n", '[mail]\nreturn_path = "bounces@riverside-trial.net"\n', 1
        )
    )
    piped = invoke(project, "bounces", "process", input=raw)
    assert piped.exit_code == 0, piped.output
    assert "stdin: unmatched: a token for subscriber 3, who is gone" in piped.stdout
