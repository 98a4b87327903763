"""The text part's `wrap` for scripts written without spaces (issue 20, item 4): Thai, Khmer,
Lao and Burmese break between words, nothing breaks inside a grapheme cluster, no line is
over RFC 5322's 998 bytes, and English wraps byte for byte as textwrap did.

Every wrapped result is checked against ICU itself (icu4py's breakers, read through their
str segments, not the offsets syndicate.linebreak converts): where each output line starts
in the input, that nothing but spaces at a break went missing, that each break is a UAX #14
line-break opportunity and a grapheme cluster boundary, and that lines are as full as the
width allows.
"""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icu4py.breakers import CharacterBreaker, LineBreaker

from syndicate.config import load_settings
from syndicate.digest.build import NEUTRAL_SUBSCRIBER, group, period_of, renderer_for
from syndicate.digest.context import DigestContext, DigestPost, DigestSite, DigestUrls
from syndicate.linebreak import MAX_LINE_BYTES, display_width, wrap_line
from syndicate.mail.wire import fits_as_is
from syndicate.plaintext import wrap

REPO = Path(__file__).resolve().parent.parent

THAI = (
    "เทศบาลนครเชียงใหม่ประกาศว่าจะปิดถนนรอบคูเมืองในวันอาทิตย์นี้ตั้งแต่หกโมงเช้าถึงเที่ยง "
    "เพื่อจัดงานเดินวิ่งการกุศล ผู้ที่สนใจสามารถลงทะเบียนได้ที่สำนักงานเขตทุกแห่งจนถึงวันศุกร์ "
    "และรายได้ทั้งหมดจะมอบให้โรงพยาบาลเด็กในจังหวัด"
)
KHMER = (
    "ក្រុមអ្នកស្ម័គ្រចិត្តបានប្រមូលសំរាមនៅតាមមាត់ទន្លេមេគង្គកាលពីថ្ងៃសៅរ៍ "
    "ហើយពួកគេគ្រោងនឹងដាំដើមឈើចំនួនពីររយដើមនៅខែក្រោយ។ "
    "អាជ្ញាធរក្រុងភ្នំពេញបាននិយាយថា គម្រោងនេះនឹងជួយការពារច្រាំងទន្លេពីការហូរច្រោះ។"
)
LAO = (
    "ອາສາສະໝັກຫຼາຍກວ່າສອງຮ້ອຍຄົນໄດ້ມາຮ່ວມກັນທຳຄວາມສະອາດແຄມແມ່ນ້ຳຂອງໃນວັນເສົາທີ່ຜ່ານມາ "
    "ແລະ ປູກຕົ້ນໄມ້ໃໝ່ຕາມແຄມຝັ່ງ. "
    "ເຈົ້າໜ້າທີ່ນະຄອນຫຼວງວຽງຈັນກ່າວວ່າໂຄງການນີ້ຈະຊ່ວຍຫຼຸດຜ່ອນການເຊາະເຈື່ອນຂອງດິນ."
)
BURMESE = (
    "ပြီးခဲ့သည့်စနေနေ့တွင် စေတနာ့ဝန်ထမ်းနှစ်ရာကျော်သည် ဧရာဝတီမြစ်ကမ်းတစ်လျှောက် "
    "အမှိုက်များကို ရှင်းလင်းခဲ့ကြပြီး သစ်ပင်အသစ်များ စိုက်ပျိုးခဲ့ကြသည်။ "
    "မြို့တော်စည်ပင်သာယာရေးအဖွဲ့က ဤစီမံကိန်းသည် မြေတိုက်စားမှုကို လျှော့ချပေးမည်ဟု ပြောကြားခဲ့သည်။"
)
PARAGRAPHS = {"thai": THAI, "khmer": KHMER, "lao": LAO, "burmese": BURMESE}
URL = "https://news.example.org/2015/12/towpath-volunteers/"
ENGLISH = (
    "A long excerpt that has to be wrapped in the text part, because text email is read at 72 "
    "columns or so, and a link like https://news.example.org/a/very/long/path/that/must/not/be"
    "/broken/in/the/middle stays whole. Well-known hyphenated words stay whole too;  two "
    "spaces\tand a tab, and 'quotes' (brackets) - dashes - all as textwrap left them."
)


# --- the oracle: ICU read directly --------------------------------------------------------


def ends(breaker: type[LineBreaker] | type[CharacterBreaker], text: str) -> set[int]:
    """Segment ends as str indices, from the segments' own lengths."""
    return set(accumulate(map(len, breaker(text, "und"))))


