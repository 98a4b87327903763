"""Issue 20's acceptance, as an admin runs it: on the bundled config (four languages, a Thai
partner's feed), a subscriber added with `--language th` gets a digest whose words, dates and
posts are Thai and whose text part wraps between Thai words; an English subscriber's copy is
the one the same config sent before it offered other languages.

Everything is real: the CLI, a SQLite file, the Maildir outbox, the repo's catalogs.
"""

from __future__ import annotations

import asyncio
import difflib
import re
import shutil
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import english_only
from icu4py.breakers import LineBreaker
from icu4py.locale import Locale
from outbox import outbox_messages

from syndicate import subscribers
from syndicate.cli import cli
from syndicate.config import load_settings
from syndicate.store import Store

THAI_POSTS = (
    "เปิดศูนย์ให้คำปรึกษาแรงงานข้ามชาติแห่งใหม่ในจังหวัดสมุทรสาคร",
    "อาสาสมัครลงพื้นที่ท่าเรือประมงเพื่อพูดคุยกับลูกเรือ",
)
ENGLISH_POST = "Thank you: a year of Riverside Commons in numbers"


def invoke(project: Path, *args: str) -> Result:
    result = CliRunner().invoke(
        cli, ["--config", str(project / "config.toml"), *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result


def send_december(project: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, EmailMessage]:
    """Ann (English) and Somchai (Thai) subscribed, December 2015 sent: their messages."""
    monkeypatch.setenv("SYNDICATE_SECRET", "a-test-secret-of-enough-length-0123456789")
    invoke(project, "ingest")
    invoke(project, "subscribers", "add", "ann@example.org", "--name", "Ann", "--confirmed")
    if "\nlanguages = " in (project / "config.toml").read_text():
        invoke(
            project, "subscribers", "add", "somchai@example.org", "--name", "สมชาย",
            "--language", "th", "--confirmed",
        )  # fmt: skip
    invoke(project, "digest", "send", "--month", "2015-12")
    return {
        str(message["To"].addresses[0].addr_spec): message
        for message in outbox_messages(project / "var" / "outbox")
    }


def unsigned(body: str) -> str:
    return re.sub(r"/(unsubscribe|preferences)/[\w.-]+", r"/\1/TOKEN", body)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_a_thai_subscriber_gets_a_thai_digest(
    bundled_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = send_december(bundled_project, monkeypatch)
    thai = messages["somchai@example.org"]
    text, html = parts(thai)
    assert str(thai["Subject"]) == "Riverside Commons News: ธันวาคม 2015"
    assert '<html lang="th"' in html
    # The chrome, the greeting and the dates in Thai; the posts are the Thai partner's.
    for words in ("สวัสดีคุณสมชาย", "ยกเลิกการรับ", "ดูในเบราว์เซอร์", "ธันวาคม 2015"):
        assert words in text and words in html, words
    assert re.search(r"1[05] ธันวาคม 2015", text)
    for title in THAI_POSTS:
        assert title in text and title in html
    assert ENGLISH_POST not in text
    for english in ("Unsubscribe", "Read more", "View in your browser", "Hello"):
        assert english not in text, english
    # The text part's Thai lines end where ICU puts a line break in the Thai text.
    excerpt = next(line for line in text.splitlines() if line.startswith("ศูนย์แห่งใหม่"))
    paragraph = "".join(line for line in text.split(excerpt, 1)[1].split("\n\n", 1)[0].splitlines())
    whole = excerpt + paragraph
    breaks = {end for _, end in LineBreaker(whole, Locale("th")).segments()}
    assert len(excerpt) in breaks, excerpt
    # The Thai web copy is the one they are sent to, and it is published.
    assert "/feeds/digest/2015-12.th.html" in text
    assert (bundled_project / "feeds" / "digest" / "2015-12.th.html").is_file()


def test_the_english_subscribers_digest_is_unchanged(
    bundled_project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The same config as it was before it offered languages and had the Thai feed.
    before_languages = tmp_path / "before"
    shutil.copytree(bundled_project, before_languages)
    english_only(before_languages / "config.toml")
    with_languages = send_december(bundled_project, monkeypatch)["ann@example.org"]
    before = send_december(before_languages, monkeypatch)["ann@example.org"]
    assert str(with_languages["Subject"]) == str(before["Subject"])
    # The signed links carry the time they were signed at; the rest is the same bytes.
    for now, then in zip(
        map(unsigned, parts(with_languages)), map(unsigned, parts(before)), strict=True
    ):
        assert now == then, "\n".join(
            difflib.unified_diff(then.splitlines(), now.splitlines(), lineterm="", n=1)
        )
    text, _ = parts(with_languages)
    assert "Hello Ann," in text and ENGLISH_POST in text
    assert not any(title in text for title in THAI_POSTS)


def test_a_thai_subscriber_who_chose_so_gets_the_english_posts_by_title(
    bundled_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", "a-test-secret-of-enough-length-0123456789")
    invoke(bundled_project, "ingest")
    invoke(
        bundled_project, "subscribers", "add", "somchai@example.org", "--name", "สมชาย",
        "--language", "th", "--confirmed",
    )  # fmt: skip
    settings = load_settings(bundled_project / "config.toml")

    async def choose() -> None:
        async with await Store.open(settings.database_url) as store:
            found = await store.subscriber_by_email("somchai@example.org")
            assert found is not None and found.id is not None
            await subscribers.update_preferences(
                store, found.id, name="สมชาย", categories=[], other_languages="link"
            )

    asyncio.run(choose())
    shown = invoke(bundled_project, "subscribers", "show", "somchai@example.org").output
    assert re.search(r"other languages\s+link", shown), shown
    invoke(bundled_project, "digest", "send", "--month", "2015-12")
    [message] = outbox_messages(bundled_project / "var" / "outbox")
    text, html = parts(message)
    assert "ในภาษาอื่น" in text and ENGLISH_POST in text and "(English)" in text
    assert THAI_POSTS[0] in text and re.search(r'<li lang="en[-\w]*"[^>]*><a [^>]*>Thank you', html)


def test_a_thai_intro_goes_to_thai_readers_and_the_english_one_to_the_others(
    bundled_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", "a-test-secret-of-enough-length-0123456789")
    intros = bundled_project / "digest" / "intro"
    intros.mkdir(parents=True)
    (intros / "2015-12.md").write_text("A **busy** month on the river.\n")
    (intros / "2015-12.th.md").write_text("เดือนนี้มี**ข่าวดี**จากสมุทรสาคร <script>x</script>\n")
    invoke(bundled_project, "ingest")

    def preview(language: str) -> str:
        return invoke(bundled_project, "digest", "preview", "--month", "2015-12",
                      "--language", language, "--format", "html").output  # fmt: skip

    thai, english, khmer = preview("th"), preview("en"), preview("km")
    assert "<strong>ข่าวดี</strong>" in thai and "busy" not in thai
    assert "<script>" not in thai  # sanitised like the default intro
    assert "<strong>busy</strong>" in english and "ข่าวดี" not in english
    assert "<strong>busy</strong>" in khmer  # no Khmer intro written: the default one
