"""Polling the bounce mailbox (syndicate.bounces.polling) and `syndicate bounces fetch`,
against a real Dovecot (tests/imapserver.py): each mail processed once and only then moved,
a worker dying in between, a mailbox that is down or refuses the password."""

from __future__ import annotations

import asyncio
import mailbox
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from imapserver import ImapServer
from test_bounce_intake import FIXTURES, LATER, World, failed_address, world
from test_worker import eventually

from syndicate.bounces import polling
from syndicate.bounces.imap import ImapMailbox
from syndicate.cli import cli
from syndicate.clock import FrozenClock
from syndicate.config import load_settings
from syndicate.statuses import SubscriberStatus

PASSWORD_ENV = "TEST_BOUNCE_IMAP_PASSWORD"


def imap_keys(server: ImapServer, **extra: str) -> str:
    lines = [
        "[bounces.imap]",
        f'host = "{server.host}"',
        f"port = {server.port}",
        'tls = "none"',
        f'username = "{server.user}"',
        f'password_env = "{PASSWORD_ENV}"',
        "timeout = 5",
        *(f'{key} = "{value}"' for key, value in extra.items()),
    ]
    return "\n" + "\n".join(lines) + "\n"


async def polled_world(
    project: Path,
    database_url: str,
    server: ImapServer,
    monkeypatch: pytest.MonkeyPatch,
    **extra: str,
) -> World:
    monkeypatch.setenv(PASSWORD_ENV, server.password)
    w = await world(project, database_url)
    config = project / "config.toml"
    config.write_text(config.read_text() + imap_keys(server, **extra))
    w.settings = load_settings(config)
    return w


