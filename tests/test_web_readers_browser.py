"""What a reader finds, in a real browser (Debian's chromium, driven by Playwright): a feed
opened from the home page reads as a page, the past issues and their web copies, and on a
phone the subscribe form before the tenth post.

The server is `python -m syndicate serve` over the bundled config on 127.0.0.1, published
and with December 2015's digest built. chromium missing is a failure, not a skip (see
tests/test_web_browser.py).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import feedparser
import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from test_web_browser import free_port, serving, syndicate

PHONE = {"width": 360, "height": 740}


@pytest.fixture
def site(project: Path) -> Iterator[str]:
    """The base URL of a running `syndicate serve` over the bundled config, its `[site] url`
    that address, published and with December 2015's digest built."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = project / "config.toml"
    text = config.read_text()
    text = re.sub(r'(?m)^url = "https://news\.riverside-commons\.example"', f'url = "{url}"', text)
    assert url in text, "the bundled config's [site] url moved; update this test"
    config.write_text(text)
    syndicate(config, "ingest")
    syndicate(config, "digest", "build", "--month", "2015-12")
    syndicate(config, "publish")  # lists the issue just built
    with serving(config, port):
        yield url


def titles_in(url: str) -> list[str]:
    """The entries' titles as a feed reader reads the feed."""
    response = httpx.get(url, headers={"accept": "application/rss+xml, application/atom+xml"})
    parsed = feedparser.parse(io.BytesIO(response.content))
    assert not parsed.bozo and parsed.entries
    return [entry.title for entry in parsed.entries]


def shown_titles(page: Page) -> list[str]:
    return [text.strip() for text in page.locator("article h2").all_inner_texts()]


def test_a_feed_clicked_on_the_home_page_reads_as_a_page(site: str, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(f"{site}/")
    page.locator("#feeds").locator("..").get_by_role("link", name="RSS", exact=True).click()
    expect(page.get_by_text("This is a feed")).to_be_visible()
    assert page.url == f"{site}/feeds/index.rss"
    expect(page.get_by_role("heading", level=1)).to_have_text("Riverside Commons News")
    assert shown_titles(page) == titles_in(f"{site}/feeds/index.rss")

    # Every feed is listed on /feeds/; a category's Atom feed reads as a page too.
    page.goto(f"{site}/")
    page.get_by_role("link", name="Every feed: by category and by source").click()
    assert page.url == f"{site}/feeds/"
    expect(page.get_by_text("A feed is a list of the latest posts")).to_be_visible()
    label = page.locator("strong", has_text=re.compile(r"^Rivers$"))
    rivers = page.locator("li").filter(has=label)
    rivers.get_by_role("link", name="Atom", exact=True).click()
    assert page.url == f"{site}/feeds/category/rivers.atom"
    expect(page.get_by_text("This is a feed")).to_be_visible()
    assert shown_titles(page) == titles_in(page.url)
    page.close()


def test_past_issues_and_a_web_copy_that_offers_to_subscribe(site: str, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(f"{site}/")
    page.get_by_role("link", name="Read past issues").click()
    assert page.url == f"{site}/feeds/digest/"
    page.get_by_role("link", name="Riverside Commons News: December 2015").click()
    assert page.url == f"{site}/feeds/digest/2015-12.html"
    body = page.locator("body").inner_text()
    assert "Hello" not in body and "receiving this email" not in body
    assert "Unsubscribe" not in body
    page.locator(".footer").get_by_role("link", name="Subscribe", exact=True).click()
    assert page.url == f"{site}/subscribe"
    expect(page.get_by_label("Email address")).to_be_visible()
    page.close()


def test_on_a_phone_the_subscribe_form_comes_before_the_tenth_post(
    site: str, browser: Browser
) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{site}/")
    posts = page.locator("article.post")
    assert posts.count() == 10
    form = page.locator("form.subscribe").bounding_box()
    boxes = [posts.nth(i).bounding_box() for i in range(10)]
    assert form is not None and all(boxes)
    # After the first three posts, before the fourth (so well before the tenth).
    assert boxes[2]["y"] < form["y"] < boxes[3]["y"]  # type: ignore[index]
    # Within the first few screens, not below ten posts.
    assert form["y"] < boxes[9]["y"]  # type: ignore[index]
    context.close()
