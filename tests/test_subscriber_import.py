"""Importing and exporting big lists: the import streams the file and writes it in batches,
the export streams the rows. With a tiny batch size, every rule of the import (rejects by
line, repeats, suppressions, statuses, per-column updates) must hold across batch
boundaries exactly as within one batch. Service tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click.testing
import psycopg
import pytest
from click.testing import CliRunner
from email_validator import EmailNotValidError, validate_email
from rich.console import Console
from sqlalchemy.engine import make_url

from syndicate import subscribers as service
from syndicate.cli import cli
from syndicate.cli.import_progress import import_progress
from syndicate.errors import UsageError
from syndicate.store import Store, subscriber_batches
from syndicate.subscribers import checks

NOW = datetime(2015, 12, 15, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=3)
OFFERED = ["Rivers", "Wildlife", "Field notes"]


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def listing(found: list) -> dict[str, tuple]:
    return {s.email: (s.name, s.categories, s.status, s.consent_source) for s in found}


# --- the fast paths of the checks give what the full checks give -------------------------


ADDRESSES = [
    "ann@example.org",
    "Ann.Lee+news@Example.ORG",
    "o'brien@example.org",
    "a.b.c.d@sub.domain.example.org",
    "x@EXAMPLE.com",
    "!#$%&'*+/=?^_`{|}~-@example.org",
    "ann..lee@example.org",
    ".ann@example.org",
    "ann.@example.org",
    "ann@example",
    "ann@localhost",
    "ann@test",
    "ann@example.invalid",
    "ann@-example.org",
    "ann@example-.org",
    "ann@exa_mple.org",
    "ann@example..org",
    "ann@.example.org",
    "ann@example.org.",
    "ann@123.456",
    "ann@xn--bcher-kva.example",
    "ann@bücher.example",
    "anné@example.org",
    '"ann lee"@example.org',
    "Ann <ann@example.org>",
    "ann@[127.0.0.1]",
    "a" * 64 + "@example.org",
    "a" * 65 + "@example.org",
    "a@" + ".".join(["b" * 63] * 4) + ".org",
    "a" * 60 + "@" + ".".join(["b" * 60] * 3) + ".example.org",
    "ann@" + "b" * 64 + ".org",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_normalise_email_is_the_full_check(address: str) -> None:
    try:
        expected: str | None = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    if expected is None:
        with pytest.raises(checks.RejectedAddress, match="invalid address"):
            checks.normalise_email(address)
    else:
        assert checks.normalise_email(address) == expected.lower()


@pytest.mark.parametrize(
    "name",
    ["Ann Lee", "Fátima Novák", "李", "A\u00a0B", "Ann\tLee", "A\u2028B", "A\x85B", "A\u200bB"],
)
def test_clean_name_fast_path_refuses_what_the_full_check_refuses(name: str) -> None:
    refused = any(ch in name for ch in "\t\u2028\x85")
    if refused:
        with pytest.raises(checks.InvalidName):
            checks.clean_name(name)
    else:
        assert checks.clean_name(name) == name


# --- import across batches -----------------------------------------------------------------


MEMBERS = (
    "email,name,categories\n"
    "a@example.org,A,Rivers\n"  # 2
    "b@example.org,B,\n"  # 3
    "nonsense,N,\n"  # 4: invalid
    "forgotten@example.org,F,\n"  # 5: suppressed
    "c@example.org,C,rivers;FIELD NOTES\n"  # 6
    "\n"  # 7: blank
    "A@example.org,A again,\n"  # 8: repeats 2, in another batch
    "d@example.org,D,News\n"  # 9: unknown category (the address stays free)
    "d@example.org,D,Wildlife\n"  # 10
    "Forgotten@example.org,F,\n"  # 11: repeats 5 (a suppressed line still takes its address)
    "old@example.org,Old,Wildlife\n"  # 12: known and unsubscribed
    "b@example.org,Bell\x07,\n"  # 13: repeats 3 (said before the bad name)
    "e@example.org,E,,extra\n"  # 14: too many fields
    "f@example.org,F,\n"  # 15
)


async def prepare(store: Store) -> None:
    await service.add(store, "forgotten@example.org", NOW, confirmed=True)
    await service.forget(store, "forgotten@example.org", NOW)
    await service.add(store, "old@example.org", NOW, name="Old", confirmed=True)
    await service.remove(store, "old@example.org", NOW)


EXPECTED_REJECTS = [
    (4, "invalid address 'nonsense'"),
    (5, f"forgotten@example.org: {service.SUPPRESSED}"),
    (8, "a@example.org: repeats line 2"),
    (9, "d@example.org: unknown category 'News'"),
    (11, "forgotten@example.org: repeats line 5"),
    (13, "b@example.org: repeats line 3"),
    (14, "4 fields, the header has 3"),
]


def assert_rejects(rejects: list[tuple[int, str]]) -> None:
    assert [line for line, _ in rejects] == [line for line, _ in EXPECTED_REJECTS]
    for (_, reason), (_, start) in zip(rejects, EXPECTED_REJECTS, strict=True):
        assert reason.startswith(start), (reason, start)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5000])
async def test_import_in_batches_keeps_every_rule(
    store: Store, tmp_path: Path, batch_size: int
) -> None:
    await prepare(store)
    path = write_csv(tmp_path / "members.csv", MEMBERS)
    result = await service.import_csv(store, path, NOW, offered=OFFERED, batch_size=batch_size)

    assert_rejects(result.rejects)
    assert (result.imported, result.updated, result.unchanged) == (5, 1, 0)
    assert result.rejected == len(EXPECTED_REJECTS)
    source = "import:members.csv"
    assert listing(await store.list_subscribers()) == {
        "old@example.org": ("Old", ("Wildlife",), "unsubscribed", "cli"),  # never resubscribed
        "a@example.org": ("A", ("Rivers",), "pending", source),
        "b@example.org": ("B", (), "pending", source),
        "c@example.org": ("C", ("Rivers", "Field notes"), "pending", source),
        "d@example.org": ("D", ("Wildlife",), "pending", source),
        "f@example.org": ("F", (), "pending", source),
    }
    assert await store.subscriber_by_email("forgotten@example.org") is None

    # The same file again: everything is known and unchanged, the rejects are the same.
    again = await service.import_csv(store, path, LATER, offered=OFFERED, batch_size=batch_size)
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 6)
    assert_rejects(again.rejects)


async def test_import_updates_only_changed_columns_across_batches(
    store: Store, tmp_path: Path
) -> None:
    rows = "".join(f"p{n}@example.org,P{n},Rivers\n" for n in range(10))
    path = write_csv(tmp_path / "m.csv", "email,name,categories\n" + rows)
    first = await service.import_csv(store, path, NOW, confirmed=True, batch_size=3)
    assert (first.imported, first.updated, first.unchanged, first.rejected) == (10, 0, 0, 0)
    before = {s.email: s for s in await store.list_subscribers()}
    assert {s.status for s in before.values()} == {"active"}

    # Only categories: names stay; one line changes them, one only the case of a category.
    path = write_csv(
        tmp_path / "c.csv",
        "email,categories\np1@example.org,Wildlife\np7@example.org,Rivers\np8@example.org,\n",
    )
    changed = await service.import_csv(store, path, LATER, offered=OFFERED, batch_size=2)
    assert (changed.imported, changed.updated, changed.unchanged) == (0, 2, 1)
    after = {s.email: s for s in await store.list_subscribers()}
    assert (after["p1@example.org"].name, after["p1@example.org"].categories) == (
        "P1",
        ("Wildlife",),
    )
    assert after["p8@example.org"].categories == ()
    for email in set(before) - {"p1@example.org", "p8@example.org"}:
        assert after[email] == before[email]  # untouched, status and dates included
    assert after["p1@example.org"].consented_at == NOW  # consent is not the file's to change


async def test_a_big_batch_uses_chunked_lookups(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subscriber_batches, "CHUNK", 4)  # as if a batch passed the IN limit
    await service.add(store, "k3@example.org", NOW, name="Known")
    rows = "".join(f"k{n}@example.org,K{n}\n" for n in range(11))
    path = write_csv(tmp_path / "m.csv", "email,name\n" + rows + "k9@example.org,Again\n")
    result = await service.import_csv(store, path, NOW, batch_size=100)
    assert (result.imported, result.updated, result.unchanged) == (10, 1, 0)
    assert result.rejects == [(13, "k9@example.org: repeats line 11")]


async def test_rejects_stream_to_the_callback_in_line_order(store: Store, tmp_path: Path) -> None:
    await prepare(store)
    path = write_csv(tmp_path / "members.csv", MEMBERS)
    heard: list[tuple[int, str]] = []
    progress: list[tuple[int, int, int]] = []
    result = await service.import_csv(
        store,
        path,
        NOW,
        offered=OFFERED,
        batch_size=2,
        on_reject=lambda line, reason: heard.append((line, reason)),
        on_progress=lambda done, total, lines: progress.append((done, total, lines)),
    )
    assert_rejects(heard)
    assert result.rejects == []  # the callback had them: nothing piles up in memory
    assert result.rejected == len(EXPECTED_REJECTS)
    size = path.stat().st_size
    assert progress[-1] == (size, size, result.lines)
    assert [done for done, _, _ in progress] == sorted(done for done, _, _ in progress)


async def test_a_file_that_is_not_utf8_is_refused_before_anything_is_written(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "latin1.csv"
    rows = "".join(f"u{n}@example.org,U{n}\n" for n in range(20))
    path.write_bytes(("email,name\n" + rows).encode() + "z@example.org,Zoë\n".encode("latin-1"))
    with pytest.raises(UsageError, match=r"cannot read: not UTF-8 at byte \d+"):
        await service.import_csv(store, path, NOW, batch_size=2)
    assert await store.count_subscribers() == 0


async def test_a_byte_order_mark_and_crlf_lines_are_read(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b'\xef\xbb\xbfemail,name\r\na@example.org,A\r\n"b@example.org","B\r\nB"\r\n')
    result = await service.import_csv(store, path, NOW, batch_size=1)
    assert result.imported == 1
    assert result.rejects == [(4, "b@example.org: the name contains control characters")]


# --- export streams the same text as before ----------------------------------------------


def export_as_before(found: list, kind: str) -> str:
    """The export before it streamed: every row in memory, then one dump."""

    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    rows = [
        {
            "email": s.email,
            "name": s.name,
            "categories": list(s.categories),
            "status": s.status,
            "consent_source": s.consent_source,
            "consented_at": when(s.consented_at),
            "confirmed_at": when(s.confirmed_at),
            "unsubscribed_at": when(s.unsubscribed_at),
            "bounce_count": s.bounce_count,
            # Added with issue 20, after the columns above so that a consumer of the old
            # export still finds each of them at its old position: the old output is this
            # one without its last column. None (the site's first language) is an empty
            # cell in CSV, null in JSON.
            "language": s.language,
        }
        for s in found
    ]
    if kind == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=service.EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "categories": ";".join(row["categories"])})
    return out.getvalue()


@pytest.mark.parametrize("kind", ["csv", "json"])
async def test_export_streams_what_it_wrote_before(
    store: Store, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    assert await service.export(store, kind) == export_as_before([], kind)  # type: ignore[arg-type]
    monkeypatch.setattr(subscriber_batches, "STREAM_ROWS", 2)  # several blocks
    await service.add(store, "a@example.org", NOW, name='Ann, "A"', categories=["Rivers"])
    await service.add(store, "b@example.org", LATER, name="Bö Ström", confirmed=True, language="th")
    await service.add(store, "c@example.org", NOW, categories=["Field notes", "Wildlife"])
    await service.remove(store, "c@example.org", LATER + timedelta(microseconds=5))
    await service.add(store, "d@example.org", NOW, name=" Dee  Dee ")
    # Rows stored before names were checked, or by hand: a line break, a carriage return,
    # a language with a comma.
    for address, name, language in (
        ("e@example.org", "Eve\nBcc: x", None),
        ("f@example.org", "Fay\rF", "en,th"),
    ):
        await store.insert_subscriber(
            {
                "email": address,
                "name": name,
                "status": "active",
                "consent_source": "cli",
                "consented_at": NOW,
                "created_at": NOW,
                "language": language,
            }
        )
    expected = export_as_before(await store.list_subscribers(), kind)
    chunks: list[str] = []
    count = await service.write_export(store, chunks.append, kind)  # type: ignore[arg-type]
    assert count == 6
    assert "".join(chunks) == expected
    assert len(chunks) > 3  # written as it was read, not at the end


def test_the_export_header_keeps_the_old_columns_where_they_were() -> None:
    # Consumers of the export written before issue 20 read these by position.
    old = "email,name,categories,status,consent_source,consented_at,confirmed_at,"
    old += "unsubscribed_at,bounce_count"
    assert ",".join(service.EXPORT_COLUMNS) == old + ",language"


# --- the language column (issue 20) ------------------------------------------------------


LANGUAGES = ["en", "th", "lo"]  # [site] languages, the default first

# The column comes first here: the columns may be in any order.
WITH_LANGUAGES = (
    "language,email,name\n"
    "TH,a@example.org,A\n"  # 2: mixed case
    "th-TH,b@example.org,B\n"  # 3: a region variant of an offered language
    ",c@example.org,C\n"  # 4: empty: the site's default
    "xx,d@example.org,D\n"  # 5: not offered
    '"th\r\nx",e@example.org,E\n'  # 7 (the quoted cell spans two lines): a hostile cell
    "en-GB,f@example.org,F\n"  # 8
    ",known@example.org,Known\n"  # 9: known, reading "lo": back to the default
    "th;q=0.5,g@example.org,G\n"  # 10: a browser's header, not a tag
    "*,h@example.org,H\n"  # 11
    " Lo ,i@example.org,I\n"  # 12
    "th,d@example.org,D\n"  # 13: the address of line 5 was not taken
    f"{'x' * 40},j@example.org,J\n"  # 14: longer than any tag
    "zh-Hant-TW,k@example.org,K\n"  # 15: a well-formed tag the site does not offer
)
CHOICES = "choose from: en, th, lo"
LANGUAGE_REJECTS = [
    (5, f"d@example.org: unknown language 'xx'; {CHOICES} ([site] languages)"),
    (7, f"e@example.org: not a language tag 'th\\r\\nx'; {CHOICES}"),
    (10, f"g@example.org: not a language tag 'th;q=0.5'; {CHOICES}"),
    (11, f"h@example.org: not a language tag '*'; {CHOICES}"),
    (14, f"j@example.org: not a language tag '{'x' * 40}'; {CHOICES}"),
    (15, f"k@example.org: unknown language 'zh-Hant-TW'; {CHOICES} ([site] languages)"),
]
IMPORTED_LANGUAGES = {
    "a@example.org": "th",
    "b@example.org": "th",
    "c@example.org": None,
    "d@example.org": "th",
    "f@example.org": "en",
    "i@example.org": "lo",
    "known@example.org": None,
}


async def languages_of(store: Store) -> dict[str, str | None]:
    return {s.email: s.language for s in await store.list_subscribers()}


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5000])
async def test_import_a_language_column(store: Store, tmp_path: Path, batch_size: int) -> None:
    await service.add(store, "known@example.org", NOW, name="Known", language="lo")
    path = write_csv(tmp_path / "langs.csv", WITH_LANGUAGES)
    result = await service.import_csv(store, path, NOW, languages=LANGUAGES, batch_size=batch_size)
    assert result.rejects == LANGUAGE_REJECTS
    assert (result.imported, result.updated, result.unchanged) == (6, 1, 0)
    assert await languages_of(store) == IMPORTED_LANGUAGES

    # The same file again changes nothing, and says the same about the same lines.
    again = await service.import_csv(store, path, LATER, languages=LANGUAGES, batch_size=batch_size)
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 7)
    assert again.rejects == LANGUAGE_REJECTS
    assert await languages_of(store) == IMPORTED_LANGUAGES

    # Written differently, the same languages are still no change; a new one is.
    path = write_csv(
        tmp_path / "respelled.csv",
        "email,language\na@example.org,th-th\nb@example.org, TH\nc@example.org,en\n",
    )
    respelled = await service.import_csv(
        store, path, LATER, languages=LANGUAGES, batch_size=batch_size
    )
    assert (respelled.imported, respelled.updated, respelled.unchanged) == (0, 1, 2)
    assert (await languages_of(store))["c@example.org"] == "en"  # as the file says

    # A file without the column leaves every language as it is, new subscribers the default.
    path = write_csv(tmp_path / "names.csv", "email,name\na@example.org,Ann\nnew@example.org,New\n")
    names = await service.import_csv(store, path, LATER, languages=LANGUAGES, batch_size=batch_size)
    assert (names.imported, names.updated, names.unchanged, names.rejected) == (1, 1, 0, 0)
    found = {s.email: s for s in await store.list_subscribers()}
    assert (found["a@example.org"].name, found["a@example.org"].language) == ("Ann", "th")
    assert found["new@example.org"].language is None
    assert found["c@example.org"].language == "en"


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5000])
async def test_a_language_the_site_stopped_offering_is_refused_not_kept(
    store: Store, tmp_path: Path, batch_size: int
) -> None:
    await service.add(store, "old@example.org", NOW, name="Old", language="lo")
    path = write_csv(tmp_path / "m.csv", "email,name,language\nold@example.org,Older,lo\n")
    result = await service.import_csv(
        store, path, LATER, languages=["en", "th"], batch_size=batch_size
    )
    assert result.rejects == [
        (2, "old@example.org: unknown language 'lo'; choose from: en, th ([site] languages)")
    ]
    found = await store.subscriber_by_email("old@example.org")
    assert found is not None
    assert (found.name, found.language) == ("Old", "lo")  # the line was refused whole


@pytest.mark.parametrize(
    ("cell", "offered", "expected"),
    [
        ("th", LANGUAGES, "th"),
        ("TH", LANGUAGES, "th"),
        ("th_TH", LANGUAGES, "th"),
        ("  ", LANGUAGES, None),
        ("", None, None),
        ("EN-us", None, "en-US"),
        ("en-US", ["en-GB", "en-US"], "en-US"),  # an exact tag before the same language
        ("en-AU", ["en-GB", "en-US"], "en-GB"),
    ],
)
def test_pick_language(cell: str, offered: list[str] | None, expected: str | None) -> None:
    assert checks.pick_language(cell, offered) == expected


@pytest.mark.parametrize(
    "cell", ["th\r\nx", "th\x00", "en,th", "th;q=1", "*", "-th", "th-", "ไทย", "t", "e\u0301n"]
)
def test_pick_language_refuses_what_is_not_one_tag(cell: str) -> None:
    with pytest.raises(checks.UnknownLanguage, match="not a language tag") as raised:
        checks.pick_language(cell, LANGUAGES)
    assert str(raised.value).endswith("choose from: en, th, lo")
    with pytest.raises(checks.UnknownLanguage, match="not a language tag"):
        checks.pick_language(cell, None)


@pytest.fixture
async def fresh_store(database_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    """A second, empty database on the same backend as `store`."""
    if database_url.startswith("sqlite"):
        opened = await Store.open(f"sqlite:///{tmp_path / 'fresh.db'}")
        try:
            yield opened
        finally:
            await opened.close()
        return
    url = make_url(database_url)
    name = f"{url.database}_fresh"
    admin = url.set(drivername="postgresql", database="postgres")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        opened = await Store.open(url.set(database=name).render_as_string(hide_password=False))
        try:
            yield opened
        finally:
            await opened.close()
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5000])
async def test_an_exported_list_imports_with_its_languages(
    store: Store,
    fresh_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    batch_size: int,
) -> None:
    monkeypatch.setattr(subscriber_batches, "STREAM_ROWS", 2)
    path = write_csv(tmp_path / "langs.csv", WITH_LANGUAGES)
    await service.import_csv(store, path, NOW, languages=LANGUAGES)
    await service.add(store, "z@example.org", NOW, name='Zed, "Z"', language="lo")
    exported = write_csv(tmp_path / "exported.csv", await service.export(store))

    result = await service.import_csv(
        fresh_store, exported, LATER, languages=LANGUAGES, batch_size=batch_size
    )
    assert (result.imported, result.rejected) == (8, 0)
    assert await languages_of(fresh_store) == await languages_of(store)
    assert (await languages_of(fresh_store))["z@example.org"] == "lo"
    # Back into the database it came from: nothing to change.
    back = await service.import_csv(
        store, exported, LATER, languages=LANGUAGES, batch_size=batch_size
    )
    assert (back.imported, back.updated, back.unchanged, back.rejected) == (0, 0, 8, 0)


def test_cli_import_matches_the_sites_languages(project: Path) -> None:
    config = project / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('language = "en"\n', 'language = "en"\nlanguages = ["en", "th"]\n', 1),
        encoding="utf-8",
    )
    path = write_csv(
        project / "m.csv",
        "email,language\na@example.org,th-TH\nb@example.org,lo\nc@example.org,\n",
    )

    def run(*args: str) -> click.testing.Result:
        return CliRunner().invoke(cli, ["--config", str(config), "subscribers", *args])

    result = run("import", str(path))
    assert result.exit_code == 1, result.output
    assert result.stdout == "imported 2, updated 0, unchanged 0, rejected 1\n"
    assert (
        "line 3: b@example.org: unknown language 'lo'; choose from: en, th ([site] languages)"
        in result.stderr
    )
    lines = run("export").stdout.splitlines()
    assert lines[0].endswith(",bounce_count,language")
    assert [line.rsplit(",", 1)[1] for line in lines[1:]] == ["th", ""]


# --- the progress display ----------------------------------------------------------------


def test_the_progress_bar_is_drawn_only_on_a_terminal() -> None:
    piped = io.StringIO()
    with import_progress(Console(file=piped, force_terminal=False)) as display:
        display.progress(10, 100, 3)
    assert piped.getvalue() == ""

    screen = io.StringIO()
    with import_progress(Console(file=screen, force_terminal=True, width=120)) as display:
        display.progress(50, 100, 7)
        display.reject(4, "invalid address 'x\x1b[2J'")
        display.progress(100, 100, 12)
    shown = screen.getvalue()
    assert "importing" in shown and "12 lines" in shown
    assert "line 4: invalid address 'x\\x1b[2J'" in shown  # inert, above the bar
    assert "\x1b[2J" not in shown
