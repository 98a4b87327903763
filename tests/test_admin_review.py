"""Issue 21's "not done until", end to end: review on and a reviewer in the bundled config,
`syndicate run --once` at the digest time puts one proof in the outbox and no digest, the
dashboard (the real server: uvicorn on 127.0.0.1) offers the issue for approval and its
button approves it, the worker's next round sends it, and the dashboard's chart shows
that issue's deliveries; `digest approve` does the same from the command line.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from adminsite import PASSWORD, admin_config, log_in, login_form, running, session_of
from click.testing import CliRunner, Result
from outbox import outbox_messages
from test_admin_charts import Tables
from test_review_acceptance import DUE, PERIOD, REVIEWER, review_on

from syndicate.cli import cli
from syndicate.clock import FrozenClock
from syndicate.config import load_settings
from syndicate.web.app import create_app


def invoke(config: Path, *args: str, clock: FrozenClock) -> Result:
    result = CliRunner().invoke(
        cli, ["--config", str(config), *args], obj=clock, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result


def deliveries_row(page: str) -> list[str]:
    tables = Tables()
    tables.feed(page)
    rows = tables.tables["Each issue's deliveries"]
    [row] = [row for row in rows[1:] if row[0].startswith(PERIOD)]
    return row[1:]


@pytest.fixture
def proofed(project: Path, env: pytest.MonkeyPatch) -> tuple[Path, FrozenClock]:
    """Review and the dashboard on; two subscribers; the run at the digest time done."""
    config = review_on(Path(admin_config(project)).parent)
    clock = FrozenClock(DUE - timedelta(days=2))
    for address in ("ann@example.org", "bo@example.org"):
        invoke(config, "subscribers", "add", address, "--confirmed", clock=clock)
    clock.set(DUE + timedelta(minutes=1))
    run = invoke(config, "run", "--once", clock=clock)
    assert f"proof of version 1 sent to {REVIEWER}" in run.output
    [proof] = outbox_messages(load_settings(config).outbox_dir)
    assert proof["Subject"].startswith("[Proof] ")
    return config, clock


def test_the_dashboard_approves_the_issue_and_charts_its_deliveries(
    proofed: tuple[Path, FrozenClock],
) -> None:
    config, clock = proofed
    settings = load_settings(config)
    with running(create_app(settings, clock=clock)) as url, httpx.Client() as client:
        session = {"Cookie": f"syndicate_admin={session_of(log_in(client, url, PASSWORD))}"}
        page = client.get(f"{url}admin", headers=session)
        assert "Approve version 1 and send it" in page.text
        assert "awaiting approval (version 1; proof sent 2016-01-01 09:01 GMT)" in page.text
        copy = client.get(f"{url}admin/issue/{PERIOD}", headers=session)
        assert copy.status_code == 200 and "Winter floods" in copy.text
        assert copy.headers["content-security-policy"].startswith("sandbox")
        assert client.get(f"{url}admin/issue/{PERIOD}").status_code == 303  # no session

        token = login_form(client, url)
        origin = {"Origin": url.rstrip("/")}
        form = {"csrf_token": token, "period": PERIOD, "version": "1"}
        # No session, no CSRF token, another site's Origin: nothing is approved.
        assert client.post(f"{url}admin/approve", data=form, headers=origin).status_code == 401
        no_token = {"period": PERIOD, "version": "1"}
        refused = client.post(f"{url}admin/approve", data=no_token, headers={**session, **origin})
        assert refused.status_code == 403
        elsewhere = {**session, "Origin": "https://evil.example"}
        assert client.post(f"{url}admin/approve", data=form, headers=elsewhere).status_code == 403
        # A version the issue is not at (it was rebuilt since the page was read): refused.
        stale = {**form, "version": "2"}
        client.post(f"{url}admin/approve", data=stale, headers={**session, **origin})
        assert "Approve version 1 and send it" in client.get(f"{url}admin", headers=session).text

        done = client.post(f"{url}admin/approve", data=form, headers={**session, **origin})
        assert done.status_code == 303 and done.headers["location"].endswith("approved=2015-12")
        after = client.get(f"{url}admin?approved={PERIOD}", headers=session)
        assert "2015-12 version 1 approved by admin dashboard (127.0.0.1)" in after.text
        assert "Approve version" not in after.text
        assert outbox_messages(settings.outbox_dir)[1:] == []  # the worker sends, not the page

        clock.advance(timedelta(minutes=1))
        sent = invoke(config, "run", "--once", clock=clock)
        assert f"digest {PERIOD}: sent 2, deferred 0, failed 0" in sent.output
        # sent, deferred, failed, bounced, unsubscribed after it
        assert deliveries_row(client.get(f"{url}admin", headers=session).text) == [
            "2",
            "0",
            "0",
            "0",
            "0",
        ]
    subjects = sorted(m["Subject"] for m in outbox_messages(settings.outbox_dir))
    assert subjects == [
        "Riverside Commons News: December 2015",
        "Riverside Commons News: December 2015",
        "[Proof] Riverside Commons News: December 2015",
    ]


def test_digest_approve_sends_and_the_dashboard_charts_it(
    proofed: tuple[Path, FrozenClock],
) -> None:
    config, clock = proofed
    approved = invoke(config, "digest", "approve", "--month", PERIOD, clock=clock)
    assert f"{PERIOD}: sent 2, deferred 0, failed 0, skipped 0" in approved.output
    settings = load_settings(config)
    with running(create_app(settings, clock=clock)) as url, httpx.Client() as client:
        session = {"Cookie": f"syndicate_admin={session_of(log_in(client, url, PASSWORD))}"}
        page = client.get(f"{url}admin", headers=session).text
        assert deliveries_row(page) == ["2", "0", "0", "0", "0"]
        assert "Issues awaiting review" in page and "Approve version" not in page
