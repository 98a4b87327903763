"""Thai posts on the English home page and in the digest, drawn by a real browser (Debian's
chromium through Playwright): the Thai text is marked lang="th" and its glyphs come from a
font that has them (Noto Sans Thai, Debian's fonts-noto-core, installed by scripts/test),
not from boxes or a fallback the page does not name.

Which font drew a node is Chromium's own answer (the DevTools protocol's
CSS.getPlatformFontsForNode). Screenshots are kept in var/test-artefacts/<test>/.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from test_web_browser import free_port, serving, syndicate

THAI_TITLE = "เปิดศูนย์ให้คำปรึกษาแรงงานข้ามชาติแห่งใหม่ในจังหวัดสมุทรสาคร"


def fonts_for(page: Page, selector: str) -> list[dict[str, Any]]:
    """The platform fonts Chromium used to draw the text of the first `selector` match:
    family names and how many glyphs each drew."""
    session = page.context.new_cdp_session(page)
    session.send("DOM.enable")
    session.send("CSS.enable")
    root = session.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = session.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    assert node, f"no element matches {selector}"
    # The text node inside: fonts are reported for the node and its text.
    return session.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]


def assert_thai_font(page: Page, selector: str) -> None:
    """Every Thai character of the element was drawn by Noto Sans Thai, and any other font
    drew at most its spaces and ASCII (Thai puts spaces between phrases): no box, no
    fallback font the page does not name."""
    text = page.locator(selector).first.inner_text()
    thai = sum(1 for char in text if 0x0E00 <= ord(char) <= 0x0E7F)
    other = len(text) - thai
    used = {font["familyName"]: font["glyphCount"] for font in fonts_for(page, selector)}
    assert thai and used.get("Noto Sans Thai", 0) >= thai, (used, text)
    assert sum(n for name, n in used.items() if name != "Noto Sans Thai") <= other, (used, text)


def thai_site(project: Path) -> Path:
    """The bundled config, which offers Thai and has a Thai partner's feed, ingested."""
    config = project / "config.toml"
    syndicate(config, "ingest")
    return config


def test_thai_posts_are_drawn_in_a_thai_font(
    bundled_project: Path,
    browser: Browser,
    tmp_path: Path,
    artefacts: Path,
) -> None:
    if not shutil.which("fc-list") or "Noto Sans Thai" not in _font_families():
        pytest.fail(
            "Noto Sans Thai is not installed: run the tests with ./scripts/test, which installs "
            "fonts-noto-core, or `apt-get install -y fonts-noto-core`"
        )
    config = thai_site(bundled_project)
    port = free_port()
    with serving(config, port):
        page = browser.new_page(viewport={"width": 1000, "height": 1400})
        page.goto(f"http://127.0.0.1:{port}/")
        heading = page.locator("h3[lang=th]", has_text=THAI_TITLE)
        assert heading.count() == 1
        assert page.locator("html").get_attribute("lang") == "en"
        page.screenshot(path=artefacts / "home-thai.png", full_page=True)
        assert_thai_font(page, "h3[lang=th] a")
        english = fonts_for(page, "h3:not([lang]) a")
        assert "Noto Sans Thai" not in {font["familyName"] for font in english}

    digest = tmp_path / "digest.html"
    # A Thai reader's copy: Thai throughout, so the page says lang="th" once.
    syndicate(
        config, "digest", "preview", "--month", "2015-12", "--language", "th",
        "--format", "html", "-o", str(digest),
    )  # fmt: skip
    html = digest.read_text()
    assert re.search(r'<html lang="th"', html) and THAI_TITLE in html
    page = browser.new_page(viewport={"width": 600, "height": 1400})
    page.goto(digest.as_uri())
    page.screenshot(path=artefacts / "digest-thai.png", full_page=True)
    assert_thai_font(page, "p.excerpt")
    assert_thai_font(page, "td.footer a")  # the chrome's words too


def _font_families() -> str:
    import subprocess

    return subprocess.run(
        ["fc-list", ":", "family"], capture_output=True, text=True, check=False
    ).stdout


def test_the_visible_switch_changes_the_pages_language(
    bundled_project: Path, browser: Browser, artefacts: Path
) -> None:
    """English by the browser's language; the switch's ไทย makes the home page Thai, and the
    archive it links to, and the choice holds (the cookie) until English is picked again."""
    from test_web_languages import thai_catalog

    # The test's few Thai words in place of the repo's catalog: what it asserts is its own.
    thai_catalog(bundled_project / "locales")
    config = thai_site(bundled_project)
    port = free_port()
    with serving(config, port):
        context = browser.new_context(locale="en-GB", viewport={"width": 1000, "height": 1400})
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        assert page.locator("html").get_attribute("lang") == "en"
        switch = page.get_by_role("navigation", name="Language")
        current = switch.locator("a[aria-current]")
        assert current.inner_text() == "English" and current.get_attribute("hreflang") == "en"
        switch.get_by_role("link", name="ไทย").click()
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == "th"
        assert page.locator("h2#latest").inner_text() == "โพสต์ล่าสุด"
        switch = page.get_by_role("navigation", name="ภาษา")
        assert switch.locator("a[aria-current]").get_attribute("lang") == "th"
        page.screenshot(path=artefacts / "home-switched-to-thai.png", full_page=True)
        assert_thai_font(page, "nav.languages a[lang=th]")
        # A month on the Thai home page opens the Thai archive page.
        page.locator("#archive ~ ul a").first.click()
        page.wait_for_load_state()
        assert page.url.endswith(".th.html")
        assert page.locator("h1").inner_text().startswith("คลังบทความเดือน ")
        page.screenshot(path=artefacts / "archive-thai.png", full_page=True)
        # The cookie: the plain address now answers in Thai though the browser asks English.
        page.goto(f"http://127.0.0.1:{port}/subscribe")
        assert page.locator("html").get_attribute("lang") == "th"
        page.get_by_role("navigation", name="ภาษา").get_by_role("link", name="English").click()
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == "en"
        page.goto(f"http://127.0.0.1:{port}/")
        assert page.locator("h2#latest").inner_text() == "Latest posts"
        page.screenshot(path=artefacts / "home-back-to-english.png", full_page=True)
        context.close()
