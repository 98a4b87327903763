"""The translation catalogs in locales/ cover every string the templates and the code mark
for translation, and the templates mark every word a reader sees.

Two checks:
- every message `pybabel extract -F babel.cfg` finds (what the README's workflow extracts)
  is in the English, Thai, Khmer and Burmese catalogs, translated (not empty, not fuzzy) in
  all but English, with the same %(placeholders)s as the English;
- rendered in a pseudo-language whose every translation is wrapped in ⟦ ⟧, with data in
  Thai, a reader's copy shows no Latin word outside ⟦ ⟧ (URLs and addresses aside): a word
  written into a template without _() or {% trans %} is caught here, not by a reader.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po
from click.testing import CliRunner
from test_digest_languages import BURMESE, THAI, content
from webclient import WEB_NOW, prepare_site, web_client

from syndicate import subscribers
from syndicate.cli import cli
from syndicate.clock import FrozenClock
from syndicate.digest.context import DigestSubscriber
from syndicate.digest.issue import IssueContent
from syndicate.digest.render import DigestRenderer
from syndicate.i18n import reload_catalogs, translator
from syndicate.mail import confirm, welcome
from syndicate.mail.confirm import ConfirmSite
from syndicate.tokens import Tokens
from syndicate.web.app import create_app

REPO = Path(__file__).resolve().parent.parent
LOCALES = REPO / "locales"
LANGUAGES = ("en", "th", "km", "my")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> dict[tuple[str | None, str], tuple[str, ...]]:
    """What `pybabel extract -F babel.cfg .` finds: (msgctxt, msgid) -> its forms (singular,
    plural)."""
    with (REPO / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: dict[tuple[str | None, str], tuple[str, ...]] = {}
    for _, _, message, _, context in extract_from_dir(str(REPO), method_map, options_map):
        forms = (message,) if isinstance(message, str) else tuple(message)
        found[context, forms[0]] = forms
    return found


def catalog(language: str) -> Catalog:
    with (LOCALES / language / "LC_MESSAGES" / "syndicate.po").open("rb") as source:
        return read_po(source, locale=language)


def test_extraction_finds_the_templates_and_the_codes_strings() -> None:
    messages = extracted()
    # One from a template, one from a trans block with a plural, one from the code, one
    # with a context.
    assert (None, "Unsubscribe") in messages
    assert messages[None, "%(num)s comment"] == ("%(num)s comment", "%(num)s comments")
    assert (None, "Hello %(name)s,") in messages
    assert ("a post comes from a source", "from") in messages


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_string_is_in_each_catalog_and_translated(language: str) -> None:
    messages = extracted()
    kept = catalog(language)
    missing = [key for key in messages if kept.get(key[1], context=key[0]) is None]
    assert not missing, (
        f"not in locales/{language}: {missing}; run the README's pybabel extract and update"
    )
    if language == "en":
        return
    problems = []
    for (context, msgid), forms in messages.items():
        entry = kept.get(msgid, context=context)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if entry.fuzzy or not all(strings):
            problems.append(f"untranslated: {msgid!r}")
            continue
        wanted = set(PLACEHOLDER.findall(" ".join(forms)))
        for string in strings:
            if set(PLACEHOLDER.findall(string)) != wanted:
                problems.append(f"placeholders differ: {msgid!r} -> {string!r}")
    assert not problems, "\n".join(problems)


def test_the_catalogs_hold_no_strings_nothing_uses() -> None:
    messages = extracted()
    for language in LANGUAGES:
        stale = [
            m.id
            for m in catalog(language)
            if m.id and (m.context, m.id[0] if isinstance(m.id, tuple) else m.id) not in messages
        ]
        assert not stale, f"locales/{language} has strings no template uses: {stale}"


def test_compiled_catalogs_are_used_and_a_newer_po_wins(tmp_path: Path) -> None:
    locales = tmp_path / "locales"
    # The .po alone (an installed checkout also has the .mo that `pip install` compiled).
    shutil.copytree(LOCALES / "th", locales / "th", ignore=shutil.ignore_patterns("*.mo"))
    assert not list(locales.rglob("*.mo"))
    # No .mo: the .po is compiled in memory.
    assert translator("th", locales).gettext("Unsubscribe") == "ยกเลิกการรับ"
    # The README's compile step.
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "compile", "-d", str(locales),
         "-D", "syndicate"],
        check=True, capture_output=True,
    )  # fmt: skip
    po = locales / "th" / "LC_MESSAGES" / "syndicate.po"
    mo = po.with_suffix(".mo")
    # A .po older than its .mo is not read: the .mo's words are what readers get.
    edited = catalog("th")
    edited.get("Read more").string = "อ่านเพิ่มเติม"
    with po.open("wb") as out:
        write_po(out, edited)
    before = mo.stat().st_mtime_ns - 1_000_000_000
    os.utime(po, ns=(before, before))
    reload_catalogs()
    assert translator("th", locales).gettext("Read more") == "อ่านต่อ"
    # The .po edited since (newer than its .mo): the edit is what readers get, at once
    # after reload_catalogs() (else within the second).
    os.utime(po)
    reload_catalogs()
    assert translator("th", locales).gettext("Read more") == "อ่านเพิ่มเติม"


def test_a_fuzzy_translation_reads_in_english(tmp_path: Path) -> None:
    locales = tmp_path / "locales"
    shutil.copytree(LOCALES / "th", locales / "th")
    po = locales / "th" / "LC_MESSAGES" / "syndicate.po"
    edited = catalog("th")
    edited.get("Read more").flags.add("fuzzy")
    with po.open("wb") as out:
        write_po(out, edited)
    assert translator("th", locales).gettext("Read more") == "Read more"
    assert translator("th", locales).gettext("Discuss") == "ร่วมพูดคุย"


# --- nothing a reader sees is left untranslated --------------------------------------------------


def pseudo_locales(tmp_path: Path) -> Path:
    """A Thai catalog (Thai dates and numbers) whose every translation is ⟦the English⟧."""
    pseudo = Catalog(locale="th", domain="syndicate")
    for (context, msgid), forms in extracted().items():
        if len(forms) > 1:
            pseudo.add(forms, tuple(f"⟦{form}⟧" for form in forms[:1]), context=context)
        else:
            pseudo.add(msgid, f"⟦{msgid}⟧", context=context)
    folder = tmp_path / "locales" / "th" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "syndicate.po").open("wb") as out:
        write_po(out, pseudo)
    return tmp_path / "locales"


class _Text(HTMLParser):
    """The words of a page a reader sees or hears: text, and alt/title/aria-label values."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        self.parts += [v for k, v in attrs if k in ("alt", "title", "aria-label") and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def untranslated(text: str) -> list[str]:
    """Latin words outside ⟦ ⟧, URLs and addresses."""
    while (inner := re.sub(r"⟦[^⟦⟧]*⟧", " ", text)) != text:  # nested: a word in a sentence
        text = inner
    text = re.sub(r"\S+@\S+|https?://\S+|<\S+>", " ", text)
    return re.findall(r"[A-Za-z]{2,}", text)


