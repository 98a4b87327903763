"""Shared fixtures. The store runs against a real SQLite file and a real PostgreSQL.

SYNDICATE_TEST_DATABASES picks the backends (default "sqlite,postgresql", as CI runs);
SYNDICATE_TEST_POSTGRES_URL names the server (default the local one on 127.0.0.1:5432).
Each test using PostgreSQL gets a database of its own, dropped afterwards. If PostgreSQL
is selected but unreachable the tests fail rather than skip: a silent skip would hide it.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from syndicate.clock import FrozenClock
from syndicate.store import Store

# The real HTTP and SMTP server fixtures: tests/httpserver.py, tests/smtpserver.py; the web
# app client: tests/webclient.py; the /admin dashboard's server: tests/adminsite.py; the live
# preview's server: tests/previewsite.py; the browser: tests/chromium.py.
pytest_plugins = [
    "httpserver",
    "smtpserver",
    "imapserver",
    "webclient",
    "adminsite",
    "previewsite",
    "chromium",
]

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "SYNDICATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = [
    name.strip()
    for name in os.environ.get("SYNDICATE_TEST_DATABASES", "sqlite,postgresql").split(",")
    if name.strip()
]


def _admin_dsn() -> str:
    return make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    name = f"syndicate_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each selected backend: a SQLite file or a fresh PG database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'syndicate.db'}"
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    raise ValueError(f"unknown backend {request.param!r} in SYNDICATE_TEST_DATABASES")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2015, 12, 15, 12, 0, tzinfo=UTC))


@pytest.fixture
def artefacts(request: pytest.FixtureRequest) -> Path:
    """Where a test keeps what a person may want to look at afterwards (screenshots):
    var/test-artefacts/<test>/ in the checkout, emptied when the test starts, kept after it
    (var/ is not in git)."""
    name = re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")
    folder = REPO / "var" / "test-artefacts" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def bundled_project(tmp_path: Path) -> Path:
    """A copy of the bundled config.toml with its examples, templates and catalogs, whole:
    four languages and the Thai partner's feed."""
    shutil.copy(REPO / "config.toml", tmp_path / "config.toml")
    for folder in ("examples", "templates", "locales"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, tmp_path / folder)
    return tmp_path


# What makes the bundled config a site of several languages (issue 20).
OFFERED_LANGUAGES = 'languages = ["en", "th", "km", "my"]\n'
THAI_SOURCE = re.compile(r'\n\[\[sources\]\]\nname = "samut-sakhon-partner"\n(?:[^\n\[]+\n)+')


@pytest.fixture
def project(bundled_project: Path) -> Path:
    """The bundled config as it was before it had languages: one language and the three
    English example feeds. Most tests were written for those feeds (how many posts a month
    has, which sources there are); the language tests take `bundled_project`."""
    english_only(bundled_project / "config.toml")
    return bundled_project


def english_only(config: Path) -> None:
    """Make the bundled config at `config` one of one language without the Thai feed."""
    text = config.read_text(encoding="utf-8")
    # The line goes back to the comment it was, which some tests turn on.
    english, found = THAI_SOURCE.subn(
        "\n", text.replace(OFFERED_LANGUAGES, f"# {OFFERED_LANGUAGES}", 1)
    )
    assert found == 1 and f"\n{OFFERED_LANGUAGES}" not in english, "the bundled config changed"
    config.write_text(english, encoding="utf-8")
