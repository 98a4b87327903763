"""The digest in each reader's language: the chrome from the catalogs in locales/, the
period's name and dates by Babel, the posts in their language (the others omitted, linked or
included as [digest] other_languages says), the text part wrapped at word boundaries.

The Thai and Burmese golden files are the repo's templates rendered with the repo's catalogs:
a change to either that alters a reader's copy shows up here (SYNDICATE_UPDATE_GOLDEN=1
rewrites them). The Thai and Burmese texts are ours, marked for review like the catalogs.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from icu4py.breakers import WordBreaker
from icu4py.locale import Locale

from syndicate.digest.context import (
    DigestContext,
    DigestPeriod,
    DigestPost,
    DigestSite,
    DigestSubscriber,
    DigestUrls,
)
from syndicate.digest.issue import NEUTRAL_SUBSCRIBER, IssueContent, group, preheader
from syndicate.digest.render import DigestRenderer
from syndicate.i18n import translator
from syndicate.mail.message import MessageFactory
from syndicate.models import Recipient

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"
LOCALES = REPO / "locales"
GOLDEN = Path(__file__).resolve().parent / "golden"
SUBJECT = "{{ site.title }}: {{ period.label }}"
SITE = "https://news.example.org"
FEEDS = f"{SITE}/feeds"
UNSUBSCRIBE = f"{SITE}/unsubscribe/tok"
PREFERENCES = f"{SITE}/preferences/tok"


def post(n: int, language: str | None, title: str, excerpt: str, **changes: object) -> DigestPost:
    base = DigestPost(
        title=title,
        url=f"{SITE}/2015/12/post-{n}/",
        excerpt=excerpt,
        image=None,
        author="",
        category="News",
        source="Riverside blog",
        date=datetime(2015, 12, 9, 3, 0, tzinfo=UTC),
        discussion_url=f"https://forum.example.org/t/{n}",
        reply_count=3,
        categories=("News",),
        language=language,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


ENGLISH = post(1, "en-GB", "Otters are back", "Otters were seen below the weir & the mill.")
UNKNOWN = post(2, None, "A post that says nothing of its language", "Short.")
THAI = post(
    3,
    "th",
    "เปิดศูนย์ให้คำปรึกษาแรงงานข้ามชาติแห่งใหม่ในจังหวัดสมุทรสาคร",
    "ศูนย์แห่งใหม่ให้คำปรึกษาด้านกฎหมายแรงงาน การต่อใบอนุญาตทำงาน และการแจ้งเหตุการค้ามนุษย์"
    " โดยมีล่ามภาษาเมียนมาและภาษากัมพูชาประจำทุกวัน ตั้งแต่เวลาแปดโมงเช้าถึงหกโมงเย็น"
    "ผู้ที่ต้องการความช่วยเหลือสามารถเดินทางมาที่ศูนย์ได้โดยไม่ต้องนัดหมายล่วงหน้า",
    category="Partners",
    categories=("Partners",),
    reply_count=1234,
)
BURMESE = post(
    4,
    "my",
    "ရွှေ့ပြောင်းအလုပ်သမားများအတွက် ဥပဒေအကြံပေးဌာနသစ် ဖွင့်လှစ်",
    "ဌာနသစ်တွင် အလုပ်သမားဥပဒေ၊ အလုပ်လုပ်ခွင့်သက်တမ်းတိုးခြင်းနှင့် လူကုန်ကူးမှုတိုင်ကြားခြင်းဆိုင်ရာ"
    " အကြံဉာဏ်များကို မြန်မာဘာသာဖြင့် နေ့စဉ် ပေးပါသည်။",
    category="Partners",
    categories=("Partners",),
)
POSTS = (ENGLISH, THAI, BURMESE, UNKNOWN)


def content(
    other_languages: str = "omit", languages: tuple[str, ...] = ("en", "th", "my")
) -> IssueContent:
    period = DigestPeriod(
        "2015-12",
        "December 2015",
        datetime(2015, 12, 1, tzinfo=UTC),
        datetime(2016, 1, 1, tzinfo=UTC),
    )
    whole = DigestContext(
        site=DigestSite("Riverside News", SITE, "News from the river", "en", "Asia/Bangkok"),
        period=period,
        groups=group(list(POSTS), "category"),
        posts=POSTS,
        urls=DigestUrls(
            view_in_browser=f"{FEEDS}/digest/2015-12.html",
            archive=f"{FEEDS}/archive/2015-12.html",
            feeds=f"{FEEDS}/index.rss",
        ),
        subscriber=NEUTRAL_SUBSCRIBER,
        more=2,
        preheader=preheader(list(POSTS), period),
    )
    return IssueContent(
        context=whole,
        post_ids=(1, 2, 3, 4),
        left_out=((), ()),
        group_by="category",
        languages=languages,
        other_languages=other_languages,
    )


def render(language: str, other_languages: str = "omit", name: str = "") -> tuple[str, str, str]:
    """(subject, html, text) of one reader's copy, as sending makes it."""
    words = translator(language, LOCALES)
    copy = content(other_languages).for_reader(frozenset(), words)
    rendered = DigestRenderer(TEMPLATES, SUBJECT, locales_dir=LOCALES).render(copy)
    html, text = rendered.personalise(
        DigestSubscriber.of(name, "reader@example.org", words), UNSUBSCRIBE, PREFERENCES
    )
    return rendered.subject, html, text


