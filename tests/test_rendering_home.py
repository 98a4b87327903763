"""Rendering has one home (syndicate.templating) and digest does not know mail (issue 17).

Read from the source with ast, so a function-level import counts as much as one at the top.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syndicate.digest.context import DigestSubscriber
from syndicate.digest.render import RenderedDigest
from syndicate.mail.wire import MailCopy
from syndicate.templating import email_environment, page_environment

PACKAGE = Path(__file__).resolve().parent.parent / "syndicate"
SOURCES = sorted(PACKAGE.rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module `path` imports, wherever in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def called(path: Path) -> set[str]:
    """The names of what `path` calls (`f(...)` and `x.f(...)` both give "f")."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                names.add(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                names.add(node.func.attr)
    return names


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def test_digest_does_not_import_mail() -> None:
    # mail (the sending loop) depends on digest; the reverse would close the circle.
    digest = [p for p in SOURCES if p.parent.name == "digest"]
    assert digest
    offenders = {
        relative(path): sorted(m for m in imported(path) if m.startswith("syndicate.mail"))
        for path in digest
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


@pytest.mark.parametrize(
    "what", ["Environment", "SandboxedEnvironment", "ImmutableSandboxedEnvironment", "CSSInliner"]
)
def test_only_templating_builds_environments_and_inlines_css(what: str) -> None:
    builders = sorted(relative(p) for p in SOURCES if what in called(p))
    assert builders in ([], ["syndicate/templating.py"])


def test_only_templating_imports_jinja_loaders_and_css_inline() -> None:
    # Templates may still be typed with jinja2.Template; loading and inlining are one place's.
    users = sorted(
        relative(path)
        for path in SOURCES
        if "css_inline" in imported(path) or "jinja2.sandbox" in imported(path)
    )
    assert users == ["syndicate/templating.py"]


def test_pages_and_emails_show_a_date_alike(tmp_path: Path) -> None:
    # One `date` filter for both: a web page and an email show a post on the same day.
    (tmp_path / "t.j2").write_text("{{ when|date }}", encoding="utf-8")
    when = datetime(2015, 12, 31, 23, 30, tzinfo=UTC)
    variables = {"when": when, "timezone": "Europe/Berlin"}
    page = page_environment(tmp_path).get_template("t.j2").render(variables)
    mail = email_environment(tmp_path, autoescape=True).get_template("t.j2").render(variables)
    assert page == mail == "1 January 2016"


def test_a_mail_copy_is_the_personalised_copy_on_the_wire() -> None:
    rendered = RenderedDigest(
        "S",
        '<p>%%SYNDICATE-GREETING%%</p>\n<a href="%%SYNDICATE-UNSUBSCRIBE%%">x</a>\n',
        ".%%SYNDICATE-NAME%%\n",
    )
    person = DigestSubscriber.of('Ann "A" <&>', "ann@example.org")
    html, text = MailCopy(rendered).bodies(person, "https://x.example/u?a=1&b=2", "https://p/")
    want = rendered.personalise(person, "https://x.example/u?a=1&b=2", "https://p/")
    assert isinstance(html, bytes) and isinstance(text, bytes)
    assert (html.decode(), text.decode()) == tuple(p.replace("\n", "\r\n") for p in want)
