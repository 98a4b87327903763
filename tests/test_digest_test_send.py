"""`syndicate digest test`: one copy of a period's digest to an admin's address, personalised
as a subscriber would get it, through the configured transport, outside the ledger (issue 21,
item 2).

Real parts: the CLI, a SQLite file, the Maildir outbox, and a real SMTP server (aiosmtpd on
127.0.0.1, tests/smtpserver.py) for the SMTP transport.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from outbox import outbox_messages
from smtpserver import SmtpServer
from test_mail_send import drop_mail_section, smtp_config

from syndicate.cli import cli
from syndicate.config import load_settings
from syndicate.store import Store

SECRET = "a-test-secret-of-enough-length-0123456789"


def invoke(project: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(project / "config.toml"), *args])


def ok(project: Path, *args: str) -> Result:
    result = invoke(project, *args)
    assert result.exit_code == 0, result.output
    return result


def ledger(project: Path) -> dict[str, int]:
    """Every delivery row of the December issue, by status ({} when it is not built)."""

    async def read() -> dict[str, int]:
        settings = load_settings(project / "config.toml")
        async with await Store.open(settings.database_url) as store:
            issue = await store.issue("2015-12")
            return {} if issue is None else await store.delivery_counts(issue.id)

    return asyncio.run(read())


@pytest.fixture
def site(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    ok(project, "ingest")
    ok(project, "subscribers", "add", "ann@example.org", "--name", "Ann", "--confirmed")
    return project


def test_a_test_copy_goes_to_the_address_personalised_and_outside_the_ledger(
    site: Path,
) -> None:
    sent = ok(site, "digest", "test", "--month", "2015-12", "--to", "Editor@Example.org",
              "--as", "Ann@Example.org")  # fmt: skip
    assert "sent a test copy to editor@example.org (as ann@example.org; en;" in sent.stdout
    assert "from the posts as they are now (not stored)" in sent.stdout
    [message] = outbox_messages(site / "var" / "outbox")
    assert message["To"].addresses[0].addr_spec == "editor@example.org"
    assert str(message["Subject"]) == "[Test] Riverside Commons News: December 2015"
    text = message.get_body(("plain",)).get_content()
    assert "Hello Ann," in text
    # Nobody is unsubscribed by a click in a test copy: no signed links in it.
    assert "/unsubscribe/" not in text and "/preferences/" not in text
    assert "Unsubscribe: https://news.riverside-commons.example/\r\n" in text
    assert "digest-" not in str(message["Message-ID"])  # never matched as a bounce
    assert message["List-Unsubscribe"] is None
    # Nothing stored, nothing in the ledger: the issue is not even built.
    assert ledger(site) == {}


def test_it_is_the_stored_issue_once_built_and_never_counts_as_sent(site: Path) -> None:
    ok(site, "digest", "send", "--month", "2015-12")
    assert ledger(site) == {"sent": 1}
    for _ in range(2):  # as often as the editor likes
        sent = ok(site, "digest", "test", "--month", "2015-12", "--to", "editor@example.org")
        assert "as a reader who chose nothing" in sent.stdout
        assert "from the stored issue" in sent.stdout
    assert ledger(site) == {"sent": 1}
    messages = outbox_messages(site / "var" / "outbox")
    tests = [m for m in messages if str(m["To"]) == "editor@example.org"]
    [real] = [m for m in messages if "ann@example.org" in str(m["To"])]
    assert len(tests) == 2
    # The same issue: the test copy's words are the sent copy's, greeting aside.
    body = tests[0].get_body(("plain",)).get_content()
    sent_body = real.get_body(("plain",)).get_content()
    assert (
        body.split("Hello,", 1)[1].split("-- ")[0]
        == sent_body.split("Hello Ann,", 1)[1].split("-- ")[0]
    )


def test_as_a_thai_subscriber_the_copy_is_thai(
    bundled_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    ok(bundled_project, "ingest")
    ok(bundled_project, "subscribers", "add", "som@example.org", "--name", "สมชาย",
       "--language", "th", "--confirmed")  # fmt: skip
    sent = ok(bundled_project, "digest", "test", "--month", "2015-12", "--to",
              "editor@example.org", "--as", "som@example.org")  # fmt: skip
    assert "; th; 2 posts" in sent.stdout
    [message] = outbox_messages(bundled_project / "var" / "outbox")
    assert str(message["Subject"]) == "[Test] Riverside Commons News: ธันวาคม 2015"
    assert "สวัสดีคุณสมชาย" in message.get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--to", "not an address"), "--to 'not an address':"),
        (("--to", "a@example.org\r\nBcc: eve@example.org"), "--to 'a@example.org\\r\\nBcc"),
        (("--to", "a@example.org", "--as", "nobody@example.org"), "no subscriber"),
        (("--to", "a@example.org", "--month", "2014-01"), "would get no copy of 2014-01"),
    ],
)
def test_mistakes_are_one_line_and_send_nothing(
    site: Path, args: tuple[str, ...], error: str
) -> None:
    month = () if "--month" in args else ("--month", "2015-12")
    result = invoke(site, "digest", "test", *month, *args)
    assert result.exit_code == 2, result.output
    assert error in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert outbox_messages(site / "var" / "outbox") == []


def test_over_smtp_and_a_refusal_says_so(
    project: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpServer
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    drop_mail_section(project)
    config = project / "config.toml"
    config.write_text(config.read_text() + smtp_config(smtp_server))
    ok(project, "ingest")
    sent = ok(project, "digest", "test", "--month", "2015-12", "--to", "editor@example.org")
    assert "via smtp" in sent.stdout
    [received] = smtp_server.messages
    assert list(received.rcpt_tos) == ["editor@example.org"]
    assert received.envelope_from == "newsletter@riverside-commons.example"
    parsed = email.message_from_bytes(received.content, policy=email.policy.default)
    assert str(parsed["Subject"]).startswith("[Test] ")
    smtp_server.reject("refused@example.org", code=550)
    refused = invoke(project, "digest", "test", "--month", "2015-12", "--to",
                     "refused@example.org")  # fmt: skip
    assert refused.exit_code == 1
    assert "550" in refused.stderr and "Traceback" not in refused.output
