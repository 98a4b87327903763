"""The live preview in Chromium: the page reloads itself when a template is saved (issue 21,
item 3), at the width and for the reader it showed.

Debian's chromium through Playwright (executable_path, no browser download) against the
real command serving on 127.0.0.1 (tests/previewsite.py). Screenshots of the page at both
widths go to var/test-artefacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from previewsite import PreviewServer, start, stop, syndicate

DIGEST = "templates/email/digest.html.j2"
SUBJECT = "Riverside Commons News: December 2015"


@pytest.fixture
def served(preview_project: Path) -> Iterator[PreviewServer]:
    add = ("subscribers", "add", "ann@example.org", "--name", "Ann", "--category", "Rivers")
    syndicate(preview_project, *add)
    server = start(preview_project, "--month", "2015-12", "--no-link-check")
    try:
        yield server
    finally:
        stop(server)


def copy_frame_width(page: Page) -> float:
    box = page.locator("#copy").bounding_box()
    assert box is not None
    return box["width"]


def test_the_page_reloads_itself_after_a_template_edit_keeping_width_and_reader(
    served: PreviewServer, browser: Browser, artefacts: Path
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.goto(served.url)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Digest 2015-12: {SUBJECT}")
    copy = page.frame_locator("#copy")
    expect(copy.locator(".post-title").first).to_be_visible()
    assert copy_frame_width(page) > 800
    expect(page.locator("#checks")).to_have_attribute("aria-busy", "false")
    expect(page.locator("#checks")).to_contain_text("Links are not checked (--no-link-check).")
    page.screenshot(path=artefacts / "preview-desktop.png", full_page=True)

    page.get_by_role("link", name="Text").click()
    expect(page.locator("#text")).to_contain_text(SUBJECT)

    # Ann's copy at a phone's width.
    page.get_by_role("link", name="Phone").click()
    page.get_by_label("Subscriber").fill("ann@example.org")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#reader")).to_have_text("Ann <ann@example.org>")
    expect(copy.locator(".greeting")).to_contain_text("Ann")
    assert copy_frame_width(page) == pytest.approx(375, abs=2)
    shown = page.url
    page.screenshot(path=artefacts / "preview-phone.png", full_page=True)

    source = (served.project / DIGEST).read_text(encoding="utf-8")
    edited = source.replace(
        "{% block content %}", '{% block content %}<p class="fresh">Edited just now</p>'
    )
    served.edit(DIGEST, edited)
    # Nobody touches the page: its script sees the change and reloads it.
    expect(copy.locator("p.fresh")).to_have_text("Edited just now", timeout=10_000)
    assert page.url == shown
    assert copy_frame_width(page) == pytest.approx(375, abs=2)
    expect(page.locator("#reader")).to_have_text("Ann <ann@example.org>")

    # A mistake while editing: the page lists it at its file and line, then recovers.
    served.edit(DIGEST, edited.replace('class="fresh">', 'class="fresh">{{ 1 +  }}'))
    problem = page.locator('#problems li[data-kind="template"]')
    expect(problem).to_contain_text("templates/email/digest.html.j2:", timeout=10_000)
    expect(page.locator(".copy .empty")).to_have_text("Nothing to show: see the problems.")
    served.edit(DIGEST, source)
    expect(copy.locator(".post-title").first).to_be_visible(timeout=10_000)
    expect(copy.locator("p.fresh")).to_have_count(0)
    expect(problem).to_have_count(0)
    assert errors == []
    page.close()
