"""Month keys and labels (syndicate.months): one rule for archives, the home page and
digests, the same bytes whatever locale the process runs in."""

from __future__ import annotations

import calendar
import locale
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from syndicate.digest import period
from syndicate.models import PostKey
from syndicate.months import month_key, month_label
from syndicate.publish.plan import make_plan
from syndicate.web.home import archive_months

BERLIN = ZoneInfo("Europe/Berlin")
# New Year's Eve in UTC is already January in Berlin.
NEW_YEAR = datetime(2015, 12, 31, 23, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def german_time(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The process's LC_TIME set to German, from a locale compiled for this test run (the
    machine need not have one installed)."""
    if shutil.which("localedef") is None:
        pytest.skip("localedef (glibc's locales) is not installed")
    folder = tmp_path_factory.mktemp("locales")
    subprocess.run(
        # ISO-8859-1 compiles in a fraction of the time UTF-8 takes.
        ["localedef", "-i", "de_DE", "-f", "ISO-8859-1", str(folder / "de_DE.ISO-8859-1")],
        check=True,
        capture_output=True,
    )
    saved_path = os.environ.get("LOCPATH")
    saved = locale.setlocale(locale.LC_TIME)
    os.environ["LOCPATH"] = str(folder)
    try:
        locale.setlocale(locale.LC_TIME, "de_DE.ISO-8859-1")
        # The attack is real: the standard library now names months in German.
        assert calendar.month_name[12] == "Dezember"
        yield
    finally:
        locale.setlocale(locale.LC_TIME, saved)
        if saved_path is None:
            os.environ.pop("LOCPATH", None)
        else:
            os.environ["LOCPATH"] = saved_path


def test_month_keys_are_taken_in_the_site_time_zone() -> None:
    assert month_key(NEW_YEAR, ZoneInfo("UTC")) == "2015-12"
    assert month_key(NEW_YEAR, BERLIN) == "2016-01"
    assert month_label("2016-01") == "January 2016"
    assert [month_label(f"2015-{n:02d}").split()[0] for n in (3, 5, 12)] == [
        "March",
        "May",
        "December",
    ]


def _key(published: datetime) -> PostKey:
    return PostKey(1, "river", (), published, published, "hash", None, None)


def test_archives_home_page_and_digest_name_months_in_english_under_any_locale(
    german_time: None,
) -> None:
    assert month_label("2015-12") == "December 2015"
    plan = make_plan(
        [_key(NEW_YEAR)],
        site_title="Site",
        site_description="About",
        site_url="https://example.org",
        feeds_url="https://example.org/feeds",
        timezone=BERLIN,
        items=10,
        formats=("atom",),
        sources={"river": ("River", None)},
        now=datetime(2016, 3, 1, tzinfo=UTC),
        context="",
    )
    assert [(m.key, m.label) for m in plan.months] == [("2016-01", "January 2016")]
    [archive] = [feed for feed in plan.feeds if feed.path == "archive/2016-01"]
    assert archive.title == "Site: Archive for January 2016"
    settings = SimpleNamespace(site=SimpleNamespace(tz=BERLIN, url="https://example.org"))
    [month] = archive_months(settings, [_key(NEW_YEAR)])  # type: ignore[arg-type]
    assert (month.key, month.label) == ("2016-01", "January 2016")
    assert period.month("2015-12", BERLIN).label == "December 2015"
    assert period.containing(NEW_YEAR, "month", BERLIN).key == "2016-01"