def opportunities(text: str) -> set[int]:
    return ends(LineBreaker, text) - {len(text)}


def clusters(text: str) -> set[int]:
    return ends(CharacterBreaker, text) | {0}


def locate(source: str, lines: list[str]) -> list[int]:
    """Where each output line starts in `source`, asserting that the lines are `source` in
    order with nothing lost or added but spaces at a break (and at either end)."""
    starts = []
    at = 0
    for n, line in enumerate(lines):
        if line:  # a break may swallow spaces (and indentation too wide), nothing else
            while not source.startswith(line, at) and source[at : at + 1] == " ":
                at += 1
        assert source.startswith(line, at), (n, line, source[at : at + len(line) + 10])
        starts.append(at)
        at += len(line)
    assert source[at:].strip(" ") == "", f"lost at the end: {source[at:]!r}"
    return starts


def check_wrapped(source: str, lines: list[str], width: int, *, strict: bool = True) -> None:
    """The properties every wrapped line holds. `strict`: `source` has no links or other
    chunks kept whole on purpose, so an over-wide line has no line-break opportunity at all
    and every line is as full as the next word allows."""
    starts = locate(source, lines)
    breaks = starts[1:]
    allowed = opportunities(source)
    bounds = clusters(source)
    for n, line in enumerate(lines):
        assert utf8(line) <= MAX_LINE_BYTES, n
        assert line == "" or line.strip(" "), f"blank line {n} made by a break"
    for at, line in zip(breaks, lines, strict=False):
        assert at in bounds, f"break inside a grapheme cluster at {at}: {line!r}"
        # Else a cut for the byte limit: the next cluster would not have fitted.
        next_cluster = source[at : min(bound for bound in bounds if bound > at)]
        forced = utf8(line) + utf8(next_cluster) > MAX_LINE_BYTES
        assert at in allowed or forced, f"break at {at} is no UAX #14 opportunity: {line!r}"
    if not strict:
        return
    for n, (start, line) in enumerate(zip(starts, lines, strict=True)):
        inside = {at for at in allowed & bounds if start < at < start + len(line.rstrip(" "))}
        if display_width(line) > width:
            assert not inside, f"line {n} is {display_width(line)} columns but could break"
        if n + 1 < len(lines):
            # The next line's first word (to the next opportunity) did not fit on this one.
            begin = starts[n + 1]
            word_end = min(at for at in (allowed & bounds) | {len(source)} if at > begin)
            word = source[begin:word_end].rstrip(" ")
            joined = source[start:begin] + word
            assert display_width(joined) > width, f"line {n} could have taken {word!r}"


def utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def old_wrap(text: str, width: int = 72) -> str:
    """`wrap` as it was before issue 20: textwrap, line by line."""
    return "\n".join(
        textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False)
        for line in text.splitlines()
    )


# --- the four scripts ---------------------------------------------------------------------


