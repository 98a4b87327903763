"""Language tags (syndicate.languages): from feeds and browsers, by script, for posts; and
the config's [site] languages and a source's `language` key."""

from __future__ import annotations

import base64
import html
import quopri
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st
from test_normalise import normalise
from test_web_subscription import CSRF_FIELD, SECRET, Web

from syndicate.cli import cli
from syndicate.config import Settings, load_settings
from syndicate.errors import ConfigError
from syndicate.i18n import translator
from syndicate.ingest.raw import RawEntry
from syndicate.languages import best_match, language_tag, post_language, script_language

THAI = "กระทรวงแรงงานเปิดศูนย์ช่วยเหลือแรงงานข้ามชาติในจังหวัดสมุทรสาคร"
LAO = "ກະຊວງແຮງງານເປີດສູນຊ່ວຍເຫຼືອແຮງງານ"
KHMER = "ក្រសួងការងារបើកមជ្ឈមណ្ឌលជំនួយពលករចំណាកស្រុក"
BURMESE = "အလုပ်သမားဝန်ကြီးဌာနသည် ရွှေ့ပြောင်းအလုပ်သမားများအတွက် စင်တာဖွင့်လှစ်သည်"


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("en", "en"),
        (" EN_us ", "en-US"),
        ("th-TH", "th-TH"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("my-MM", "my-MM"),
        ("English", None),
        ("en-", None),
        ("e", None),
        ("en\r\nBcc: x", None),
        ("<script>", None),
        ("", None),
        (None, None),
        (42, None),
        ("en-" + "x" * 40, None),
    ],
)
def test_language_tags(written: object, read: str | None) -> None:
    assert language_tag(written) == read


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (THAI, "th"),
        (LAO, "lo"),
        (KHMER, "km"),
        (BURMESE, "my"),
        (f"Bangkok: {THAI}", "th"),  # mostly Thai
        ("Migrant workers in Samut Sakhon", None),  # Latin says nothing
        ("Рабочие-мигранты", None),
        ("1234 !!!", None),
        ("", None),
        (f"{THAI[:5]} is a Thai word in an English sentence about migrant workers", None),
    ],
)
def test_script_languages(text: str, language: str | None) -> None:
    assert script_language(text) == language


def test_a_post_language_comes_from_the_source_the_feed_or_the_script() -> None:
    assert post_language("km", "en-US", THAI) == "km"  # the admin's key wins
    assert post_language(None, "th-TH", THAI) == "th-TH"  # the feed agrees with the script
    assert post_language(None, "en-US", THAI) == "th"  # WordPress's site-wide en-US
    assert post_language(None, "en-US", "Migrant workers") == "en-US"
    assert post_language(None, None, BURMESE) == "my"
    assert post_language(None, "English", "Migrant workers") is None  # not a tag
    assert post_language("not a tag!", None, "text") is None


def test_normalise_gives_posts_their_language() -> None:
    thai = normalise(RawEntry(id="1", title=THAI, summary=f"<p>{THAI}</p>", language="en-US"))
    assert thai.language == "th"
    kept = normalise(RawEntry(id="2", title="Hello", language="EN-gb"))
    assert kept.language == "en-GB"
    forced = normalise(RawEntry(id="3", title="Hello", language="en"), language="my")
    assert forced.language == "my"
    # The language is part of what the content hash covers: a change is an update.
    assert (
        thai.content_hash
        != normalise(
            RawEntry(id="1", title=THAI, summary=f"<p>{THAI}</p>"), language="km"
        ).content_hash
    )


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("th-TH,th;q=0.9,en-US;q=0.8,en;q=0.7", "th"),
        ("en-US,en;q=0.9", "en"),
        ("km", "km"),
        ("fr-FR,fr;q=0.9", None),
        ("fr;q=1, my;q=0.5", "my"),
        ("en;q=0.1, th;q=0.9", "th"),
        ("*", "en"),
        ("th;q=0", None),
        ("th;q=abc", None),
        ("", None),
        (None, None),
        (";;;,,,q=1", None),
        ("th\r\nX-Evil: 1", None),
    ],
)
def test_accept_language_picks_an_offered_language(header: str | None, chosen: str | None) -> None:
    assert best_match(header, ["en", "th", "km", "my"]) == chosen


@given(st.text(max_size=300))
def test_any_accept_language_header_is_safe(header: str) -> None:
    assert best_match(header, ["en", "th"]) in (None, "en", "th")