async def test_each_mail_is_processed_then_moved(
    project: Path, database_url: str, imap_server: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = await polled_world(project, database_url, imap_server, monkeypatch)
    async with w.store:
        hard = w.readdressed("postfix-550-user-unknown.eml")
        auto = w.readdressed("out-of-office.eml", address="ann@example.org")
        broken = (FIXTURES / "broken-mime.eml").read_bytes()
        for raw in (hard, auto, broken):
            imap_server.append(raw)
        seen = []
        report = await polling.poll_mailbox(
            w.settings, w.store, FrozenClock(LATER), on_mail=seen.append
        )
        assert report.error is None
        assert dict(report.outcomes) == {"applied": 1, "ignored": 1, "unreadable": 1}
        assert [p.outcome for p in seen] == ["applied", "ignored", "unreadable"]
        assert imap_server.messages("INBOX") == []
        stored = [raw.replace(b"\r\n", b"\n") for raw in imap_server.messages("Processed")]
        assert stored == [raw.replace(b"\r\n", b"\n") for raw in (hard, auto, broken)]
        assert all("\\Seen" not in flags for flags in imap_server.flags("Processed"))
        assert await w.status(failed_address("postfix-550-user-unknown.eml")) == "bounced"
        kept = mailbox.Maildir(w.settings.bounces_keep_dir, create=False)
        [kept_mail] = [kept.get_bytes(key) for key in kept.iterkeys()]
        assert kept_mail.replace(b"\r\n", b"\n") == broken.replace(b"\r\n", b"\n")


async def test_a_worker_dying_after_storing_leaves_the_mail_to_be_moved_next_time(
    project: Path, database_url: str, imap_server: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = await polled_world(project, database_url, imap_server, monkeypatch)
    async with w.store:
        imap_server.append(w.readdressed("greylist-451.eml"))

        def killed(self: ImapMailbox, uid: int) -> None:
            raise KeyboardInterrupt  # as good as a kill between "stored" and "moved"

        with monkeypatch.context() as patched:
            patched.setattr(ImapMailbox, "done", killed)
            with pytest.raises(KeyboardInterrupt):
                await polling.poll_mailbox(w.settings, w.store, FrozenClock(LATER))
        assert len(imap_server.messages("INBOX")) == 1  # nothing removed before it was stored
        assert await w.store.inbound_counts() == {"applied": 1}

        again = await polling.poll_mailbox(w.settings, w.store, FrozenClock(LATER))
        assert (again.read_before, dict(again.outcomes)) == (1, {})
        assert imap_server.messages("INBOX") == []
        events = await w.store.bounce_events_of(w.ids[failed_address("greylist-451.eml")])
        assert len(events) == 1  # it acted once


async def test_processed_mail_can_be_deleted(
    project: Path, database_url: str, imap_server: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = await polled_world(project, database_url, imap_server, monkeypatch, processed="delete")
    async with w.store:
        imap_server.append(w.readdressed("exim-plaintext.eml"))
        report = await polling.poll_mailbox(w.settings, w.store, FrozenClock(LATER))
        assert dict(report.outcomes) == {"applied": 1}
        assert imap_server.messages("INBOX") == []
        assert "Processed" not in imap_server.folders()


async def test_a_mailbox_that_refuses_the_password_or_is_down_is_one_error(
    project: Path, database_url: str, imap_server: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = await polled_world(project, database_url, imap_server, monkeypatch)
    async with w.store:
        imap_server.append(w.readdressed("postfix-550-user-unknown.eml"))
        monkeypatch.setenv(PASSWORD_ENV, "wrong-password")
        refused = await polling.poll_mailbox(w.settings, w.store, FrozenClock(LATER))
        assert refused.error is not None
        assert f"login refused for user '{imap_server.user}'" in refused.error
        assert "wrong-password" not in refused.error and "\n" not in refused.error
        assert len(imap_server.messages("INBOX")) == 1  # untouched
        assert await w.status(failed_address("postfix-550-user-unknown.eml")) == "active"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
        config = project / "config.toml"
        config.write_text(
            config.read_text().replace(f"port = {imap_server.port}", f"port = {closed}")
        )
        down = await polling.poll_mailbox(load_settings(config), w.store, FrozenClock(LATER))
        assert down.error is not None and f"127.0.0.1:{closed}" in down.error


def test_bounces_fetch_as_an_admin_runs_it(
    project: Path, database_url: str, imap_server: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def prepare() -> list[bytes]:
        w = await polled_world(project, database_url, imap_server, monkeypatch)
        async with w.store:
            return [w.readdressed("gmail-550-nosuchuser.eml")]

    [raw] = asyncio.run(prepare())
    imap_server.append(raw)

    def fetch() -> tuple[int, str, str]:
        result = CliRunner().invoke(
            cli,
            ["--config", str(project / "config.toml"), "bounces", "fetch"],
            obj=FrozenClock(LATER),
            catch_exceptions=False,
        )
        return result.exit_code, result.stdout, result.stderr

    code, out, _ = fetch()
    assert code == 0, out
    assert "INBOX: applied: hard bounce 5.1.1 for no.such.user@gmail.com" in out
    assert out.rstrip().endswith("1 mail: applied 1")
    code, out, _ = fetch()
    assert (code, out.strip()) == (0, "no mail")

    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    code, _, err = fetch()
    assert code == 1
    assert err.splitlines() == [
        f"error: login refused for user '{imap_server.user}' at 127.0.0.1:{imap_server.port}: "
        "[AUTHENTICATIONFAILED] Authentication failed."
    ]

    async def status() -> str:
        settings = load_settings(project / "config.toml")
        from syndicate.store import Store

        async with await Store.open(settings.database_url) as store:
            found = await store.subscriber_by_email("no.such.user@gmail.com")
            assert found is not None
            return found.status

    assert asyncio.run(status()) == SubscriberStatus.BOUNCED


async def test_the_worker_reads_the_mailbox_once_a_reload_names_it(
    project: Path, database_url: str, imap_server: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syndicate.reload import ConfigWatcher
    from syndicate.worker import Worker

    monkeypatch.setenv(PASSWORD_ENV, imap_server.password)
    w = await world(project, database_url)
    async with w.store:
        imap_server.append(w.readdressed("postfix-550-user-unknown.eml"))
        worker = Worker(w.settings, w.store, FrozenClock(LATER), owner="worker-b")
        await worker.start()
        try:
            assert worker.scheduler.get_job("bounces") is None  # no [bounces.imap] yet
            events: list[str] = []
            config = project / "config.toml"
            watcher = ConfigWatcher(config, worker, on_event=events.append)
            plain = config.read_text()
            config.write_text(plain + imap_keys(imap_server))
            assert await watcher.reload("SIGHUP")
            assert events[-1] == (
                f"SIGHUP: reloaded (bounce mailbox: {imap_server.host}:{imap_server.port} INBOX)"
            )
            await eventually(lambda: "bounces" in worker.last, within=20)
            assert worker.last["bounces"]["ok"]
            assert imap_server.messages("INBOX") == []
            assert await w.status(failed_address("postfix-550-user-unknown.eml")) == "bounced"

            config.write_text(plain)
            assert await watcher.reload("SIGHUP")
            assert events[-1] == "SIGHUP: reloaded (bounce mailbox: not read)"
            assert worker.scheduler.get_job("bounces") is None
        finally:
            await worker.stop()


def test_run_once_reads_the_mailbox_before_the_digest(
    project: Path, database_url: str, imap_server: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def prepare() -> bytes:
        w = await polled_world(project, database_url, imap_server, monkeypatch)
        async with w.store:
            return w.readdressed("exchange-ndr.eml")

    imap_server.append(asyncio.run(prepare()))
    config = str(project / "config.toml")
    checked = CliRunner().invoke(cli, ["--config", config, "check"], obj=FrozenClock(LATER))
    assert checked.exit_code == 0, checked.output
    assert (
        f"bounces    imap {imap_server.host}:{imap_server.port} INBOX every 10m; "
        "return path bounces@example.org; unsubscribe mailbox unsubscribe@example.org"
    ) in checked.stdout
    once = CliRunner().invoke(cli, ["--config", config, "run", "--once"], obj=FrozenClock(LATER))
    assert "bounces: 1 mail (applied 1)" in once.stdout, once.output
    lines = once.stdout.splitlines()
    digest = next(i for i, line in enumerate(lines) if line.startswith("digest"))
    assert lines.index("bounces: 1 mail (applied 1)") < digest
    assert imap_server.messages("INBOX") == []
