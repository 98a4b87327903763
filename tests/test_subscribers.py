"""Subscribers: normalised unique addresses, import with line-numbered rejects, unsubscribe,
export, and forget with its hashed suppression. Service tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from syndicate import subscribers as service
from syndicate.cli import cli
from syndicate.config import load_settings
from syndicate.errors import UsageError
from syndicate.store import Store
from syndicate.store.tables import subscribers, suppressions

NOW = datetime(2015, 12, 15, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=3)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- service, on both databases ---------------------------------------------------------


async def test_add_normalises_and_is_unique_ignoring_case(store: Store) -> None:
    ann, created = await service.add(
        store, "  Ann.Lee@Example.ORG ", NOW, name=" Ann ", categories=["News", " news", "Policy"]
    )
    assert created
    assert ann.email == "ann.lee@example.org"
    assert (ann.name, ann.status, ann.categories) == ("Ann", "pending", ("News", "Policy"))
    assert (ann.consent_source, ann.consented_at, ann.confirmed_at) == ("cli", NOW, None)

    again, created = await service.add(store, "ANN.LEE@example.org", LATER, name="Other")
    assert not created
    assert again == ann  # returned unchanged, not a second row
    assert await store.count_subscribers() == 1


async def test_confirmed_add_is_active_and_reactivates_an_unsubscribed_address(
    store: Store,
) -> None:
    bob, _ = await service.add(store, "bob@example.org", NOW, confirmed=True)
    assert (bob.status, bob.confirmed_at) == ("active", NOW)

    await service.remove(store, "bob@example.org", NOW)
    unchanged, _ = await service.add(store, "bob@example.org", LATER)
    assert unchanged.status == "unsubscribed"  # without --confirmed nobody is resubscribed

    back, created = await service.add(
        store, "Bob@example.org", LATER, confirmed=True, categories=["News"]
    )
    assert not created
    assert (back.id, back.status, back.confirmed_at, back.unsubscribed_at) == (
        bob.id,
        "active",
        LATER,
        None,
    )
    assert back.categories == ("News",)


@pytest.mark.parametrize("address", ["not-an-address", "ann@", "ann@@example.org", "a b@x.org"])
async def test_invalid_addresses_are_refused_by_name(store: Store, address: str) -> None:
    with pytest.raises(UsageError, match="invalid address") as caught:
        await service.add(store, address, NOW)
    assert repr(address) in str(caught.value)
    assert await store.count_subscribers() == 0


async def test_import_keeps_good_lines_and_reports_bad_ones(store: Store, tmp_path: Path) -> None:
    await service.add(store, "old@example.org", NOW, name="Old", confirmed=True)
    await service.remove(store, "old@example.org", NOW)
    path = write_csv(
        tmp_path / "members.csv",
        "email,name,categories\n"
        "Ann@Example.org,Ann,News;Policy\n"  # line 2
        "nonsense,Nobody,\n"  # line 3
        "\n"  # line 4: blank, skipped
        "ann@example.org,Ann again,\n"  # line 5: repeats line 2
        'carl@example.org,"Lee, Carl",\n'  # line 6
        "old@example.org,Old,\n"  # line 7: known, unsubscribed
        ",Empty,\n"  # line 8
        "too@example.org,many,fields,here\n",  # line 9
    )
    result = await service.import_csv(store, path, NOW)

    assert (result.imported, result.updated, result.unchanged) == (2, 0, 1)
    assert [line for line, _ in result.rejects] == [3, 5, 8, 9]
    reasons = dict(result.rejects)
    assert reasons[3].startswith("invalid address 'nonsense'")
    assert reasons[5] == "ann@example.org: repeats line 2"
    assert reasons[8] == "missing email address"
    assert reasons[9] == "4 fields, the header has 3"

    ann = await store.subscriber_by_email("ann@example.org")
    assert ann is not None
    assert (ann.name, ann.categories, ann.status) == ("Ann", ("News", "Policy"), "pending")
    assert ann.consent_source == "import:members.csv"
    carl = await store.subscriber_by_email("carl@example.org")
    assert carl is not None and carl.name == "Lee, Carl"
    old = await store.subscriber_by_email("old@example.org")
    assert old is not None and old.status == "unsubscribed"  # an import never resubscribes


async def test_import_is_idempotent_and_updates_changed_rows(store: Store, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "m.csv", "email,name,categories\na@example.org,A,News\nb@example.org,B,\n"
    )
    first = await service.import_csv(store, path, NOW, confirmed=True)
    assert (first.imported, first.updated, first.unchanged, first.rejects) == (2, 0, 0, [])
    before = await service.list_subscribers(store)

    again = await service.import_csv(store, path, LATER, confirmed=True)
    assert (again.imported, again.updated, again.unchanged, again.rejects) == (0, 0, 2, [])
    assert await service.list_subscribers(store) == before

    write_csv(path, "email,name,categories\nA@example.org,Ann,News;Events\nb@example.org,B,\n")
    changed = await service.import_csv(store, path, LATER)
    assert (changed.imported, changed.updated, changed.unchanged) == (0, 1, 1)
    a = await store.subscriber_by_email("a@example.org")
    assert a is not None
    assert (a.name, a.categories, a.status, a.consented_at) == (
        "Ann",
        ("News", "Events"),
        "active",
        NOW,
    )


async def test_import_refuses_a_file_without_the_header(store: Store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", "a@example.org,A,News\n")
    with pytest.raises(UsageError, match="line 1: the header must name"):
        await service.import_csv(store, path, NOW)
    write_csv(path, "email,name,catgories\n")
    with pytest.raises(UsageError, match="unknown column 'catgories'"):
        await service.import_csv(store, path, NOW)


async def test_import_keeps_what_the_file_has_no_column_for(store: Store, tmp_path: Path) -> None:
    await service.add(store, "a@example.org", NOW, name="Ann", categories=["News"], confirmed=True)
    await service.add(store, "b@example.org", NOW, name="Bob", categories=["Events"])
    await service.remove(store, "b@example.org", NOW)

    def stored(found: list) -> dict[str, tuple]:
        return {s.email: (s.name, s.categories, s.status) for s in found}

    # No name column: names stay; the categories are the file's.
    path = write_csv(tmp_path / "c.csv", "email,categories\na@example.org,Policy\nn@example.org,\n")
    result = await service.import_csv(store, path, LATER)
    assert (result.imported, result.updated, result.unchanged) == (1, 1, 0)
    assert stored(await store.list_subscribers()) == {
        "a@example.org": ("Ann", ("Policy",), "active"),
        "b@example.org": ("Bob", ("Events",), "unsubscribed"),
        "n@example.org": ("", (), "pending"),
    }

    # No categories column: categories stay; the names are the file's.
    path = write_csv(tmp_path / "n.csv", "name,email\nAnn Lee,a@example.org\nBob,b@example.org\n")
    result = await service.import_csv(store, path, LATER)
    assert (result.imported, result.updated, result.unchanged) == (0, 1, 1)
    assert stored(await store.list_subscribers())["a@example.org"] == (
        "Ann Lee",
        ("Policy",),
        "active",
    )

    # Only addresses: nothing changes (Bob stays unsubscribed, too).
    path = write_csv(tmp_path / "e.csv", "email\na@example.org\nB@example.org\n")
    result = await service.import_csv(store, path, LATER)
    assert (result.imported, result.updated, result.unchanged) == (0, 0, 2)
    assert stored(await store.list_subscribers()) == {
        "a@example.org": ("Ann Lee", ("Policy",), "active"),
        "b@example.org": ("Bob", ("Events",), "unsubscribed"),
        "n@example.org": ("", (), "pending"),
    }

    # A column that is there is the file's word, empty cells too: no name, every category.
    path = write_csv(tmp_path / "x.csv", "email,name,categories\na@example.org,,\n")
    result = await service.import_csv(store, path, LATER)
    assert (result.imported, result.updated, result.unchanged) == (0, 1, 0)
    assert stored(await store.list_subscribers())["a@example.org"] == ("", (), "active")


async def test_import_cleans_names_like_the_web_form(store: Store, tmp_path: Path) -> None:
    await service.add(store, "old@example.org", NOW, name="Old Name", confirmed=True)
    long_name = "x" * (service.NAME_MAX_LENGTH + 1)
    path = write_csv(
        tmp_path / "m.csv",
        "email,name\n"
        '"a@example.org","Ann\nBcc: mallory@example.org"\n'  # lines 2-3: a line break
        "b@example.org,Bob\tStone\n"  # line 4: a tab
        f"c@example.org,{long_name}\n"  # line 5
        "d@example.org,Dee\u2028Bcc: x@example.org\n"  # line 6: a Unicode line separator
        "old@example.org,Eve\x85Bcc: x\n"  # line 7: NEL, a C1 control
        "e@example.org,  =?utf-8?q?Ev=C3=A9?=  \n"  # line 8: kept as typed, stripped
        "a@example.org,Ann\n",  # line 9: the address of a refused line is still free
    )
    result = await service.import_csv(store, path, NOW)

    assert result.rejects == [
        (3, "a@example.org: the name contains control characters"),
        (4, "b@example.org: the name contains control characters"),
        (5, f"c@example.org: the name is longer than {service.NAME_MAX_LENGTH} characters"),
        (6, "d@example.org: the name contains control characters"),
        (7, "old@example.org: the name contains control characters"),
    ]
    assert (result.imported, result.updated, result.unchanged) == (2, 0, 0)
    names = {s.email: s.name for s in await store.list_subscribers()}
    assert names == {
        "old@example.org": "Old Name",  # unchanged by its refused line
        "e@example.org": "=?utf-8?q?Ev=C3=A9?=",
        "a@example.org": "Ann",
    }


async def test_add_cleans_the_name(store: Store) -> None:
    for bad in ("Ann\r\nBcc: x@example.org", "Ann\x00", "y" * 201):
        with pytest.raises(service.InvalidName):
            await service.add(store, "ann@example.org", NOW, name=bad)
    assert await store.count_subscribers() == 0
    ann, _ = await service.add(store, "ann@example.org", NOW, name=" =?utf-8?b?QW5u?= ")
    assert ann.name == "=?utf-8?b?QW5u?="  # as typed: never decoded


async def test_import_refuses_a_header_that_names_a_column_twice(
    store: Store, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "m.csv", "email,name,Name\na@example.org,Ann,Bob\n")
    with pytest.raises(UsageError, match="line 1: the column 'name' appears twice"):
        await service.import_csv(store, path, NOW)
    assert await store.count_subscribers() == 0


async def test_list_filters_by_status_and_remove_keeps_the_row(store: Store) -> None:
    await service.add(store, "p@example.org", NOW)
    await service.add(store, "a@example.org", NOW, confirmed=True)
    await service.add(store, "u@example.org", NOW, confirmed=True)
    gone = await service.remove(store, "U@example.org", LATER)
    assert (gone.status, gone.unsubscribed_at) == ("unsubscribed", LATER)
    again = await service.remove(store, "u@example.org", LATER + timedelta(days=1))
    assert again.unsubscribed_at == LATER  # the first date stays

    def emails(found: list) -> list[str]:
        return [s.email for s in found]

    assert emails(await service.list_subscribers(store)) == [
        "p@example.org",
        "a@example.org",
        "u@example.org",
    ]
    assert emails(await service.list_subscribers(store, "pending")) == ["p@example.org"]
    assert emails(await service.list_subscribers(store, "active")) == ["a@example.org"]
    assert emails(await service.list_subscribers(store, "unsubscribed")) == ["u@example.org"]
    assert await service.list_subscribers(store, "bounced") == []
    with pytest.raises(UsageError, match="unknown status 'gone'"):
        await service.list_subscribers(store, "gone")
    with pytest.raises(UsageError, match=r"no subscriber x@example\.org"):
        await service.remove(store, "X@example.org", NOW)


async def test_export_round_trips(store: Store, tmp_path: Path, database_url: str) -> None:
    await service.add(store, "a@example.org", NOW, name='Ann, "A"', categories=["News", "Policy"])
    await service.add(store, "b@example.org", NOW, confirmed=True)
    await service.remove(store, "b@example.org", LATER)

    records = json.loads(await service.export(store, "json"))
    assert records[0] == {
        "email": "a@example.org",
        "name": 'Ann, "A"',
        "categories": ["News", "Policy"],
        "status": "pending",
        "consent_source": "cli",
        "consented_at": NOW.isoformat(),
        "confirmed_at": None,
        "unsubscribed_at": None,
        "bounce_count": 0,
        "language": None,  # the site's default (issue 20), exported last
    }
    assert records[1]["unsubscribed_at"] == LATER.isoformat()

    exported = await service.export(store, "csv")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [(r["email"], r["name"], r["categories"]) for r in rows] == [
        ("a@example.org", 'Ann, "A"', "News;Policy"),
        ("b@example.org", "", ""),
    ]
    path = write_csv(tmp_path / "export.csv", exported)
    same = await service.import_csv(store, path, LATER)  # into the same database: no change
    assert (same.imported, same.updated, same.unchanged, same.rejects) == (0, 0, 2, [])

    async with await Store.open(f"sqlite:///{tmp_path / 'other.db'}") as other:
        fresh = await service.import_csv(other, path, LATER)
        assert (fresh.imported, fresh.rejects) == (2, [])
        copied = await other.list_subscribers()
        assert [(s.email, s.name, s.categories) for s in copied] == [
            ("a@example.org", 'Ann, "A"', ("News", "Policy")),
            ("b@example.org", "", ()),
        ]


async def test_forget_erases_the_address_and_suppresses_it(store: Store, tmp_path: Path) -> None:
    await service.add(store, "Ann@Example.org", NOW, name="Ann Lee", confirmed=True)
    await service.add(store, "keep@example.org", NOW)
    await service.forget(store, "ANN@example.org", LATER)

    assert await store.subscriber_by_email("ann@example.org") is None
    assert await store.count_subscribers() == 1
    async with store.read() as conn:
        rows = (await conn.execute(select(suppressions))).all()
        remaining = (await conn.execute(select(subscribers))).all()
    assert [tuple(row) for row in rows] == [(hashlib.sha256(b"ann@example.org").hexdigest(), LATER)]
    dumped = repr(rows) + repr(remaining)
    assert "ann@example.org" not in dumped.lower() and "Ann Lee" not in dumped

    with pytest.raises(UsageError, match="suppressed: this address asked to be forgotten"):
        await service.add(store, "ann@EXAMPLE.org", LATER, confirmed=True)
    path = write_csv(
        tmp_path / "m.csv", "email,name,categories\nANN@example.org,Ann,\nnew@example.org,N,\n"
    )
    result = await service.import_csv(store, path, LATER)
    assert result.imported == 1
    assert result.rejects == [
        (2, "ann@example.org: suppressed: this address asked to be forgotten")
    ]
    assert await store.subscriber_by_email("ann@example.org") is None
    with pytest.raises(UsageError, match=r"no subscriber ann@example\.org"):
        await service.forget(store, "ann@example.org", LATER)


# --- CLI, on the bundled config -----------------------------------------------------------


def run(project: Path, *args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, ["--config", str(project / "config.toml"), "subscribers", *args])


def test_cli_add_list_remove(project: Path) -> None:
    result = run(project, "add", "Ann@Example.org", "--name", "Ann", "--category", "rivers")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "added ann@example.org: pending; confirmation sent to ann@example.org (outbox var/outbox)\n"
    )  # the confirmation email itself: tests/test_mail_confirm.py

    result = run(project, "add", "bob@example.org", "--confirmed")
    assert result.stdout == "added bob@example.org: active\n"
    result = run(project, "add", "BOB@example.org")
    assert result.stdout == "bob@example.org already subscribed: active\n"

    result = run(project, "list")
    assert result.exit_code == 0, result.output
    assert "ann@example.org" in result.stdout and "bob@example.org" in result.stdout
    assert "Rivers" in result.stdout  # spelled as [site] categories spells it
    assert "2 subscribers" in result.stdout
    result = run(project, "list", "--status", "active")
    assert "bob@example.org" in result.stdout and "ann@example.org" not in result.stdout

    assert run(project, "remove", "BOB@example.org").stdout == "unsubscribed bob@example.org\n"
    result = run(project, "list", "--status", "unsubscribed")
    assert "bob@example.org" in result.stdout and "1 subscribers" in result.stdout


def test_cli_errors_are_one_line(project: Path) -> None:
    result = run(project, "remove", "nobody@example.org")
    assert result.exit_code == 2
    assert result.stderr == "error: no subscriber nobody@example.org\n"
    result = run(project, "forget", "nobody@example.org")
    assert result.exit_code == 2
    result = run(project, "add", "not-an-address")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid address 'not-an-address': ")
    assert len(result.stderr.splitlines()) == 1


def test_cli_add_refuses_a_name_the_web_form_would(project: Path) -> None:
    result = run(project, "add", "ann@example.org", "--name", "Ann\nBcc: mallory@example.org")
    assert result.exit_code == 2
    assert result.stderr == "error: the name contains control characters\n"
    result = run(project, "add", "ann@example.org", "--name", "n" * 201, "--confirmed")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: the name is longer than 200 characters\n",
    )
    assert run(project, "list").stdout.endswith("0 subscribers\n")


def test_cli_import_reports_rejects_and_exits_1(project: Path) -> None:
    path = write_csv(
        project / "members.csv",
        "email,name,categories\na@example.org,A,Rivers\nbroken,B,\nc@example.org,C,\n",
    )
    result = run(project, "import", str(path))
    assert result.exit_code == 1
    assert result.stdout == "imported 2, updated 0, unchanged 0, rejected 1\n"
    assert result.stderr.startswith("line 3: invalid address 'broken'")

    write_csv(path, "email,name,categories\na@example.org,A,Rivers\nc@example.org,C,\n")
    result = run(project, "import", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "imported 0, updated 0, unchanged 2, rejected 0\n"


def test_cli_add_refuses_a_category_the_site_does_not_offer(project: Path) -> None:
    result = run(project, "add", "ann@example.org", "--category", "Rivers", "--category", "News")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: unknown category 'News'; choose from: Rivers, Wildlife, Gardens, Volunteering, "
        "Events, Policy, Partners, Field notes\n"
    )
    # A feed tag is not a choice: it belongs to a category ([categories.Rivers] has it).
    result = run(project, "add", "ann@example.org", "--category", "drought")
    assert result.exit_code == 2 and "unknown category 'drought'" in result.stderr
    assert run(project, "list").stdout.endswith("0 subscribers\n")

    result = run(project, "add", "ann@example.org", "--category", "field NOTES", "--confirmed")
    assert result.exit_code == 0, result.output
    assert "Field notes" in run(project, "list").stdout


def test_cli_help_names_only_categories_of_the_bundled_config(project: Path) -> None:
    offered = set(load_settings(project / "config.toml").site.categories or ())
    shown = "".join(run(project, *args, "--help").stdout for args in ((), ("add",), ("import",)))
    examples = [line for line in shown.splitlines() if "syndicate subscribers" in line]
    named = [
        a or b
        for line in examples
        for a, b in re.findall(r'--category (?:"([^"]+)"|([^\s"]+))', line)
    ]
    rows = re.findall(r"^\s+\S+@example\.org,[^,]*,(.*)$", shown, re.MULTILINE)
    named += [name for row in rows for name in row.split(";") if name]
    assert "Rivers" in named and "Field notes" in named
    assert set(named) <= offered


def test_cli_import_rejects_a_line_with_a_category_the_site_does_not_offer(
    project: Path,
) -> None:
    path = write_csv(
        project / "members.csv",
        "email,name,categories\n"
        "a@example.org,A,rivers;Field Notes\n"
        "b@example.org,B,Rivers;News\n"
        'c@example.org,C,"Evil\x1b[2J"\n',
    )
    result = run(project, "import", str(path))
    assert result.exit_code == 1
    assert result.stdout == "imported 1, updated 0, unchanged 0, rejected 2\n"
    choices = "Rivers, Wildlife, Gardens, Volunteering, Events, Policy, Partners, Field notes"
    lines = result.stderr.splitlines()
    assert lines[0] == f"line 3: b@example.org: unknown category 'News'; choose from: {choices}"
    assert lines[1].startswith("line 4: c@example.org: unknown category 'Evil")
    assert "\x1b" not in result.stderr  # the file's bytes never reach the terminal raw
    listed = run(project, "list").stdout
    assert "Rivers, Field notes" in listed and "b@example.org" not in listed


def test_cli_export_and_forget(project: Path) -> None:
    run(project, "add", "a@example.org", "--name", "Ann", "--confirmed")
    run(project, "add", "b@example.org")
    result = run(project, "export", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [r["email"] for r in json.loads(result.stdout)] == ["a@example.org", "b@example.org"]
    result = run(project, "export")
    assert result.stdout.splitlines()[0] == ",".join(service.EXPORT_COLUMNS)

    result = run(project, "forget", "A@example.org")
    assert result.exit_code == 0, result.output
    assert "a@example.org" not in run(project, "export").stdout
    result = run(project, "add", "a@example.org", "--confirmed")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: a@example.org: suppressed: this address asked to be forgotten\n"
    )


def test_cli_help_has_examples() -> None:
    for command in ("add", "import", "list", "remove", "export", "forget"):
        result = CliRunner().invoke(cli, ["subscribers", command, "--help"])
        assert result.exit_code == 0
        assert "Example:" in result.stdout
        assert f"syndicate subscribers {command}" in result.stdout.split("Example:")[1]