@given(st.text(max_size=300))
def test_any_text_has_at_most_one_script_language(text: str) -> None:
    assert script_language(text) in (None, "th", "lo", "km", "my")


def write(project: Path, old: str, new: str) -> Path:
    config = project / "config.toml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new, 1))
    return config


def test_site_languages_in_the_config(project: Path) -> None:
    config = write(project, "[site]\n", '[site]\nlanguages = ["en", "TH", "km", "my"]\n')
    settings = load_settings(config)
    assert settings.site.offered_languages == ["en", "th", "km", "my"]
    assert load_settings(write(project, '"TH"', '"th_TH"')).site.offered_languages[1] == "th-TH"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ('["en", "en"]', "listed twice"),
        ('["en", "Thai"]', "not a language tag: 'Thai'"),
        ("[]", "at least 1"),
    ],
)
def test_bad_site_languages_name_the_key(project: Path, value: str, says: str) -> None:
    config = write(project, "[site]\n", f"[site]\nlanguages = {value}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert "site.languages" in str(raised.value) and says in str(raised.value)


def test_a_source_language_key(project: Path) -> None:
    config = write(project, "[[sources]]\n", '[[sources]]\nlanguage = "th"\n')
    assert load_settings(config).sources[0].language == "th"
    write(project, '[[sources]]\nlanguage = "th"', '[[sources]]\nlanguage = "Thai"')
    with pytest.raises(ConfigError, match=r"sources\[0\]\.language: .*not a language tag"):
        load_settings(config)


# -- a subscriber's language ----------------------------------------------------------------


@pytest.fixture
def multilingual(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)  # the web tests' links are signed with it
    return write(project, "[site]\n", '[site]\nlanguages = ["en", "th", "km", "my"]\n')


def on_database(config: Path, database_url: str) -> Settings:
    """`config` pointed at `database_url`, loaded."""
    config.write_text(
        config.read_text().replace(
            'database = "sqlite:///var/syndicate.db"', f'database = "{database_url}"'
        )
    )
    return load_settings(config)


async def opened(settings: Settings) -> AsyncIterator[Web]:
    """The web app over `settings`, in process (test_web_subscription.open_web)."""
    from test_web_subscription import open_web

    from syndicate.mail.outbox import OutboxTransport

    async for web in open_web(settings, OutboxTransport(settings.outbox_dir)):
        yield web


def test_subscribers_add_takes_one_of_the_site_s_languages(multilingual: Path) -> None:
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(multilingual), *args])

    assert (
        invoke(
            "subscribers", "add", "som@example.org", "--confirmed", "--language", "TH-th"
        ).exit_code
        == 0
    )
    assert invoke("subscribers", "add", "ann@example.org", "--confirmed").exit_code == 0
    refused = invoke("subscribers", "add", "jean@example.org", "--language", "fr")
    assert refused.exit_code == 2
    assert "--language 'fr' is not one of the site's: en, th, km, my" in refused.stderr
    shown = invoke("subscribers", "show", "som@example.org")
    assert "language      th" in shown.stdout
    assert "language      en (default)" in invoke("subscribers", "show", "ann@example.org").stdout
    assert "jean@example.org" not in invoke("subscribers", "list").stdout


async def test_the_subscribe_form_takes_the_browser_s_language(
    multilingual: Path, database_url: str
) -> None:
    async for web in opened(on_database(multilingual, database_url)):
        for address, header in (
            ("som@example.org", "th-TH,th;q=0.9,en;q=0.5"),
            ("dara@example.org", "km-KH"),
            ("jean@example.org", "fr-FR,fr;q=0.9"),
            ("nobody@example.org", None),
        ):
            headers = {"Accept-Language": header} if header else {}
            page = await web.client.get("/subscribe", headers=headers)
            token = CSRF_FIELD.search(page.text)
            assert token is not None
            data = {"email": address, "csrf_token": html.unescape(token.group(1))}
            response = await web.client.post("/subscribe", data=data, headers=headers)
            assert response.status_code == 200, response.text
        languages = {
            address: (await web.subscriber(address)).language  # type: ignore[union-attr]
            for address in ("som@example.org", "dara@example.org", "jean@example.org")
        }
        assert languages == {
            "som@example.org": "th",
            "dara@example.org": "km",
            "jean@example.org": None,
        }
        nobody = await web.subscriber("nobody@example.org")
        assert nobody is not None and nobody.language is None