def thai_issues() -> Iterator[IssueContent]:
    """An issue whose data is all Thai, each way the templates can go (other languages
    linked and left out, posts with and without links, an "N more" line or not)."""
    whole = content("link")
    site = replace(whole.context.site, title="ข่าวริมแม่น้ำ", description="ข่าว")
    thai = replace(THAI, source="ศูนย์", category="พันธมิตร", categories=("พันธมิตร",))
    burmese = replace(BURMESE, source="ศูนย์", category="พันธมิตร", categories=("พันธมิตร",))
    posts = (thai, replace(thai, url="", discussion_url=None, excerpt=""), burmese)
    for other, more in (("link", 2), ("omit", 0)):
        yield replace(
            whole,
            context=replace(whole.context, site=site, posts=posts, more=more),
            other_languages=other,
        )


def test_no_word_of_the_digest_escapes_the_catalogs(tmp_path: Path) -> None:
    locales = pseudo_locales(tmp_path)
    words = translator("th", locales)
    renderer = DigestRenderer(REPO / "templates", "{{ site.title }}", locales_dir=locales)
    for issue in thai_issues():
        for categories in (frozenset(), frozenset({"nothing"})):  # an issue with no posts too
            copy = issue.for_reader(categories, words)
            rendered = renderer.render(copy)
            html, text = rendered.personalise(
                DigestSubscriber.of("สมชาย", "somchai@example.org", words),
                "https://x/u",
                "https://x/p",
            )
            assert untranslated(visible(html)) == [], visible(html)
            assert untranslated(text) == [], text
            web = renderer.render_web_copy(copy)
            assert untranslated(visible(web)) == [], visible(web)
            assert untranslated(rendered.subject) == []


