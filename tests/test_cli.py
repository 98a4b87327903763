"""The CLI's edges: exit codes, one-line errors, help with examples, the entry points."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from syndicate import __version__
from syndicate.cli import cli
from syndicate.store.migrate import head_revision


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_check_on_the_bundled_config(project: Path) -> None:
    result = invoke("--config", str(project / "config.toml"), "check")
    assert result.exit_code == 0, result.output
    assert f"{project / 'config.toml'}: OK" in result.stdout
    assert "sources    3: riverside-news, wetland-alliance, field-notes" in result.stdout
    assert (
        "categories 8: Rivers, Wildlife, Gardens, Volunteering, Events, Policy, Partners, "
        "Field notes\n" in result.stdout
    )
    assert '"0 9 1 * *" every month, next ' in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[site]\ntitle = "T"\nurl = "https://e.org"\n[[sources]]\nname = "a"\nurl = "x.xml"\n',
            "config.toml: sources[0].url: not an http(s) URL or existing file: 'x.xml'",
        ),
        (
            '[site]\ntitle = "T"\nurl = "https://e.org"\n[digest]\nschedule = "61 * * * *"\n',
            'config.toml: digest.schedule: invalid cron expression "61 * * * *"',
        ),
        (
            '[site]\ntitle = "T"\nurl = "https://e.org"\n[digest]\nschedule = "0 9 31 2 *"\n',
            'config.toml: digest.schedule: "0 9 31 2 *" never fires '
            "(day of month 31 does not occur in month 2)",
        ),
        (
            '[site]\ntitle = "T"\nurl = "https://e.org"\n[mail]\ntransport = "smpt"\n',
            "config.toml: mail.transport: Input should be 'outbox' or 'smtp' (got 'smpt'); "
            'did you mean "smtp"?',
        ),
        (
            '[site]\ntitle = "T"\nurl = "https://e.org"\n[web]\nprot = 80\n',
            'config.toml: web.prot: unknown key; did you mean "port"?',
        ),
        (
            '[site]\ntitle = "T"\nurl = "https://e.org"\n[web\n',
            "config.toml: TOML syntax error: Expected ']' at the end of a table declaration "
            "(at line 4, column 5)",
        ),
        (  # tomllib recurses per level: a RecursionError, not a traceback
            f'[site]\ntitle = "T"\nurl = "https://e.org"\n[web]\nx = {"[" * 5000}{"]" * 5000}\n',
            "config.toml: TOML syntax error: arrays or tables nested too deeply",
        ),
        (
            f'[site]\ntitle = "T"\nurl = "https://e.org"\n[web]\nx = {"{a=" * 5000}1{"}" * 5000}\n',
            "config.toml: TOML syntax error: arrays or tables nested too deeply",
        ),
        *(
            (
                f'[site]\ntitle = "T"\nurl = "https://e.org"\n[{section}]\n{key} = {value}\n',
                f"config.toml: {section}.{key}: {message}",
            )
            for section, key, value, message in [
                ("ingest", "total_timeout", "inf", "Input should be a finite number (got inf)"),
                ("ingest", "total_timeout", "nan", "Input should be a finite number (got nan)"),
                ("ingest", "total_timeout", "-1", "Input should be greater than 0 (got -1)"),
                ("ingest", "total_timeout", "1e300", "Input should be less than or equal to 3600"),
                ("ingest", "connect_timeout", "inf", "Input should be a finite number"),
                ("ingest", "read_timeout", "1e20", "Input should be less than or equal to 3600"),
                ("mail.smtp", "timeout", "-inf", "Input should be a finite number"),
                ("mail.smtp", "rate", "inf", "Input should be a finite number (got inf)"),
                ("mail.smtp", "rate", "nan", "Input should be a finite number (got nan)"),
                ("publish", "ttl", "inf", "duration must be at most 365 days, got inf"),
                ("publish", "ttl", "nan", "not a duration: nan"),
                ("publish", "ttl", "1e300", "duration must be at most 365 days, got 1e+300"),
                ("mail", "retry_backoff", '"9999999999999999d"', "duration must be at most 365"),
            ]
        ),
        (
            '[site]\ntitle = "T"\nurl = "https://e.org"\n'
            '[[sources]]\nname = "a"\nurl = "https://e.org/feed"\nevery = "99999999999999w"\n',
            "config.toml: sources[0].every: duration must be at most 365 days, "
            "got '99999999999999w'",
        ),
    ],
)
def test_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("config.toml").write_text(text)
    result = invoke("check")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0].startswith(expected)
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output


def test_check_names_a_misspelt_template_field_as_the_template_sees_it(project: Path) -> None:
    path = project / "templates" / "email" / "digest.html.j2"
    text = path.read_text()
    assert '">{{ post.title }}</a>' in text
    path.write_text(text.replace('">{{ post.title }}</a>', '">{{ post.titel }}</a>', 1))
    line = 1 + next(n for n, row in enumerate(path.read_text().splitlines()) if "titel" in row)
    result = invoke("--config", str(project / "config.toml"), "check")
    assert result.exit_code == 2
    [error] = result.stderr.splitlines()
    assert error.startswith(
        f'error: templates/email/digest.html.j2:{line}: a post has no field "titel"; '
        'did you mean "title"? (a post has title, url, '
    )


def test_config_from_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path / "..")
    monkeypatch.setenv("SYNDICATE_CONFIG", str(project / "config.toml"))
    assert invoke("check").exit_code == 0


def test_missing_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNDICATE_CONFIG", raising=False)
    result = invoke("check")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "config.toml: file not found (pass --config PATH or set SYNDICATE_CONFIG)"
    )


def test_db_upgrade_then_again(project: Path) -> None:
    config = str(project / "config.toml")
    first = invoke("--config", config, "db", "upgrade")
    assert first.exit_code == 0
    assert f"upgraded from empty to revision {head_revision()}" in first.stdout
    assert (project / "var" / "syndicate.db").is_file()
    second = invoke("--config", config, "db", "upgrade")
    assert f"already at revision {head_revision()}" in second.stdout


def test_unreachable_database_is_exit_1(project: Path) -> None:
    config = project / "config.toml"
    config.write_text(
        config.read_text().replace(
            'database = "sqlite:///var/syndicate.db"',
            'database = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"',
        )
    )
    result = invoke("--config", str(config), "db", "upgrade")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot open database postgresql+psycopg://nobody@")
    assert "Traceback" not in result.output


def test_a_database_from_a_newer_syndicate_is_one_clear_line(project: Path) -> None:
    config = str(project / "config.toml")
    assert invoke("--config", config, "db", "upgrade").exit_code == 0
    with sqlite3.connect(project / "var" / "syndicate.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    result = invoke("--config", config, "status")
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "Can't locate revision identified by '9999'; is it from a newer syndicate?\n"
    )
    assert "Traceback" not in result.output


def test_run_reports_what_it_did(project: Path) -> None:
    result = invoke("--config", str(project / "config.toml"), "run", "--once")
    assert result.exit_code == 0, result.output
    assert f"at revision {head_revision()}" in result.stdout


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        found.append((prefix + name, command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, prefix + name + " "))
    return found


@pytest.mark.parametrize(("name", "command"), _commands(cli))
def test_every_command_has_help_with_an_example(name: str, command: click.Command) -> None:
    if isinstance(command, click.Group):
        assert command.help, name
        return
    assert command.help and "Example:" in command.help, f"{name} has no example"
    example = command.help.split("Example:", 1)[1]
    assert "syndicate " in example and name.split()[-1] in example, name


def test_version_and_module_entry_point() -> None:
    assert invoke("--version").stdout.strip() == f"syndicate, version {__version__}"
    result = subprocess.run(
        [sys.executable, "-m", "syndicate", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"syndicate, version {__version__}"


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "syndicate"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert "Usage: syndicate" in result.stdout