async def test_the_preferences_page_changes_the_language(
    multilingual: Path, database_url: str
) -> None:
    from syndicate import subscribers as service

    async for web in opened(on_database(multilingual, database_url)):
        som, _ = await service.add(web.store, "som@example.org", web.clock.now(), confirmed=True)
        path = web.link("preferences", som)
        page = await web.client.get(path)
        assert page.status_code == 200
        # Each language named in itself; the site's first chosen until they choose.
        assert '<option value="th" lang="th">ไทย</option>' in page.text
        assert '<option value="en" lang="en" selected>English</option>' in page.text
        token = CSRF_FIELD.search(page.text)
        assert token is not None
        form = {"csrf_token": html.unescape(token.group(1)), "name": "Som"}
        saved = await web.client.post(path, data={**form, "language": "th"})
        assert saved.status_code == 200
        assert '<option value="th" lang="th" selected>ไทย</option>' in saved.text
        found = await web.subscriber("som@example.org")
        assert found is not None and (found.language, found.name) == ("th", "Som")
        refused = await web.client.post(path, data={**form, "language": "fr"})
        assert refused.status_code == 400
        # Said in Thai now: the page follows the language they saved.
        thai = translator("th", multilingual.parent / "locales")
        assert thai.gettext("Please choose among the languages listed.") in refused.text
        assert "Please choose" not in refused.text
        kept = await web.client.post(path, data=form)  # no field: the language stays
        assert kept.status_code == 200
        found = await web.subscriber("som@example.org")
        assert found is not None and found.language == "th"


async def test_a_site_with_one_language_offers_no_choice(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syndicate import subscribers as service

    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)  # the web tests' links are signed with it
    async for web in opened(on_database(project / "config.toml", database_url)):
        ann, _ = await service.add(web.store, "ann@example.org", web.clock.now(), confirmed=True)
        page = await web.client.get(web.link("preferences", ann))
        assert page.status_code == 200 and 'name="language"' not in page.text
        assert 'name="other_languages"' not in page.text


# -- feeds per language ----------------------------------------------------------------------


def test_the_plan_has_a_feed_per_offered_language() -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from syndicate.models import PostKey
    from syndicate.publish.plan import make_plan

    now = datetime(2015, 12, 20, tzinfo=UTC)
    languages = {1: "th", 2: "th-TH", 3: "en-GB", 4: None, 5: "km", 6: "fr"}
    keys = [
        PostKey(i, "blog", (), now - timedelta(hours=i), now, f"h{i}", None, None, language)
        for i, language in languages.items()
    ]

    def plan(offered: list[str]):
        return make_plan(
            keys,
            site_title="Mekong Watch",
            site_description="",
            site_url="https://news.example/",
            feeds_url="https://news.example/feeds",
            timezone=ZoneInfo("UTC"),
            items=50,
            formats=("atom",),
            sources={"blog": ("Blog", None)},
            now=now,
            context="",
            languages=offered,
        )

    feeds = {feed.path: feed for feed in plan(["en", "th", "km", "my"]).feeds}
    # th-TH is in Thai's feed; no language and languages not offered count as the default's.
    assert feeds["lang/th"].post_ids == (1, 2)
    assert feeds["lang/en"].post_ids == (3, 4, 6)
    assert feeds["lang/km"].post_ids == (5,)
    assert feeds["lang/my"].post_ids == ()
    assert (feeds["lang/th"].language, feeds["lang/th"].title) == ("th", "Mekong Watch (ไทย)")
    assert feeds["index"].translations == (
        ("en", "lang/en"),
        ("th", "lang/th"),
        ("km", "lang/km"),
        ("my", "lang/my"),
    )
    assert feeds["index"].language is None
    # One language: no feed of it, it would be the site's feed again.
    assert not [path for path in (f.path for f in plan(["en"]).feeds) if path.startswith("lang/")]


def test_atom_entries_carry_xml_lang_and_the_feed_its_translations() -> None:
    from dataclasses import replace

    from lxml import etree
    from test_publish_formats import FISH, document

    from syndicate.publish.atom import render_atom

    thai = replace(FISH, language="th", title=THAI)
    doc = document(
        posts=(thai,),
        translations=(("en", "lang/en"), ("th", "lang/th")),
    )
    root = etree.fromstring(render_atom(doc))
    atom = "{http://www.w3.org/2005/Atom}"
    [entry] = root.findall(f"{atom}entry")
    assert entry.get("{http://www.w3.org/XML/1998/namespace}lang") == "th"
    alternates = {
        link.get("hreflang"): link.get("href")
        for link in root.findall(f"{atom}link")
        if link.get("rel") == "alternate" and link.get("type") == "application/atom+xml"
    }
    assert alternates == {
        "en": "https://news.riverside-commons.example/feeds/lang/en.atom",
        "th": "https://news.riverside-commons.example/feeds/lang/th.atom",
    }
    # A language feed does not list itself.
    own = render_atom(replace(doc, path="lang/th", language="th"))
    hreflangs = [link.get("hreflang") for link in etree.fromstring(own).findall(f"{atom}link")]
    assert "th" not in hreflangs and "en" in hreflangs