@pytest.mark.parametrize("width", [72, 20])
@pytest.mark.parametrize("script", sorted(PARAGRAPHS))
def test_paragraphs_break_between_words(script: str, width: int) -> None:
    source = PARAGRAPHS[script]
    out = wrap(source, width)
    lines = out.split("\n")
    check_wrapped(source, lines, width)
    # Really wrapped, not left whole: at least as many lines as the columns need.
    assert len(lines) >= max(2, -(-display_width(source) // width)), out
    assert max(map(display_width, lines)) <= width


def test_thai_words_stay_whole_and_nothing_is_added() -> None:
    lines = wrap(THAI, 20).split("\n")
    # No space in the source where most breaks are: the lines join back to it exactly.
    assert "".join(lines).replace(" ", "") == THAI.replace(" ", "")
    # Each of ICU's words ("เชียงใหม่", "สำนักงาน", "จังหวัด"...) is whole on some line.
    words = [word.strip(" ") for word in LineBreaker(THAI, "th")]
    assert {"เชียงใหม่", "สำนักงาน", "ทะเบียน", "จังหวัด"} <= set(words)
    for word in words:
        assert any(word in line for line in lines), word
    # A Thai vowel or tone mark never starts a line (it would be cut from its consonant).
    assert not [line for line in lines if re.match("[\u0e31\u0e33-\u0e3a\u0e47-\u0e4e]", line)]


@pytest.mark.parametrize(
    "source",
    [
        "ภาษาไทย \u0e48ไทยภาษา",  # a stray tone mark after a space: one cluster with it
        "word \u0301word and more",  # likewise a combining accent
        "ไทย🏽ไทย ภาษา",  # a skin tone modifier extends the Thai letter's cluster
        "日本🏽語の文章",
    ],
)
def test_no_break_where_icu_would_split_a_grapheme_cluster(source: str) -> None:
    # UAX #14 and UAX #29 disagree here: ICU's line breaker allows a break that is inside
    # a grapheme cluster. wrap must not take it, at any width.
    inside = opportunities(source) - clusters(source)
    assert inside
    for width in range(1, display_width(source) + 1):
        lines = wrap(source, width).split("\n")
        check_wrapped(source, lines, width, strict=False)
        assert not inside & set(locate(source, lines)), width


@pytest.mark.parametrize("width", [72, 20, 7])
def test_emoji_among_thai_count_in_python_characters_not_utf16(width: int) -> None:
    # ICU counts UTF-16 code units: an emoji is two, a ZWJ family eight. A wrong offset
    # would cut a word or a family, or lose a character.
    source = "ฉันรัก😀ภาษาไทย👨\u200d👩\u200d👧มากที่สุด 🇹🇭 ครับ " * 6
    lines = wrap(source, width).split("\n")
    check_wrapped(source, lines, width)
    assert sum(line.count("👨\u200d👩\u200d👧") for line in lines) == 6


def test_display_width_counts_columns_not_code_points() -> None:
    assert display_width("น้ำ") == 2  # น, a tone mark above (0), ำ (1)
    assert display_width("ที่") == 1  # two marks above a consonant
    assert display_width("ក្រុម") == 3  # Khmer coeng and subscript ro take no column
    assert display_width("日本語") == 6
    assert display_width("e\u0301") == 1
    assert display_width("a\u200bb") == 2  # zero width space
    assert display_width("한") == 2 and display_width("\u1112\u1161\u11ab") == 2  # jamo
    assert display_width("plain") == 5


def test_east_asian_wide_text_wraps_at_double_columns() -> None:
    source = "日本語の文章は、スペースなしで書かれます。" * 3
    lines = wrap(source, 20).split("\n")
    check_wrapped(source, lines, 20)
    assert all(display_width(line) <= 20 for line in lines)
    assert all(len(line) <= 10 for line in lines)


# --- the 998-byte limit -------------------------------------------------------------------


def test_thai_with_no_break_opportunity_is_cut_between_clusters_under_998_bytes() -> None:
    # Word joiners forbid every line break; "น้ำ" is one cluster of 9 bytes, so 998 bytes
    # cannot be filled exactly and a cut by bytes alone would land inside a cluster.
    source = "\u2060".join(["น้ำ", "ที่", "ก"] * 700)[:5000]
    assert len(source) == 5000 and not opportunities(source)
    lines = wrap(source).split("\n")
    assert "".join(lines) == source
    assert len(lines) > 1
    check_wrapped(source, lines, 72, strict=False)
    bounds = clusters(source)
    for start, line in zip(locate(source, lines), lines, strict=True):
        assert start in bounds and start + len(line) in bounds
        size = len(line.encode())
        assert size <= MAX_LINE_BYTES
        if start + len(line) < len(source):  # full: the next cluster would not have fitted
            next_cluster = min(at for at in bounds if at > start + len(line))
            assert size + len(source[start + len(line) : next_cluster].encode()) > 998


def test_a_3000_character_url_is_cut_to_998_bytes() -> None:
    url = "https://news.example.org/" + "/".join(f"segment-{n:04d}" for n in range(300))
    url = url[:3000]
    source = f"Read it at {url} today."
    lines = wrap(source).split("\n")
    assert lines[0] == "Read it at"
    assert "".join(lines[1:-1]) == url and lines[-1] == "today."
    assert [len(line) for line in lines[1:-1]] == [998, 998, 998, 6]


def test_a_link_under_998_bytes_stays_whole_even_with_a_thai_path() -> None:
    iri = "https://th.wikipedia.org/wiki/ภาษาไทย_(" + "ก" * 40 + ")"
    source = f"{THAI} อ่านต่อที่ {iri} และ {URL}"
    lines = wrap(source, 20).split("\n")
    assert iri in lines and URL in lines
    check_wrapped(source, lines, 20, strict=False)


def test_a_cluster_over_998_bytes_alone_is_cut_at_code_points() -> None:
    zalgo = "a" + "\u0301" * 600  # 1,201 bytes of one grapheme cluster
    lines = wrap(f"ok {zalgo} ok").split("\n")
    assert lines[0] == "ok" and lines[-1] == "ok"
    assert "".join(lines[1:-1]) == zalgo
    assert [len(line.encode()) for line in lines[1:-1]] == [997, 204]


def test_wider_than_998_bytes_breaks_at_opportunities_first() -> None:
    source = " ".join([THAI] * 20)
    lines = wrap(source, 5000).split("\n")
    check_wrapped(source, lines, 5000, strict=False)
    assert len(lines) > 1
    assert all(len(line.encode()) <= MAX_LINE_BYTES for line in lines)
    words = " ".join(["word"] * 199)  # 995 bytes
    assert wrap("word " * 1000, 5000).split("\n") == [words] * 5 + ["word word word word word"]


@pytest.mark.parametrize(
    "source",
    [
        " ".join([THAI] * 300),  # 60,000 characters of real words
        ("https://x.example/" + "ก" * 50 + " ") * 1000,  # links with Thai paths
        "ก\u2060" * 30000,  # no break anywhere
        "a" + "\u0301" * 30000,  # one cluster of 60,001 bytes
        "👨\u200d👩\u200d👧" * 10000,
    ],
    ids=["thai", "links", "joined", "zalgo", "families"],
)
def test_hostile_sizes_stay_linear_and_under_998_bytes(source: str) -> None:
    lines = wrap(source).split("\n")  # pytest's timeout stops a quadratic path
    assert max(utf8(line) for line in lines) <= MAX_LINE_BYTES
    assert "".join(lines).replace(" ", "") == source.replace(" ", "")


# --- English and mixed text ---------------------------------------------------------------


@pytest.mark.parametrize("width", [72, 40, 20, 3, 1])
def test_english_is_byte_for_byte_what_textwrap_made(width: int) -> None:
    text = f"{ENGLISH}\n\n  Indented line, {URL} and more.\n   \nlast"
    assert wrap(text, width) == old_wrap(text, width)


def test_mixed_english_and_thai_breaks_english_at_spaces_only() -> None:
    source = (
        "The Loy Krathong festival (ลอยกระทง) takes place on the full moon of the twelfth "
        "month: คนไทยจะนำกระทงที่ทำจากใบตองไปลอยในแม่น้ำเพื่อขอขมาพระแม่คงคา, "
        f"and well-known photographs show it, see {URL} for the programme."
    )
    lines = wrap(source, 30).split("\n")
    check_wrapped(source, lines, 30, strict=False)
    english_words = set(re.findall(r"[A-Za-z][\w'-]*[\w]", source))
    for line in lines:
        for word in re.findall(r"[A-Za-z][\w'-]*[\w]", line):
            assert word in english_words, f"{word!r} is part of a word"
    assert URL in lines and "well-known" in " ".join(lines)
    assert all(display_width(line) <= 30 for line in lines if URL not in line)


def test_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match="invalid width"):
        wrap("ภาษาไทย", 0)
    with pytest.raises(ValueError, match="invalid width"):
        wrap("plain", 0)


def test_odd_characters_pass_through() -> None:
    assert wrap("ไทย\x00ไทย") == "ไทย\x00ไทย"
    # A lone surrogate cannot be sent, but wrapping it neither fails nor loses it.
    assert wrap("ไทย\ud800" * 40, 20).replace("\n", "") == "ไทย\ud800" * 40
    assert wrap("ไทย\tไทย") == "ไทย     ไทย"  # tabs expand as textwrap's do
    assert wrap("ไทย   \r\nลาว  ") == "ไทย\nลาว"  # trailing spaces dropped as textwrap's
    assert wrap_line("", 5) == [""] and wrap("\n\n") == "\n"


# --- properties over random text ----------------------------------------------------------

PIECES = [
    "ภาษา",
    "ไทย",
    "น้ำ",
    "ที่",
    "กระทง",
    "ក្រុម",
    "ស្ម័គ្រ",
    "ພາສາ",
    "ເຈົ້າ",
    "မြန်မာ",
    "ကျွန်ုပ်",
    "日本語",
    "한국어",
    "word",
    "well-known",
    URL,
    "https://th.wikipedia.org/wiki/ภาษาไทย",
    "👨\u200d👩\u200d👧",
    "👍🏽",
    "🏽",  # a skin tone modifier after anything: ICU may break before it, UAX #29 not
    "🏳️\u200d🌈",
    "e\u0301",
    "\u0e48",  # a Thai tone mark with nothing under it
    "\u17d2",  # a Khmer coeng
    "\u200d",
    "\u2060",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "-",
    "/",
    "。",
    "(",
    ")",
]
texts = st.lists(
    st.one_of(
        st.sampled_from(PIECES),
        st.text(
            st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Zs")),
            max_size=6,
        ),
    ),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, width=st.integers(min_value=1, max_value=80))
def test_random_text_keeps_every_property(text: str, width: int) -> None:
    out = wrap(text, width)
    assert out == "\n".join(wrap(line, width) for line in text.splitlines())
    for line in text.splitlines():
        lines = wrap_line(line, width)
        if line.isascii():
            assert "\n".join(lines) == textwrap.fill(
                line, width, break_long_words=False, break_on_hyphens=False
            )
        source = line.expandtabs()
        check_wrapped(source, lines, width, strict=False)
        if not line.isascii():
            # A line over the width holds no break after a space (spaced text wraps as it did).
            for start, piece in zip(locate(source, lines), lines, strict=True):
                if display_width(piece) > width:
                    text_end = start + len(piece.rstrip(" "))
                    after_space = {
                        at
                        for at in opportunities(source) & clusters(source)
                        if start < at < text_end and source[at - 1] == " "
                    }
                    assert not after_space, (piece, after_space)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    word=st.sampled_from(["น้ำ", "ក្រុម", "👨\u200d👩\u200d👧", "ကျွန်ုပ်", "e\u0301", "a"]),
    count=st.integers(min_value=100, max_value=700),
    joiner=st.sampled_from(["", "\u2060"]),
)
def test_long_unbreakable_runs_never_pass_998_bytes(word: str, count: int, joiner: str) -> None:
    source = joiner.join([word] * count)
    lines = wrap(source, 72).split("\n")
    check_wrapped(source, lines, 72, strict=False)
    assert all(len(line.encode()) <= MAX_LINE_BYTES for line in lines)


