"""The dashboard in Chromium: log in through the form, see the charts, log out.

Debian's chromium through Playwright (executable_path, no browser download), against the
real server on http://127.0.0.1 (tests/adminsite.py). The session cookie is `Secure`:
Chromium keeps and sends it over plain http to 127.0.0.1 and localhost, which it treats as
secure contexts, so trying the dashboard locally works; on any other host it must be HTTPS
(README, "The dashboard"). A screenshot of the dashboard goes to var/test-artefacts/.
"""

from __future__ import annotations

from pathlib import Path

from adminsite import (
    PASSWORD,
)
from playwright.sync_api import Browser, expect


def test_log_in_through_the_form_and_see_the_charts(
    site: str,
    browser: Browser,
    artefacts: Path,
) -> None:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.goto(f"{site}admin")
    expect(page).to_have_url(f"{site}admin/login")
    page.get_by_label("Password").fill("not it")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("That password is not right.")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{site}admin")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(4)
    for index in range(4):
        expect(charts.nth(index)).to_be_visible()
    # A bar's tooltip is its <title>: the December issue's sent count.
    assert page.locator("svg.chart rect title", has_text="sent 5").count() >= 1
    (cookie,) = [c for c in context.cookies() if c["name"] == "syndicate_admin"]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/admin"
    page.screenshot(path=artefacts / "dashboard.png", full_page=True)

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{site}admin/login")
    assert not [c for c in context.cookies() if c["name"] == "syndicate_admin"]
    page.goto(f"{site}admin")
    expect(page).to_have_url(f"{site}admin/login")
    context.close()