# -- lang on the pages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "page", "attribute"),
    [
        ("th", "en", ' lang="th"'),
        ("th-TH", "th", ""),  # the same language
        ("en-GB", "en", ""),
        (None, "en", ""),
        ("English", "en", ""),  # not a tag: nothing rather than a wrong attribute
        ('th" onmouseover="x', "en", ""),
        ("km", None, ' lang="km"'),
    ],
)
def test_lang_attr(language: str | None, page: str | None, attribute: str) -> None:
    from syndicate.templating import lang_attr

    assert str(lang_attr(language, page)) == attribute


async def test_a_thai_post_on_an_english_home_page_says_so(
    project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)  # the web tests' links are signed with it
    async for web in opened(on_database(project / "config.toml", database_url)):
        thai = normalise(
            RawEntry(id="th-1", link="https://th.example/1", title=THAI, summary=f"<p>{THAI}</p>"),
            source="riverside-news",
            now=web.clock.now(),
        )
        await web.store.upsert_posts("riverside-news", [thai], web.clock.now())
        page = await web.client.get("/")
        assert page.status_code == 200
        assert '<html lang="en">' in page.text
        assert f'<h3 lang="th"><a href="https://th.example/1">{THAI}</a></h3>' in page.text
        assert f'<p class="excerpt" lang="th">{THAI}</p>' in page.text
        assert page.text.count('lang="th"') == 2  # the English posts carry none


# -- headers in scripts without spaces --------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "name"),
    [
        (f"ข่าวสารประจำเดือนธันวาคม 2558: {THAI}", "สมชาย ใจดี"),
        (f"ព្រឹត្តិបត្រខែធ្នូ: {KHMER}", "សុខ ដារ៉ា"),
        (f"သတင်းလွှာ ဒီဇင်ဘာ: {BURMESE}", "အောင် ကို"),
        (f"ຂ່າວເດືອນທັນວາ: {LAO}", "ສົມພອນ"),
    ],
)
def test_subjects_and_names_in_these_scripts_read_back_identically(subject: str, name: str) -> None:
    # RFC 2047 encoded-words of whole characters (a Thai vowel sign or a Khmer subscript is
    # never cut from its consonant across two words), each line at most 76 characters.
    import email
    from email.header import decode_header, make_header
    from email.policy import default
    from email.utils import parseaddr

    from test_mail_message import build, factory, subscriber

    raw = build(factory(subject=subject), subscriber(name=name))
    message = email.message_from_bytes(raw, policy=default)
    assert str(message["Subject"]) == subject
    raw_to = next(value for key, value in message.raw_items() if key == "To")
    phrase, address = parseaddr(raw_to.replace("\r\n", "").replace("\n", ""))
    assert (str(make_header(decode_header(phrase))), address) == (name, "zoe@example.org")
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        assert line.isascii() and len(line) <= 998
        if b"=?utf-8?" in line:
            assert len(line) <= 76, line
        for encoding, word in re.findall(rb"=\?utf-8\?([bq])\?([^?]*)\?=", line):
            # Each word holds whole characters: it decodes as UTF-8 on its own.
            data = (
                base64.b64decode(word)
                if encoding == b"b"
                else quopri.decodestring(word.replace(b"_", b" "), header=True)
            )
            data.decode("utf-8")


def test_publishing_a_site_in_two_languages(project: Path) -> None:
    config = write(project, "[site]\n", '[site]\nlanguages = ["en", "th"]\n')
    done = CliRunner().invoke(cli, ["--config", str(config), "ingest"])
    assert done.exit_code == 0, done.output
    feeds = project / "feeds"
    assert {path.name for path in (feeds / "lang").iterdir()} == {
        f"{tag}.{ext}" for tag in ("en", "th") for ext in ("rss", "atom", "json")
    }
    page = (feeds / "index.html").read_text()
    # Each language named in itself, marked as such on the English page.
    assert '<strong lang="th">ไทย</strong>' in page and "<strong>English</strong>" in page
    assert 'href="lang/th.atom"' in page