# --- the digest -----------------------------------------------------------------------------


def test_digest_text_part_with_a_thai_excerpt_goes_as_it_is() -> None:
    config = load_settings(REPO / "config.toml")
    site = config.site
    period = period_of(config, "2015-12")
    # A paragraph whose first phrase, with no space in it, is about 1,300 bytes.
    excerpt = THAI.replace(" ", "") * 2 + " " + THAI
    assert not fits_as_is(old_wrap(excerpt).encode())  # what the old wrap sent as QP
    posts = [
        DigestPost(
            title="เดินวิ่งการกุศลรอบคูเมือง",
            url=f"{site.url}/2015/12/charity-run/",
            excerpt=excerpt,
            image=None,
            author="สมชาย ใจดี",
            category="ข่าว",
            source="Riverside News",
            date=datetime(2015, 12, 9, 3, tzinfo=UTC),
            discussion_url=None,
            reply_count=None,
            categories=("ข่าว",),
        )
    ]
    base = f"{site.url}/feeds"
    context = DigestContext(
        site=DigestSite(site.title, site.url, site.description, "th", site.timezone),
        period=period,
        groups=group(posts, "category"),
        posts=tuple(posts),
        urls=DigestUrls(
            view_in_browser=f"{base}/digest/{period.key}.html",
            archive=f"{base}/archive/{period.key}.html",
            feeds=f"{base}/index.rss",
        ),
        subscriber=NEUTRAL_SUBSCRIBER,
        intro_html=f"<p>{LAO}</p><p>{KHMER}</p>",
        more=0,
        preheader="1 post",
    )
    rendered = renderer_for(config).render(context)
    _, text = rendered.personalise(
        NEUTRAL_SUBSCRIBER, f"{site.url}/unsubscribe/t", f"{site.url}/preferences/t"
    )
    assert fits_as_is(text.encode())  # 7bit/8bit, no quoted-printable
    lines = text.splitlines()
    assert max(len(line.encode()) for line in lines) <= MAX_LINE_BYTES
    # The excerpt's lines, found in the text part, break where ICU allows.
    first = next(n for n, line in enumerate(lines) if excerpt.startswith(line) and line)
    block = []
    for line in lines[first:]:
        if not line:
            break
        block.append(line)
    assert len(block) >= display_width(excerpt) // 72
    check_wrapped(excerpt, block, 72)
    assert all(display_width(line) <= 72 for line in block)
    for paragraph in (LAO, KHMER):  # the intro, through |plaintext|wrap
        assert paragraph.replace(" ", "") in "".join(lines).replace(" ", "")
