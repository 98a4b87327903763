"""End to end in a real browser, every form posted by Chromium itself.

1. Subscribe on the home page, confirm from the email (a button), then unsubscribe from the
   digest's List-Unsubscribe link, with `[site] url` set to the local server.
2. The local trial (issue 16): the bundled config exactly as shipped, its `[site] url` a
   public name that does not exist, served at 127.0.0.1: subscribe -> the confirmation
   link from the outbox -> the Confirm button -> the welcome email -> preferences saved twice
   -> the preferences form on the unsubscribe page -> unsubscribe. Links from emails carry
   the public name, so the test opens their path on the local server, as the admin would.

The server is the real thing: `python -m syndicate serve` in a subprocess on a free port of
127.0.0.1. The browser is Debian's chromium, driven by Playwright's Python package (no
browser download: `executable_path` is the system one). Playwright launches it with
`--no-sandbox` by default (chromium_sandbox=False); that is what lets it run as root in a
container, where chromium's own sandbox cannot start.

chromium missing is a failure, not a skip, so CI cannot pass without having run this.
`scripts/test` (the README's test command) installs it when it is missing.
"""

from __future__ import annotations

import contextlib
import http.server
import mailbox
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

# Imported, not importorskip'd: without Playwright (the `test` extra) this must fail too.
from playwright.sync_api import Browser, Page, expect

EMAIL = "ann@example.org"
PHONE = {"width": 360, "height": 740}
SECRET = "browser-test-secret-" * 3
PUBLIC = "https://news.riverside-commons.example"  # the bundled config's [site] url


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


@contextlib.contextmanager
def serving(config: Path, port: int) -> Iterator[None]:
    """`syndicate serve` on 127.0.0.1:`port` over `config`, until the block ends."""
    url = f"http://127.0.0.1:{port}"
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
        yield
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def site(project: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, config path) of a running `syndicate serve` over the bundled config, with
    its `[site] url` set to that address (so the links in emails point at it)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = project / "config.toml"
    text = config.read_text()
    text = re.sub(r'(?m)^url = "https://news\.riverside-commons\.example"', f'url = "{url}"', text)
    assert url in text, "the bundled config's [site] url moved; update this test"
    config.write_text(text)
    syndicate(config, "ingest")
    with serving(config, port):
        yield url, config


@pytest.fixture
def local_site(project: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, config path): the bundled config exactly as shipped, `[site] url` the
    public name that does not exist, served on 127.0.0.1 as the README's trial does."""
    port = free_port()
    config = project / "config.toml"
    assert f'url = "{PUBLIC}"' in config.read_text(), "the bundled [site] url moved"
    syndicate(config, "ingest")
    with serving(config, port):
        yield f"http://127.0.0.1:{port}", config


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
    site: tuple[str, Path], browser: Browser, artefacts: Path
) -> None:
    url, config = site
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()

    # The home page's form, filled in as a person would: by label, with the keyboard.
    page.goto(f"{url}/")
    page.screenshot(path=artefacts / "home-360.png", full_page=True)
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
    assert status(config, EMAIL) == "pending", "opening the link must not confirm"
    page.get_by_role("button", name="Confirm my subscription").click()
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
    page.screenshot(path=artefacts / "unsubscribe-360.png", full_page=True)
    assert no_horizontal_scroll(page), "the unsubscribe page scrolls sideways at 360 px"
    assert status(config, EMAIL) == "active", "opening the link must not unsubscribe"

    button.click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    assert page.url == unsubscribe  # answered in place, no redirect
    assert status(config, EMAIL) == "unsubscribed"
    assert (artefacts / "home-360.png").stat().st_size > 0
    context.close()


def local(url: str, link: str) -> str:
    """A link from an email (on the public `[site] url`) opened on the local server, as the
    admin trying it on 127.0.0.1 does: same path, the host the app is served on."""
    assert link.startswith(f"{PUBLIC}/"), link
    return url + link.removeprefix(PUBLIC)


def link_in(message: EmailMessage, purpose: str) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(re.escape(PUBLIC) + rf"/{purpose}/[A-Za-z0-9._-]+", body.get_content())
    assert found, f"no {purpose} link in {message['Subject']!r}"
    return found.group(0)


def subscriber_row(config: Path, address: str) -> tuple[str, str, str]:
    database = config.parent / "var" / "syndicate.db"
    with sqlite3.connect(database) as db:
        row = db.execute(
            "SELECT status, name, categories FROM subscribers WHERE email = ?", (address,)
        ).fetchone()
    return (row[0], row[1], row[2]) if row else ("", "", "")


