"""What others wrote reaches the admin's terminal inert: a hostile feed server's reason and
Location, an SMTP server's reply, a subscriber's name are printed literally (never as rich
markup) with control characters escaped, and our own "[ingest] max_size" survives too.

HTTP servers cannot send C0 controls in a header (h11 refuses them), but bytes 0x80-0x9f
pass as obs-text and arrive as C1 controls: U+009B is CSI, which many terminals obey like
ESC [. Those are what the feed-server tests send; the subscriber's name carries ESC and BEL.
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner, Result
from httpserver import Connection, HttpServer, Raw, Response
from rich.console import Console
from smtpserver import SmtpServer
from test_mail_send import drop_mail_section, smtp_config

from syndicate.cli import cli
from syndicate.cli.progress import send_progress
from syndicate.config import load_settings
from syndicate.mail.send import SendCounts
from syndicate.store import Store
from syndicate.terminal import printable

MARKUP = "[link=http://evil.example/]click[/link] [bold red]alarm"
CSI = "\x9b"  # as latin-1 obs-text in a header or reason phrase
RAW_CONTROLS = ("\x1b", "\x07", "\x08", "\r", CSI)


def invoke(project: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--config", str(project / "config.toml"), *args], catch_exceptions=False
    )


def raw_answer(status_line: str, headers: str = "") -> Raw:
    """An HTTP answer written byte for byte, latin-1 as servers send obs-text."""

    def write(connection: Connection) -> None:
        head = f"HTTP/1.1 {status_line}\r\n{headers}Content-Length: 0\r\n\r\n"
        connection.send(head.encode("latin-1"))

    return Raw(write)


def add_sources(project: Path, **urls: str) -> None:
    config = project / "config.toml"
    blocks = "".join(f'\n[[sources]]\nname = "{n}"\nurl = "{u}"\n' for n, u in urls.items())
    config.write_text(config.read_text() + blocks)


def unfolded(output: str) -> str:
    """A table's text without borders and white space, so a cell folded over lines (at a
    space) reads as one: compare with `squeezed` text."""
    return squeezed(output.replace("│", ""))


def squeezed(text: str) -> str:
    return "".join(text.split())


def assert_inert(output: str) -> None:
    for control in RAW_CONTROLS:
        assert control not in output, f"{control!r} reached the terminal"


def test_what_a_feed_server_says_is_printed_literally(
    project: Path, http_server: HttpServer
) -> None:
    location = f"gopher://evil.example/{MARKUP}{CSI}2J"
    http_server.route("/moved", raw_answer("301 Moved", f"Location: {location}\r\n"))
    http_server.route("/odd", raw_answer(f"599 {MARKUP}{CSI}2J"))
    http_server.route("/big", Response(body=b"<rss>" + b" " * 5_000 + b"</rss>"))
    add_sources(
        project,
        moved=http_server.url_for("/moved"),
        odd=http_server.url_for("/odd"),
        big=http_server.url_for("/big"),
    )
    config = project / "config.toml"
    config.write_text(config.read_text().replace('max_size = "10MB"', 'max_size = "1KB"'))

    # A first run polls every source, as they are all due; the failures are listed.
    once = invoke(project, "run", "--once")
    assert once.exit_code == 1
    assert_inert(once.stdout)

    ingested = invoke(project, "-v", "ingest")
    assert ingested.exit_code == 1
    table = unfolded(ingested.stdout)
    moved = f"HTTP 301 redirect to unsupported gopher://evil.example/{MARKUP}\\x9b2J"
    odd = f"HTTP 599 {MARKUP}2J"  # httpx drops a reason's non-ASCII bytes itself
    assert squeezed(moved) in table
    assert squeezed(odd) in table
    assert squeezed("raise [ingest] max_size if the feed really is this big") in table
    assert_inert(ingested.stdout)
    # The same words in the log lines on stderr (-v), one line each.
    assert f"fetch failed: {moved}" in ingested.stderr
    assert_inert(ingested.stderr)

    for command in ("sources", "status"):
        listed = invoke(project, command)
        assert listed.exit_code == 0
        assert squeezed(moved) in unfolded(listed.stdout), command
        assert squeezed(odd) in unfolded(listed.stdout), command
        assert squeezed("raise [ingest] max_size") in unfolded(listed.stdout), command
        assert_inert(listed.stdout)
    assert f"  moved: {moved}" in once.stdout.splitlines()
    assert f"  odd: {odd}" in once.stdout.splitlines()


def test_a_name_from_outside_is_printed_literally(project: Path) -> None:
    hostile = f"Ann \x1b]0;owned\x07{MARKUP}\x08X"
    people = project / "people.csv"
    people.write_text(
        f'email,name,categories\nann@example.org,"{hostile}",\nbad{CSI}@example.org,Bad,\n',
        encoding="utf-8",
    )
    imported = invoke(project, "subscribers", "import", str(people))
    assert imported.exit_code == 1  # both lines are rejected, each by its number
    rejected = imported.stderr.splitlines()
    assert rejected[0] == "line 2: ann@example.org: the name contains control characters"
    assert rejected[1].startswith("line 3: invalid address 'bad\\x9b@example.org'")
    assert_inert(imported.stderr)

    # A row stored before names were checked (or written by hand) is still printed inert.
    asyncio.run(store_legacy_row(project, "ann@example.org", hostile))
    listed = invoke(project, "subscribers", "list")
    assert listed.exit_code == 0
    assert squeezed(f"Ann \\x1b]0;owned\\x07{MARKUP}\\x08X") in unfolded(listed.stdout)
    assert_inert(listed.stdout)


async def store_legacy_row(project: Path, address: str, name: str) -> None:
    settings = load_settings(project / "config.toml")
    async with await Store.open(settings.database_url) as store:
        await store.insert_subscriber(
            {
                "email": address,
                "name": name,
                "status": "active",
                "consent_source": "cli",
                "consented_at": datetime(2015, 1, 1, tzinfo=UTC),
            }
        )


def test_what_a_mail_server_says_is_printed_literally(
    project: Path, smtp_server: SmtpServer
) -> None:
    drop_mail_section(project)
    config = project / "config.toml"
    config.write_text(config.read_text() + smtp_config(smtp_server))
    assert invoke(project, "ingest").exit_code == 0
    assert invoke(project, "subscribers", "add", "a@example.org", "--confirmed").exit_code == 0
    smtp_server.reject("a@example.org", text=f"5.1.1 {MARKUP}{CSI}2J")
    sent = invoke(project, "digest", "send", "--month", "2015-12")
    assert sent.exit_code == 1
    failed = [line for line in sent.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and failed[0].endswith(f"5.1.1 {MARKUP}\\x9b2J")
    assert_inert(sent.stderr)


def test_printable_escapes_every_kind_of_control_character() -> None:
    assert printable("tab\tstays") == "tab\tstays"
    assert printable("a\nb\rc") == "a\\nb\\rc"
    assert printable("a\nb\rc", newlines=True) == "a\nb\\rc"
    assert printable("\x00\x07\x1b[2J\x7f") == "\\x00\\x07\\x1b[2J\\x7f"
    assert printable("\x85\x9b\x9f") == "\\x85\\x9b\\x9f"  # C1: NEL, CSI, APC
    assert printable("\u202eevil\u2066\u2028") == "\\u202eevil\\u2066\\u2028"  # bidi, LS
    assert printable("Grüße, 東京, \u200d emoji 👍") == "Grüße, 東京, \u200d emoji 👍"
    assert printable(42) == "42"


def test_the_send_progress_bar_is_drawn_only_on_a_terminal() -> None:
    for terminal in (True, False):
        out = io.StringIO()
        with send_progress(Console(file=out, force_terminal=terminal, width=120)) as update:
            update(SendCounts(total=3, sent=2, failed=1))
        # Piped (cron, a log): not even the last frame, so an error after it is one line.
        assert ("sent 2  failed 1" in out.getvalue()) is terminal, terminal