@pytest.mark.parametrize("kind", ["confirm", "welcome"])
def test_no_word_of_the_one_off_emails_escapes_the_catalogs(tmp_path: Path, kind: str) -> None:
    locales = pseudo_locales(tmp_path)
    renderer = (confirm if kind == "confirm" else welcome).renderer(REPO / "templates", locales)
    site = ConfirmSite("ข่าวริมแม่น้ำ", "https://news.example", "ข่าว", "th")
    for sample in renderer.samples():
        person = sample["subscriber"]
        thai = {
            **sample,
            "site": site,
            "language": "th",
            # What confirm.frequency() gives a Thai reader.
            "frequency": translator("th", locales).gettext("monthly"),
            "subscriber": replace(
                person,
                name="สมชาย" if person.name else "",
                categories=tuple("หมวด" for _ in person.categories),
            ),
        }
        email = renderer.render(thai)
        assert untranslated(email.subject) == [], email.subject
        assert untranslated(email.text) == [], email.text
        assert untranslated(visible(email.html)) == [], visible(email.html)


# Names that stay as they are in every language: the feed formats, and English as the
# language switch names it (each language in itself).
NAMES = {"RSS", "Atom", "JSON", "Feed", "English"}

THAI_SITE = """
[site]
title = "ข่าวริมแม่น้ำ"
url = "http://testserver"
description = "ข่าวจากแม่น้ำ"
language = "en"
languages = ["en", "th"]
timezone = "Asia/Bangkok"
author = "ทีมงาน"
categories = ["พันธมิตร", "อาสาสมัคร"]

[storage]
database = "sqlite:///var/syndicate.db"

[forum]
strategy = "template"
url_template = "https://forum.example.org/t/{slug}"

[[sources]]
name = "thai"
url = "thai.rss"
title = "ศูนย์สมุทรสาคร"
language = "th"

[web]
secret_env = "SYNDICATE_SECRET"
"""


