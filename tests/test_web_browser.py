"""End to end in a real browser: subscribe on the home page, confirm from the email, then
unsubscribe from the digest's List-Unsubscribe link.

The server is the real thing: `python -m syndicate serve` in a subprocess on a free port of
127.0.0.1, with a config whose `[site] url` is that address, so the links in the emails
point at it. The browser is Debian's chromium, driven by Playwright's Python package (no
browser download: `executable_path` is the system one). Playwright launches it with
`--no-sandbox` by default (chromium_sandbox=False); that is what lets it run as root in a
container, where chromium's own sandbox cannot start.

chromium missing is a failure, not a skip, so CI cannot pass without having run this.
`scripts/test` (the README's test command) installs it when it is missing.
"""

from __future__ import annotations

import mailbox
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

# Imported, not importorskip'd: without Playwright (the `test` extra) this must fail too.
from playwright.sync_api import Browser, Page, expect, sync_playwright

EMAIL = "ann@example.org"
PHONE = {"width": 360, "height": 740}
SECRET = "browser-test-secret-" * 3


def syndicate(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "SYNDICATE_SECRET": SECRET},
        check=False,
    )
    assert result.returncode == 0, f"syndicate {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def site(project: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, config path) of a running `syndicate serve` over the bundled config."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = project / "config.toml"
    text = config.read_text()
    text = re.sub(r'(?m)^url = "https://news\.riverside-commons\.example"', f'url = "{url}"', text)
    assert url in text, "the bundled config's [site] url moved; update this test"
    config.write_text(text)
    syndicate(config, "ingest")

    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    server = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "--config", str(config), *serve],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SYNDICATE_SECRET": SECRET},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"syndicate serve exited:\n{server.stdout.read() if server.stdout else ''}"
                )
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("syndicate serve did not answer within 30 s")
            time.sleep(0.1)
        yield url, config
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "chromium is not installed: run the tests with ./scripts/test, which installs it, "
            "or `apt-get update && apt-get install -y chromium fonts-liberation` "
            "(Playwright drives the system browser; `playwright install` is not used)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable)
        try:
            yield launched
        finally:
            launched.close()


def status(config: Path, address: str) -> str | None:
    # Straight from the SQLite file: the server process owns its own connections, and the
    # test is synchronous (Playwright's sync API), so no async store here.
    database = config.parent / "var" / "syndicate.db"
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT status FROM subscribers WHERE email = ?", (address,)).fetchone()
    return row[0] if row else None


def outbox(config: Path) -> list[EmailMessage]:
    maildir = mailbox.Maildir(config.parent / "var" / "outbox", factory=None, create=False)
    messages = []
    for key in maildir.iterkeys():
        message = message_from_bytes(maildir.get_bytes(key), policy=policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_subscribe_confirm_and_unsubscribe_in_a_browser(
    site: tuple[str, Path], browser: Browser, tmp_path: Path
) -> None:
    url, config = site
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()

    # The home page's form, filled in as a person would: by label, with the keyboard.
    page.goto(f"{url}/")
    page.screenshot(path=tmp_path / "home-360.png", full_page=True)
    assert no_horizontal_scroll(page), "the home page scrolls sideways at 360 px"
    page.get_by_label("Email address").fill(EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type("Ann Lee")
    # A category with posts in December 2015: a digest with none of yours is not sent.
    category = page.get_by_label("Volunteering", exact=True)
    category.focus()
    page.keyboard.press("Space")
    expect(category).to_be_checked()
    page.get_by_role("button", name="Subscribe").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    assert status(config, EMAIL) == "pending"

    # The confirmation email's link, opened in the browser.
    [confirmation] = outbox(config)
    body = confirmation.get_body(("plain",))
    assert body is not None
    link = re.search(re.escape(url) + r"/confirm/[A-Za-z0-9._-]+", body.get_content())
    assert link, "no confirmation link in the email"
    page.goto(link.group(0))
    expect(page.get_by_role("heading", name="You are subscribed")).to_be_visible()
    assert status(config, EMAIL) == "active"

    # The digest, and its List-Unsubscribe URL (RFC 8058's https one; http here, locally).
    syndicate(config, "digest", "send", "--month", "2015-12")
    [digest] = [m for m in outbox(config) if m["List-Unsubscribe"]]
    links = re.findall(r"<([^>]+)>", str(digest["List-Unsubscribe"]))
    [unsubscribe] = [target for target in links if target.startswith(f"{url}/unsubscribe/")]
    page.goto(unsubscribe)
    button = page.get_by_role("button", name="Unsubscribe")
    expect(button).to_be_visible()
    page.screenshot(path=tmp_path / "unsubscribe-360.png", full_page=True)
    assert no_horizontal_scroll(page), "the unsubscribe page scrolls sideways at 360 px"
    assert status(config, EMAIL) == "active", "opening the link must not unsubscribe"

    button.click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    assert page.url == unsubscribe  # answered in place, no redirect
    assert status(config, EMAIL) == "unsubscribed"
    assert (tmp_path / "home-360.png").stat().st_size > 0
    context.close()
