"""Config loading: the bundled file is valid; each kind of mistake gets one clear line."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate.config import config_path, load_settings, missing_secrets
from syndicate.config.fields import parse_duration, parse_size
from syndicate.errors import ConfigError
from syndicate.summary import describe

MINIMAL = '[site]\ntitle = "T"\nurl = "https://example.org/"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    return caught.value.problems


def test_bundled_config_is_valid(project: Path) -> None:
    settings = load_settings(project / "config.toml")
    assert settings.site.title
    assert [s.name for s in settings.sources] == [
        "riverside-news",
        "wetland-alliance",
        "field-notes",
    ]
    assert settings.mail.transport == "outbox"
    assert settings.database_url == f"sqlite:///{project / 'var' / 'syndicate.db'}"
    assert settings.publish_dir == project / "feeds"
    # The bundled feeds' categories, and the sources' own: never a lower-case feed tag.
    assert settings.site.categories == [
        "Rivers", "Wildlife", "Gardens", "Volunteering", "Events", "Policy", "Partners",
        "Field notes",
    ]  # fmt: skip
    assert {s.category for s in settings.sources} <= {None, *settings.site.categories}


def test_defaults_fill_in_a_minimal_config(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.site.url == "https://example.org"  # trailing slash dropped
    assert settings.ingest.concurrency == 16
    assert settings.ingest.max_size == 10_000_000
    assert settings.publish.formats == ["rss", "atom", "json"]
    assert settings.digest.schedule == "0 9 1 * *"
    assert settings.digest.skip_empty is True
    assert settings.mail.smtp.pool == 4
    assert settings.forum.strategy == "feed"


def test_source_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "feeds-in").mkdir()
    (tmp_path / "feeds-in" / "a.xml").write_text("<rss/>")
    text = MINIMAL + '[[sources]]\nname = "a"\nurl = "feeds-in/a.xml"\nevery = "1h30m"\n'
    settings = load_settings(write(tmp_path, text))
    assert settings.sources[0].every == timedelta(minutes=90)


def test_bad_source_url_names_the_key(tmp_path: Path) -> None:
    text = (
        MINIMAL + '[[sources]]\nname = "a"\nurl = "https://example.org/feed"\n'
        '[[sources]]\nname = "b"\nurl = "nowhere/feed.xml"\n'
    )
    assert problems(tmp_path, text) == [
        "%s: sources[1].url: not an http(s) URL or existing file: 'nowhere/feed.xml'"
        % (tmp_path / "config.toml")
    ]


def test_bad_cron_expression(tmp_path: Path) -> None:
    [line] = problems(tmp_path, MINIMAL + '[digest]\nschedule = "61 * * * *"\n')
    assert line.startswith(
        f'{tmp_path / "config.toml"}: digest.schedule: invalid cron expression "61 * * * *"'
    )


def test_a_schedule_that_never_fires_is_an_error(tmp_path: Path) -> None:
    [line] = problems(tmp_path, MINIMAL + '[digest]\nschedule = "0 9 31 2 *"\n')
    assert line == (
        f'{tmp_path / "config.toml"}: digest.schedule: "0 9 31 2 *" never fires '
        "(day of month 31 does not occur in month 2)"
    )


def test_check_says_when_the_next_digest_goes_out(tmp_path: Path) -> None:
    def next_line(schedule: str, now: datetime) -> str:
        text = MINIMAL + f'[digest]\nschedule = "{schedule}"\n'
        return dict(describe(load_settings(write(tmp_path, text)), now))["digest"]

    # Day of month or day of week: January's goes out on Monday 1 February, not the 5th.
    assert next_line("0 9 5 * mon", datetime(2027, 1, 20, 12, tzinfo=UTC)) == (
        '"0 9 5 * mon" every month, next 2027-02-01 09:00 UTC'
    )
    # Firing more often than months end: the next digest, not the next Monday (Dec 7).
    assert next_line("0 9 1 * mon", datetime(2026, 12, 1, 10, tzinfo=UTC)) == (
        '"0 9 1 * mon" every month, next 2027-01-01 09:00 UTC'
    )
    assert next_line("0 9 1 * *", datetime(2026, 12, 1, 8, tzinfo=UTC)) == (
        '"0 9 1 * *" every month, next 2026-12-01 09:00 UTC'
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        # An encoded-word that hides a line break and a second recipient.
        ("=?utf-8?q?News=0D=0ABcc:_x@evil.example?= <help@example.org>", "encoded-word"),
        ("News <a@example.org>, b@example.org", "not one email address"),
        ("News\u2028Bcc: x@evil.example <a@example.org>", "not an email address"),
        ("News\u0085 <a@example.org>", "not an email address"),
    ],
)
def test_a_sender_that_could_break_a_header_is_refused(
    tmp_path: Path, value: str, reason: str
) -> None:
    [line] = problems(tmp_path, MINIMAL + f"[digest]\nfrom = {json.dumps(value)}\n")
    assert line.startswith(f"{tmp_path / 'config.toml'}: digest.from: ")
    assert reason in line


def test_a_sender_named_in_plain_unicode_is_accepted(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, MINIMAL + '[digest]\nfrom = "Nachrichten Ü <news@example.org>"\n')
    )
    assert settings.digest.sender == "Nachrichten Ü <news@example.org>"


def test_unknown_key_is_reported_with_a_suggestion(tmp_path: Path) -> None:
    [line] = problems(tmp_path, MINIMAL + '[digest]\nschedul = "0 9 1 * *"\n')
    assert line.endswith('digest.schedul: unknown key; did you mean "schedule"?')


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            '[mail]\ntransport = "smpt"\n',
            "mail.transport: Input should be 'outbox' or 'smtp' (got 'smpt'); "
            'did you mean "smtp"?',
        ),
        (
            '[mail]\ntransport = "SMTP"\n',
            "mail.transport: Input should be 'outbox' or 'smtp' (got 'SMTP'); "
            'did you mean "smtp"?',
        ),
        (
            '[mail.smtp]\ntls = "starttl"\n',
            "mail.smtp.tls: Input should be 'starttls', 'implicit' or 'none' (got 'starttl'); "
            'did you mean "starttls"?',
        ),
        (
            '[publish]\nformats = ["rss", "atmo"]\n',
            "publish.formats[1]: Input should be 'rss', 'atom' or 'json' (got 'atmo'); "
            'did you mean "atom"?',
        ),
        (
            '[[sources]]\nname = "a"\nurl = "https://e.org/f"\nforum = "discorse"\n',
            "sources[0].forum: Input should be 'feed', 'template', 'discourse' or 'none' "
            "(got 'discorse'); did you mean \"discourse\"?",
        ),
        # Nothing close: the choices alone.
        (
            '[mail]\ntransport = "pigeon"\n',
            "mail.transport: Input should be 'outbox' or 'smtp' (got 'pigeon')",
        ),
        ("[mail]\ntransport = 5\n", "mail.transport: Input should be 'outbox' or 'smtp' (got 5)"),
    ],
)
def test_a_word_one_typo_from_a_choice_gets_a_suggestion(
    tmp_path: Path, text: str, line: str
) -> None:
    assert problems(tmp_path, MINIMAL + text) == [f"{tmp_path / 'config.toml'}: {line}"]


def test_unknown_section_is_reported(tmp_path: Path) -> None:
    [line] = problems(tmp_path, MINIMAL + "[publsh]\nitems = 5\n")
    assert line.endswith('publsh: unknown key; did you mean "publish"?')


def test_toml_syntax_error_has_the_line_number(tmp_path: Path) -> None:
    [line] = problems(tmp_path, MINIMAL + "[digest\nschedule = 1\n")
    assert "TOML syntax error" in line
    assert "line 4" in line


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        '[site]\nurl = "ftp://x"\ntimezone = "Mars/Olympus"\n'
        '[publish]\nitems = "fifty"\nformats = ["rss", "gopher"]\n'
        '[[sources]]\nname = "Bad Name"\nurl = "https://example.org/f"\nevery = "soon"\n'
    )
    lines = problems(tmp_path, text)
    keys = [line.split(": ")[1] for line in lines]
    assert sorted(keys) == [
        "publish.formats[1]",
        "publish.items",
        "site.timezone",
        "site.title",
        "site.url",
        "sources[0].every",
        "sources[0].name",
    ]
    assert any("required key is missing" in line for line in lines)
    assert any('unknown time zone "Mars/Olympus"' in line for line in lines)
    assert any("(got 'fifty')" in line for line in lines)


def test_duplicate_source_names(tmp_path: Path) -> None:
    text = MINIMAL + (
        '[[sources]]\nname = "a"\nurl = "https://e.org/1"\n'
        '[[sources]]\nname = "a"\nurl = "https://e.org/2"\n'
    )
    [line] = problems(tmp_path, text)
    assert line.endswith("sources[1].name: duplicate source name 'a' (also sources[0])")


def test_site_categories_and_their_tags(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'url = "https://example.org/"\n',
        'url = "https://example.org/"\ncategories = [" Rivers ", "Field notes"]\n',
    ) + (
        '[categories.rivers]\ntags = ["drought", "Flood resilience"]\n'
        '[categories."Field notes"]\ntags = []\n'
        '[[sources]]\nname = "a"\nurl = "https://e.org/1"\ncategory = "drought"\n'
    )
    settings = load_settings(write(tmp_path, text))
    assert settings.site.categories == ["Rivers", "Field notes"]
    assert settings.categories["rivers"].tags == ["drought", "Flood resilience"]
    # Left out: None, which means every category a source names or a post has.
    assert load_settings(write(tmp_path, MINIMAL)).site.categories is None


def test_site_category_mistakes_name_the_key(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'url = "https://example.org/"\n',
        'url = "https://example.org/"\ncategories = ["Rivers", "Field notes", "field-notes"]\n',
    ) + (
        '[categories.Rivres]\ntags = ["drought"]\n'
        '[categories.Rivers]\ntag = ["flows"]\n'
        '[[sources]]\nname = "a"\nurl = "https://e.org/1"\ncategory = "Field note"\n'
    )
    lines = problems(tmp_path, text)
    choices = '("Rivers", "Field notes", "field-notes")'
    assert [line.removeprefix(f"{tmp_path / 'config.toml'}: ") for line in lines] == [
        'categories.Rivers.tag: unknown key; did you mean "tags"?',
    ]
    lines = problems(tmp_path, text.replace("tag = ", "tags = "))
    assert [line.removeprefix(f"{tmp_path / 'config.toml'}: ") for line in lines] == [
        "site.categories[2]: 'field-notes' is the same category as 'Field notes' (names are "
        "compared ignoring case and punctuation)",
        f"categories.Rivres: 'Rivres' is not in [site] categories {choices}; "
        'did you mean "Rivers"?',
        f"sources[0].category: 'Field note' is not in [site] categories {choices} nor a tag "
        'of a [categories.<name>] table; did you mean "Field notes"?',
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('[""]', "site.categories[0]: not a category name: ''"),
        ('["Rivers\\nBcc: x"]', "site.categories[0]: a category name cannot contain control"),
        ('["Riv\\u202eers"]', "site.categories[0]: a category name cannot contain control"),
        (f'["{"x" * 101}"]', "site.categories[0]: a category name is at most 100 characters"),
        ('"Rivers"', "site.categories: Input should be a valid list"),
    ],
)
def test_a_category_name_that_cannot_be_shown_is_refused(
    tmp_path: Path, value: str, message: str
) -> None:
    text = MINIMAL.replace(
        'url = "https://example.org/"\n', f'url = "https://example.org/"\ncategories = {value}\n'
    )
    [line] = problems(tmp_path, text)
    assert message in line
    assert "\n" not in line


def test_category_tables_need_site_categories(tmp_path: Path) -> None:
    [line] = problems(tmp_path, MINIMAL + '[categories.Rivers]\ntags = ["drought"]\n')
    assert line.endswith(
        "categories.Rivers: a table for a category that [site] categories does not list "
        "(add the key `categories = [...]` to [site])"
    )


def test_url_template_rejects_unknown_placeholders(tmp_path: Path) -> None:
    text = MINIMAL + '[forum]\nstrategy = "template"\nurl_template = "https://f.org/{title}"\n'
    [line] = problems(tmp_path, text)
    assert "forum.url_template: unknown placeholder {title}" in line


def test_template_strategy_needs_a_template(tmp_path: Path) -> None:
    text = MINIMAL + ('[[sources]]\nname = "a"\nurl = "https://e.org/1"\nforum = "template"\n')
    [line] = problems(tmp_path, text)
    assert line.endswith('forum.url_template: required when a source uses strategy "template"')


def test_secrets_are_env_var_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [line] = problems(tmp_path, MINIMAL + '[mail.smtp]\npassword_env = "hunter 2"\n')
    assert "mail.smtp.password_env: not an environment variable name" in line
    text = MINIMAL + '[mail]\ntransport = "smtp"\n[mail.smtp]\npassword_env = "SMTP_PW"\n'
    monkeypatch.delenv("SMTP_PW", raising=False)
    monkeypatch.delenv("SYNDICATE_SECRET", raising=False)
    settings = load_settings(write(tmp_path, text))
    assert missing_secrets(settings) == [
        "web.secret_env: environment variable SYNDICATE_SECRET is not set",
        "mail.smtp.password_env: environment variable SMTP_PW is not set",
    ]
    monkeypatch.setenv("SMTP_PW", "s3cret")
    monkeypatch.setenv("SYNDICATE_SECRET", "x" * 32)
    assert missing_secrets(settings) == []


def test_database_url_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(write(tmp_path, MINIMAL + '[storage]\ndatabase_env = "DB_URL"\n'))
    monkeypatch.setenv("DB_URL", "postgresql+psycopg://u:pw@db/x")
    assert settings.database_url == "postgresql+psycopg://u:pw@db/x"


def test_missing_file_and_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml")
    path = tmp_path / "config.toml"
    path.write_bytes(MINIMAL.encode() + b'description = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"config.toml:4: not valid UTF-8"):
        load_settings(path)


def test_config_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNDICATE_CONFIG", raising=False)
    assert config_path() == Path("config.toml")
    monkeypatch.setenv("SYNDICATE_CONFIG", "/etc/syndicate.toml")
    assert config_path() == Path("/etc/syndicate.toml")
    assert config_path("mine.toml") == Path("mine.toml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("1h30m", 5400), ("90s", 90), ("1d", 86400), (45, 45), ("2w", 1209600)],
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "soon", "30", "m30", "0s", "30x", True])
def test_bad_durations(text: str | bool) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("10MB", 10_000_000), ("512KiB", 524_288), (4096, 4096), ("1.5 GB", 1_500_000_000)],
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


toml_values = st.recursive(
    st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(min_size=1, max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
sections = st.sampled_from(
    ["site", "storage", "ingest", "sources", "forum", "publish", "digest", "mail", "web", "typo"]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.dictionaries(sections, toml_values, max_size=5))
def test_no_config_crashes_the_loader(tmp_path: Path, data: dict) -> None:
    import tomlkit

    path = tmp_path / "config.toml"
    path.write_text(tomlkit.dumps(data), encoding="utf-8")
    try:
        load_settings(path)
    except ConfigError as error:
        assert error.problems
        assert all(line.startswith(str(path)) and "\n" not in line for line in error.problems)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200))
def test_no_bytes_crash_the_loader(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError):
        load_settings(path)


def test_bundled_config_parses_as_plain_toml() -> None:
    # The file admins edit must stay valid TOML with the contract's section names.
    data = tomllib.loads((Path(__file__).parent.parent / "config.toml").read_text())
    assert {"site", "storage", "sources", "forum", "publish", "digest", "mail", "web"} <= set(data)