async def test_no_word_of_the_pages_escapes_the_catalogs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page of a site whose data is all Thai, read by a Thai reader, in the
    pseudo-language: the home page, the forms, the archives, the lists, the signed-link
    pages, the errors."""
    monkeypatch.setenv("SYNDICATE_SECRET", "catalog-test-secret-" * 3)
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    pseudo_locales(tmp_path)
    feed = (REPO / "examples" / "samut-sakhon-partner.rss").read_text(encoding="utf-8")
    feed = feed.replace("<category>Partners</category>", "<category>พันธมิตร</category>")
    feed = feed.replace("<category>Volunteering</category>", "<category>อาสาสมัคร</category>")
    (tmp_path / "thai.rss").write_text(feed, encoding="utf-8")
    (tmp_path / "config.toml").write_text(THAI_SITE, encoding="utf-8")
    settings, store = await prepare_site(tmp_path)
    try:
        person, _ = await subscribers.add(store, "som@example.org", WEB_NOW, confirmed=True)
        person = await subscribers.update_preferences(
            store, person.id or 0, name="สมชาย", categories=["พันธมิตร"], language="th"
        )
        tokens = Tokens("catalog-test-secret-" * 3, FrozenClock(WEB_NOW))
        app = create_app(settings, store=store, clock=FrozenClock(WEB_NOW))
        pages = [
            "/",
            "/subscribe",
            "/feeds/index.html",
            "/feeds/archive/index.html",
            "/feeds/archive/2015-12.html",
            "/feeds/archive/2015-11.html",
            "/feeds/digest/index.html",
            "/no/such/page",
            "/confirm/not-a-token",
            tokens.link("http://testserver", "preferences", person).removeprefix(
                "http://testserver"
            ),
            tokens.link("http://testserver", "unsubscribe", person).removeprefix(
                "http://testserver"
            ),
        ]
        async with web_client(app) as client:
            for path in pages:
                page = await client.get(path, headers={"Accept-Language": "th"})
                assert page.status_code in (200, 400, 404), (path, page.status_code)
                assert '<html lang="th"' in page.text, path
                words = [w for w in untranslated(visible(page.text)) if w not in NAMES]
                assert words == [], (path, words)
            # A form sent with a mistake, and one sent right.
            form = await client.get("/subscribe", headers={"Accept-Language": "th"})
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            # A bad address, a name too long, and one that is right.
            for email, name in (
                ("not an address", ""),
                ("a@example.org", "ก" * 300),
                ("noi@example.org", ""),
            ):
                sent = await client.post(
                    "/subscribe",
                    data={
                        "email": email,
                        "name": name,
                        "csrf_token": html.unescape(token.group(1)),
                    },
                    headers={"Origin": "http://testserver", "Accept-Language": "th"},
                )
                words = [w for w in untranslated(visible(sent.text)) if w not in NAMES]
                assert words == [], (email, words)
    finally:
        await store.close()


def test_check_names_the_catalog_whose_translation_breaks_the_digest(tmp_path: Path) -> None:
    locales = tmp_path / "locales"
    shutil.copytree(LOCALES / "th", locales / "th")
    po = locales / "th" / "LC_MESSAGES" / "syndicate.po"
    broken = catalog("th")
    broken.get("No new posts in %(period)s.").string = "ไม่มีโพสต์ใหม่ใน %(perod)s"
    with po.open("wb") as out:
        write_po(out, broken)
    problems = DigestRenderer(REPO / "templates", "{{ site.title }}", locales_dir=locales).check()
    assert problems, "the broken translation went unnoticed"
    for problem in problems:  # each template that says it, in both parts
        assert "'perod'" in problem and problem.endswith(f"(translated by {po})"), problem
    # The repo's own catalogs break nothing.
    assert DigestRenderer(REPO / "templates", "{{ site.title }}", locales_dir=LOCALES).check() == []


def test_check_warns_of_a_language_without_a_catalog(
    bundled_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", "catalog-test-secret-" * 3)
    config = str(bundled_project / "config.toml")
    ok = CliRunner().invoke(cli, ["--config", config, "check"])
    assert ok.exit_code == 0 and "no catalog" not in ok.stderr, ok.output
    shutil.rmtree(bundled_project / "locales" / "km")
    warned = CliRunner().invoke(cli, ["--config", config, "check"])
    assert warned.exit_code == 0
    assert "[site] languages: no catalog for 'km'" in warned.stderr
    assert "'th'" not in warned.stderr and "'my'" not in warned.stderr


def test_an_edited_catalog_is_read_again_within_a_second(tmp_path: Path) -> None:
    locales = tmp_path / "locales"
    shutil.copytree(LOCALES / "th", locales / "th", ignore=shutil.ignore_patterns("*.mo"))
    assert translator("th", locales).gettext("Read more") == "อ่านต่อ"
    edited = catalog("th")
    edited.get("Read more").string = "อ่านเพิ่มเติม"
    with (locales / "th" / "LC_MESSAGES" / "syndicate.po").open("wb") as out:
        write_po(out, edited)
    deadline = time.monotonic() + 3
    while translator("th", locales).gettext("Read more") != "อ่านเพิ่มเติม":
        assert time.monotonic() < deadline, "the edit was not read again"
        time.sleep(0.05)
