"""The `browser` fixture: Debian's chromium driven by Playwright (its sync API).

Playwright drives the system browser through `executable_path`; `playwright install` is
never used, so no browser is downloaded. Registered for every test in tests/conftest.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright


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
