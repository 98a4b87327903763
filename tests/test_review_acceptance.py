"""Issue 21's acceptance check for proof and approval, through the CLI on the bundled config,
and the reviewers' page: its rules over HTTP, its button in a real browser (Debian's
chromium through Playwright) against `syndicate serve`.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from outbox import outbox_messages
from playwright.sync_api import Browser
from test_web_browser import SECRET, free_port, serving, syndicate
from webclient import web_client

from syndicate.cli import cli
from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.digest.review import review_link
from syndicate.ingest.poll import ingest
from syndicate.mail.send import send_period
from syndicate.store import Store
from syndicate.web.app import create_app

DUE = datetime(2016, 1, 1, 9, tzinfo=UTC)  # December 2015's digest falls due
PERIOD = "2015-12"
SITE = "https://news.riverside-commons.example"
REVIEWER = "editor@riverside-commons.example"


def review_on(project: Path) -> Path:
    """The bundled config with its commented review lines turned on, as an admin would."""
    config = project / "config.toml"
    text = config.read_text()
    on = text.replace('# review = "48h"', 'review = "48h"', 1).replace(
        "# reviewers = [", "reviewers = [", 1
    )
    assert on.count('\nreview = "48h"') == 1 and f'reviewers = ["Editor <{REVIEWER}>"]' in on
    config.write_text(on)
    return config


def invoke(config: Path, *args: str, clock: FrozenClock) -> Result:
    return CliRunner().invoke(
        cli, ["--config", str(config), *args], obj=clock, catch_exceptions=False
    )


def test_run_at_the_digest_time_sends_one_proof_and_approve_sends_the_issue(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    config = review_on(project)
    clock = FrozenClock(DUE - timedelta(days=1))
    checked = invoke(config, "check", clock=clock)
    assert f"review     proofs to Editor <{REVIEWER}>; 2d to approve, then held" in checked.output
    added = invoke(config, "subscribers", "add", "ann@example.org", "--confirmed", clock=clock)
    assert added.exit_code == 0, added.output

    clock.set(DUE + timedelta(minutes=1))
    run = invoke(config, "run", "--once", clock=clock)
    assert run.exit_code == 0, run.output
    assert f"digest {PERIOD}: proof of version 1 sent to {REVIEWER}" in run.output
    settings = load_settings(config)
    [proof] = outbox_messages(settings.outbox_dir)
    assert proof["To"] == f"Editor <{REVIEWER}>"
    assert proof["Subject"] == "[Proof] Riverside Commons News: December 2015"

    clock.advance(timedelta(hours=1))
    again = invoke(config, "run", "--once", clock=clock)
    assert "awaiting approval (version 1; proof sent 2016-01-01 09:01 GMT)" in again.output
    status = invoke(config, "status", clock=clock)
    assert "awaiting approval" in status.output and "deadline 2016-01-03 09:01 GMT" in status.output
    assert len(outbox_messages(settings.outbox_dir)) == 1  # no second proof, no digest

    approved = invoke(config, "digest", "approve", "--month", PERIOD, clock=clock)
    assert approved.exit_code == 0, approved.output
    assert f"{PERIOD}: version 1 approved by" in approved.output
    assert f"{PERIOD}: sent 1, deferred 0, failed 0, skipped 0 via outbox" in approved.output
    messages = outbox_messages(settings.outbox_dir)
    assert [m["Subject"] for m in messages][1:] == ["Riverside Commons News: December 2015"]
    assert messages[1]["To"] == "ann@example.org"
    # Approving again is refused: it was sent.
    twice = invoke(config, "digest", "approve", "--month", PERIOD, clock=clock)
    assert twice.exit_code == 1 and "is not awaiting approval" in twice.output


def test_digest_send_on_an_issue_awaiting_approval_sends_only_its_proof_once(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    config = review_on(project)
    clock = FrozenClock(DUE)
    invoke(config, "ingest", clock=clock)
    invoke(config, "subscribers", "add", "ann@example.org", "--confirmed", clock=clock)
    first = invoke(config, "digest", "send", "--month", PERIOD, clock=clock)
    assert first.exit_code == 0, first.output
    assert f"proof of version 1 sent to {REVIEWER}" in first.output
    assert "nothing was sent to subscribers" in first.output
    assert "syndicate digest approve --month 2015-12" in first.output
    second = invoke(config, "digest", "send", "--month", PERIOD, clock=clock)
    assert "proof of version" not in second.output and "awaiting approval" in second.output
    assert [m["Subject"][:7] for m in outbox_messages(load_settings(config).outbox_dir)] == [
        "[Proof]"
    ]


# -- the reviewers' page over HTTP -------------------------------------------------------


async def awaiting(project: Path) -> tuple[Settings, Store, FrozenClock]:
    config = review_on(project)
    settings = load_settings(config)
    store = await Store.open(settings.database_url)
    clock = FrozenClock(DUE)
    await ingest(settings, store, clock)
    await send_period(settings, store, clock, PERIOD)  # the proof
    return settings, store, clock


def page_path(link: str) -> str:
    assert link.startswith(SITE)
    return link.removeprefix(SITE)


async def test_the_page_approves_the_version_it_shows_with_its_form_only(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    settings, store, clock = await awaiting(project)
    async with store:
        issue = await store.issue(PERIOD)
        path = page_path(review_link(settings, SECRET, clock, issue, REVIEWER))
        app = create_app(settings, store=store, clock=clock)
        async with web_client(app) as web:
            page = await web.get(path)
            assert page.status_code == 200
            assert "Review: Riverside Commons News: December 2015" in page.text
            assert page.headers["cache-control"] == "no-store"
            assert page.headers["referrer-policy"] == "no-referrer"
            assert "ann@" not in page.text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
            copy = await web.get(f"{path}/copy")
            assert copy.status_code == 200 and "Winter floods" in copy.text
            assert copy.headers["content-security-policy"].startswith("sandbox")

            # No CSRF token: refused, nothing approved.
            forged = await web.post(path, data={"version": "1"})
            assert forged.status_code == 403
            # Another version than the issue's: refused.
            stale = await web.post(path, data={"version": "7", "csrf_token": token})
            assert stale.status_code == 409
            assert (await store.issue(PERIOD)).awaiting_review

            done = await web.post(path, data={"version": "1", "csrf_token": token})
            assert done.status_code == 200 and "Approved." in done.text
            approved = await store.issue(PERIOD)
            assert approved.approved_by == f"{REVIEWER} (review page)"
            assert not approved.awaiting_review
            assert await store.delivery_counts(approved.id) == {}  # the worker sends it


async def test_a_forged_expired_or_revoked_link_shows_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    settings, store, clock = await awaiting(project)
    async with store:
        issue = await store.issue(PERIOD)
        good = page_path(review_link(settings, SECRET, clock, issue, REVIEWER))
        other = page_path(review_link(settings, "another secret", clock, issue, REVIEWER))
        stranger = page_path(review_link(settings, SECRET, clock, issue, "x@evil.test"))
        app = create_app(settings, store=store, clock=clock)
        async with web_client(app) as web:
            for path in (other, stranger, good[:-3] + "abc", "/digest/review/%0d%0aSet-Cookie:x"):
                response = await web.get(path)
                assert response.status_code == 404, path
                assert "Winter floods" not in response.text and "Review:" not in response.text
                assert (await web.get(f"{path}/copy")).status_code == 404
            clock.advance(timedelta(days=31))
            expired = await web.get(good)
            assert expired.status_code == 410 and "expired" in expired.text


# -- in a real browser -------------------------------------------------------------------


def proof_link(config: Path) -> str:
    [proof] = outbox_messages(load_settings(config).outbox_dir)
    found = re.search(r"https://\S+/digest/review/\S+", proof.get_body(("plain",)).get_content())
    assert found is not None
    return found[0]


def test_a_reviewer_reads_the_proof_and_approves_it_in_chromium(
    project: Path, browser: Browser, artefacts: Path
) -> None:
    config = review_on(project)
    syndicate(config, "ingest")
    syndicate(config, "subscribers", "add", "ann@example.org", "--confirmed")
    syndicate(config, "digest", "send", "--month", PERIOD)
    link = proof_link(config)
    port = free_port()
    with serving(config, port):
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        page.goto(link.replace(SITE, f"http://127.0.0.1:{port}"))
        assert page.locator("h1").inner_text().startswith("Review: Riverside Commons News")
        frame = page.frame_locator("iframe")
        frame.get_by_role("link", name=re.compile("Winter floods")).first.wait_for()
        page.screenshot(path=artefacts / "review-page.png", full_page=True)
        page.get_by_role("button", name="Approve version 1 and send it to subscribers").click()
        page.get_by_text("Approved. The worker sends it within a minute.").wait_for()
        page.screenshot(path=artefacts / "approved.png", full_page=True)
    with sqlite3.connect(config.parent / "var" / "syndicate.db") as db:
        by, waiting = db.execute(
            "SELECT approved_by, awaiting_review FROM digest_issues WHERE period = ?", (PERIOD,)
        ).fetchone()
    assert by == f"{REVIEWER} (review page)" and not waiting
    # The worker's next round sends the approved issue, once.
    result = syndicate(config, "run", "--once", "--no-web")
    assert f"sent {PERIOD} (approved): sent 1" in result.stdout
    messages = outbox_messages(load_settings(config).outbox_dir)
    assert [m["To"] for m in messages] == [f"Editor <{REVIEWER}>", "ann@example.org"]
    again = syndicate(config, "run", "--once", "--no-web")
    assert "(approved)" not in again.stdout
    assert len(outbox_messages(load_settings(config).outbox_dir)) == 2