def check_golden(name: str, rendered: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SYNDICATE_UPDATE_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"{name} is missing: run with SYNDICATE_UPDATE_GOLDEN=1 once"
    assert rendered == path.read_text(encoding="utf-8"), (
        f"{name} differs; if intended, rerun with SYNDICATE_UPDATE_GOLDEN=1"
    )


@pytest.mark.parametrize("language", ["th", "my"])
def test_thai_and_burmese_digests_match_their_golden_files(language: str) -> None:
    subject, html, text = render(language, "link", name="สมชาย" if language == "th" else "မောင်မောင်")
    check_golden(f"digest-{language}-2015-12.html", html)
    check_golden(f"digest-{language}-2015-12.txt", f"Subject: {subject}\n\n{text}")


def test_a_thai_reader_gets_thai_chrome_dates_and_posts() -> None:
    subject, html, text = render("th", name="สมชาย")
    assert subject == "Riverside News: ธันวาคม 2015"
    assert '<html lang="th">' in html
    # The chrome's words, the greeting, the date (the site's zone: the 9th in Bangkok).
    for words in ("ยกเลิกการรับ", "สวัสดีคุณสมชาย", "9 ธันวาคม 2015", "อ่านต่อ"):
        assert words in html and words in text, words
    assert "1,234" in text  # the reply count, grouped as Thai writes numbers
    # Their posts: the Thai one; the English and the one of no language are the default's.
    assert THAI.title in html
    for other in (ENGLISH, BURMESE, UNKNOWN):
        assert other.title not in html and other.title not in text
    # No English chrome left (the catalog is complete; test_catalogs checks every string).
    for english in ("Unsubscribe", "Read more", "View in your browser", "Hello"):
        assert english not in html and english not in text, english


def test_an_english_reader_gets_the_english_posts_and_none_of_the_others() -> None:
    subject, html, text = render("en", name="Ann")
    assert subject == "Riverside News: December 2015"
    assert '<html lang="en">' in html and "Hello Ann," in text and "9 December 2015" in text
    assert ENGLISH.title in html and UNKNOWN.title in html
    assert THAI.title not in html and BURMESE.title not in html
    assert "In other languages" not in html


def test_link_lists_the_other_languages_posts_by_title_in_their_language() -> None:
    _, html, text = render("en", "link")
    assert "In other languages" in html and "In other languages" in text
    assert re.search(f'<li lang="th"[^>]*><a href="{THAI.url}"[^>]*>{THAI.title}</a>', html)
    assert "(ไทย)" in html and "(မြန်မာ)" in text  # each named in itself
    # Listed, not in full: no excerpt.
    assert THAI.excerpt[:20] not in html


def test_include_gives_every_reader_every_post() -> None:
    for language in ("en", "th"):
        _, html, _ = render(language, "include")
        assert all(p.title.replace("&", "&amp;") in html for p in POSTS)


def test_a_site_of_one_language_sends_every_post_to_every_reader() -> None:
    words = translator("en", LOCALES)
    copy = content("omit", languages=("en",)).for_reader(frozenset(), words)
    assert copy.posts == POSTS and copy.other_posts == ()


def test_the_preheader_period_and_groups_are_in_the_readers_language() -> None:
    copy = content().for_reader(frozenset(), translator("th", LOCALES))
    assert copy.period.label == "ธันวาคม 2015" and copy.language == "th"
    assert copy.preheader.startswith("1 โพสต์จาก ธันวาคม 2015: ") or "ธันวาคม 2015" in copy.preheader
    burmese = content().for_reader(frozenset(), translator("my", LOCALES))
    assert burmese.period.label == "2015 ဒီဇင်ဘာ"
    # The web copy a Thai reader is sent to is the Thai one.
    assert copy.urls.view_in_browser == f"{FEEDS}/digest/2015-12.th.html"


def test_the_thai_text_part_breaks_lines_only_between_words() -> None:
    _, _, text = render("th")
    # The excerpt's lines: the ones that are pieces of it.
    excerpt_lines = [line for line in text.splitlines() if line and line in THAI.excerpt]
    assert len(excerpt_lines) >= 2, text  # the excerpt was long enough to be wrapped
    joined = "".join(excerpt_lines)
    assert joined.replace(" ", "") in THAI.excerpt.replace(" ", "")
    # Each line ends where ICU's Thai dictionary puts a word boundary in the excerpt.
    boundaries = {end for _, end in WordBreaker(THAI.excerpt, Locale("th")).segments()}
    position = 0
    for line in excerpt_lines[:-1]:
        position = THAI.excerpt.index(line, position) + len(line)
        assert position in boundaries or THAI.excerpt[position : position + 1] == " ", line
    # At most 72 columns: Thai vowel and tone marks above and below take none.
    assert all(
        sum(1 for c in line if unicodedata.category(c) != "Mn") <= 72 for line in excerpt_lines
    )


def test_a_thai_subject_is_encoded_and_reads_back_the_same() -> None:
    subject, html, text = render("th", name="สมชาย")
    factory = MessageFactory(
        site_title="Riverside News",
        site_url=SITE,
        sender="News <news@example.org>",
        subject="Riverside News: December 2015",
        archive_url=f"{FEEDS}/archive/index.html",
    )
    reader = Recipient(
        7, "somchai@example.org", "สมชาย\r\nBcc: eve@example.org", "active", (), "th"
    )
    raw = factory.build(
        reader, html, text, UNSUBSCRIBE, "<digest-1-7@news.example.org>", subject=subject
    )
    assert all(ord(c) < 128 for c in raw.split(b"\r\n\r\n")[0].decode("ascii"))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(message["Subject"]) == "Riverside News: ธันวาคม 2015"
    assert message["Bcc"] is None  # the name's CR/LF did not start a header
    assert message["To"].addresses[0].display_name == "สมชาย Bcc: eve@example.org"
    # The issue's own subject still goes to the readers of the default language.
    english = factory.build(reader, html, text, UNSUBSCRIBE, "<digest-1-8@news.example.org>")
    parsed = email.message_from_bytes(english, policy=email.policy.default)
    assert str(parsed["Subject"]) == "Riverside News: December 2015"


def test_an_unknown_or_hostile_language_falls_back_to_the_default() -> None:
    from syndicate.digest.build import reader_words

    class Site:
        offered_languages = ("en", "th")

    class Settings:
        site = Site()
        locales_dir = LOCALES

    for asked in ("de", "", "th\r\nX-Evil: 1", "<script>", "x" * 500):
        assert reader_words(Settings(), asked).language == "en", asked  # type: ignore[arg-type]
    assert reader_words(Settings(), "th-TH").language == "th"  # type: ignore[arg-type]
    assert re.fullmatch(r"[a-z]{2}", reader_words(Settings(), None).language)  # type: ignore[arg-type]


def test_a_preview_for_no_one_greets_in_the_copys_language() -> None:
    words = translator("th", LOCALES)
    copy = content().for_reader(frozenset(), words)
    rendered = DigestRenderer(TEMPLATES, SUBJECT, locales_dir=LOCALES).render(copy)
    assert "\nสวัสดี\n" in rendered.text_copy() and "Hello" not in rendered.text_copy()


def test_a_readers_own_choice_of_other_languages_wins_over_the_sites() -> None:
    words = translator("th", LOCALES)
    site_omits = content("omit")
    assert site_omits.for_reader(frozenset(), words).posts == (THAI,)
    everything = site_omits.for_reader(frozenset(), words, "include")
    assert set(everything.posts) == set(POSTS) and everything.other_posts == ()
    listed = site_omits.for_reader(frozenset(), words, "link")
    assert listed.posts == (THAI,) and set(listed.other_posts) == {ENGLISH, BURMESE, UNKNOWN}
    # No choice, or one that is not a choice: the site's.
    for choice in (None, "", "everything"):
        assert site_omits.for_reader(frozenset(), words, choice).posts == (THAI,)


def test_each_language_reads_its_own_intro_else_the_default_one() -> None:
    issue = replace(
        content(),
        context=replace(content().context, intro_html="<p>A busy month.</p>"),
        intros={"th": "<p>เดือนที่วุ่นวาย</p>"},
    )
    thai = issue.for_reader(frozenset(), translator("th", LOCALES))
    english = issue.for_reader(frozenset(), translator("en", LOCALES))
    burmese = issue.for_reader(frozenset(), translator("my", LOCALES))
    assert thai.intro_html == "<p>เดือนที่วุ่นวาย</p>"
    assert english.intro_html == burmese.intro_html == "<p>A busy month.</p>"
    # Kept with the issue, so a copy rendered days later has the same words.
    kept = IssueContent.from_json(issue.to_json(), issue.post_ids)
    assert kept.intros == {"th": "<p>เดือนที่วุ่นวาย</p>"}


def test_a_weeks_name_is_in_the_readers_language() -> None:
    from zoneinfo import ZoneInfo

    from syndicate.digest.period import localised, week

    period = week("2015-W49", ZoneInfo("Asia/Bangkok"))
    assert localised(period, translator("en", LOCALES)).label == "Week 49, 2015"
    assert localised(period, translator("th", LOCALES)).label == "สัปดาห์ที่ 49 ปี 2015"
    # The period itself is the same week whatever its name.
    assert localised(period, translator("my", LOCALES)).start == period.start