class RefererLog(http.server.BaseHTTPRequestHandler):
    """Another origin: records the Referer each request arrives with, by path."""

    seen: ClassVar[list[tuple[str, str | None]]]

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Referer")))
        body = b"<!doctype html><title>elsewhere</title><p>elsewhere</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def elsewhere() -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    seen: list[tuple[str, str | None]] = []
    handler = type("Handler", (RefererLog,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/away", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_local_trial_from_subscribe_to_unsubscribe_in_a_browser(
    local_site: tuple[str, Path], browser: Browser, artefacts: Path
) -> None:
    """Issue 16's walk, on the bundled config as shipped, at 127.0.0.1: every form posted
    by Chromium itself, every page reached through the page before or an email's link."""
    url, config = local_site
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    # A CSP refusal ("Refused to send form data to '...' because it violates...") is only
    # a console error; a link to nowhere, a failed response. The browser asks for
    # /favicon.ico on its own (the site has none).
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )

    # Subscribe on the home page.
    page.goto(f"{url}/")
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_label("Name", exact=False).first.fill("Ann")
    page.get_by_label("Volunteering", exact=True).check()
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    assert page.url == f"{url}/subscribe"
    assert status(config, EMAIL) == "pending"

    # The confirmation email's link (on the public name, as every email's) opened here: a
    # button, and nothing confirmed until it is pressed.
    [confirmation] = outbox(config)
    page.goto(local(url, link_in(confirmation, "confirm")))
    expect(page.get_by_role("heading", name="Confirm your subscription")).to_be_visible()
    assert status(config, EMAIL) == "pending", "opening the link must not confirm"
    page.screenshot(path=artefacts / "confirm-360.png", full_page=True)
    assert no_horizontal_scroll(page), "the confirm page scrolls sideways at 360 px"
    page.get_by_role("button", name="Confirm my subscription").click()
    expect(page.get_by_role("heading", name="You are subscribed")).to_be_visible()
    assert status(config, EMAIL) == "active"

    # The welcome email.
    [welcome] = [m for m in outbox(config) if m["Subject"] != confirmation["Subject"]]
    assert welcome["Subject"] == "Welcome to Riverside Commons News"
    assert welcome["To"].addresses[0].addr_spec == EMAIL

    # Preferences, through the page's own link (relative: it stays on 127.0.0.1), saved
    # twice: the page the first save answers with must save again.
    page.get_by_role("link", name="Choose your categories").click()
    expect(page.get_by_role("heading", name="Your subscription")).to_be_visible()
    assert page.url.startswith(f"{url}/preferences/")
    page.get_by_label("Name", exact=False).fill("Ann Lee")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_text("Your preferences are saved")).to_be_visible()
    assert subscriber_row(config, EMAIL)[:2] == ("active", "Ann Lee")
    page.get_by_label("Wildlife", exact=True).check()
    page.get_by_label("Name", exact=False).fill("Ann B. Lee")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_text("Your preferences are saved")).to_be_visible()
    state, name, categories = subscriber_row(config, EMAIL)
    assert (state, name) == ("active", "Ann B. Lee")
    assert "Wildlife" in categories and "Volunteering" in categories

    # The token in the page's URL goes to no other origin: a link followed from the page
    # arrives there without a Referer.
    with elsewhere() as (away, seen):
        page.evaluate(
            "href => { const a = document.createElement('a'); a.href = href; a.id = 'away';"
            " a.textContent = 'away'; document.body.append(a); }",
            away,
        )
        page.click("#away")
        expect(page.get_by_text("elsewhere")).to_be_visible()
    assert [referer for path, referer in seen if path == "/away"] == [None], seen

    # The welcome's unsubscribe link: the preferences form embedded there saves too...
    unsubscribe = local(url, link_in(welcome, "unsubscribe"))
    page.goto(unsubscribe)
    expect(
        page.get_by_role("heading", name="Unsubscribe from Riverside Commons News?")
    ).to_be_visible()
    page.get_by_label("Name", exact=False).fill("A. Lee")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_text("Your preferences are saved")).to_be_visible()
    assert subscriber_row(config, EMAIL)[:2] == ("active", "A. Lee")

    # ... and its button unsubscribes.
    page.goto(unsubscribe)
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    assert page.url == unsubscribe
    assert status(config, EMAIL) == "unsubscribed"
    assert problems == [], problems
    context.close()
