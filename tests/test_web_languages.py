"""Each page in one language (syndicate/web/language.py): `?lang=` (the visible switch) and the
cookie it sets, a subscriber's stored language on signed-link pages, Accept-Language, the
site's default; the published pages in each language (archive/2015-12.th.html) chosen by the
web app; Vary, the home page cache and ETags per language; the switch and hreflang links;
hostile `lang=` values, cookies and headers ignored.

The site is the bundled config offering ["en", "th"], ingested and published into a real
SQLite file, with a small Thai catalog this test writes into the config dir's locales/
(tests never touch the repository's catalogs). The web app runs in process (httpx over
ASGI); the browser test is tests/test_languages_browser.py.
"""

from __future__ import annotations

import asyncio
import html
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import english_only
from test_web_subscription import CSRF_FIELD
from webclient import REPO, WEB_NOW, prepare_site, web_client

from syndicate import subscribers
from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.store import Store
from syndicate.tokens import Tokens
from syndicate.web.app import create_app
from syndicate.web.language import (
    MAX_ACCEPT_LANGUAGE,
    PageLanguage,
    negotiate,
    with_language_headers,
)

SECRET = "web-languages-secret-" * 3
SITE = "http://testserver"

# A few of the chrome's words in Thai: enough to see every kind of string come out Thai
# (a template's _(), a {% trans %} with a plural, a route's message, a published title).
THAI = {
    "Latest posts": "โพสต์ล่าสุด",
    "Archive": "คลังบทความ",
    "Archive for %(month)s": "คลังบทความเดือน %(month)s",
    "Language": "ภาษา",
    "Subscribe": "สมัครรับข่าวสาร",
    "Read more": "อ่านต่อ",
    "Page not found": "ไม่พบหน้านี้",
    "There is no page at this address.": "ไม่มีหน้าที่ที่อยู่นี้",
    "Your subscription": "การสมัครของคุณ",
    "Save preferences": "บันทึกการตั้งค่า",
    "Check your email": "โปรดตรวจอีเมลของคุณ",
    "Feeds": "ฟีด",
    "The whole site": "ทั้งเว็บไซต์",
    "Follow %(site)s:": "ติดตาม %(site)s:",
}
THAI_PLURALS = {("%(count)s post", "%(count)s posts"): "%(count)s โพสต์"}


def thai_catalog(locales: Path) -> Path:
    """locales/th/LC_MESSAGES/syndicate.po with THAI and THAI_PLURALS."""
    folder = locales / "th" / "LC_MESSAGES"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        'msgid ""',
        'msgstr ""',
        '"Content-Type: text/plain; charset=UTF-8\\n"',
        '"Language: th\\n"',
        '"Plural-Forms: nplurals=1; plural=0;\\n"',
        "",
    ]
    for english, thai in THAI.items():
        lines += [f'msgid "{english}"', f'msgstr "{thai}"', ""]
    for (singular, plural), thai in THAI_PLURALS.items():
        lines += [f'msgid "{singular}"', f'msgid_plural "{plural}"', f'msgstr[0] "{thai}"', ""]
    path = folder / "syndicate.po"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def two_languages(folder: Path) -> None:
    """The bundled project in `folder`, offering English and Thai, with the Thai catalog."""
    shutil.copy(REPO / "config.toml", folder / "config.toml")
    for name in ("examples", "templates"):
        shutil.copytree(REPO / name, folder / name)
    config = folder / "config.toml"
    english_only(config)  # the bundled config's own four languages and Thai feed left out
    config.write_text(
        config.read_text().replace("[site]\n", '[site]\nlanguages = ["en", "th"]\n', 1)
    )
    thai_catalog(folder / "locales")


@pytest.fixture(scope="module")
def bilingual_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ingested and published once for the module; each test gets a copy."""
    folder = tmp_path_factory.mktemp("bilingual")
    two_languages(folder)

    async def prepare() -> None:
        _, store = await prepare_site(folder)
        await store.close()

    asyncio.run(prepare())
    return folder


@dataclass
class Site:
    client: httpx.AsyncClient
    settings: Settings
    store: Store
    tokens: Tokens

    async def get(self, path: str, **headers: str) -> httpx.Response:
        return await self.client.get(path, headers=headers)


@pytest.fixture
async def site(
    bilingual_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Site]:
    monkeypatch.setenv("SYNDICATE_SECRET", SECRET)
    project = tmp_path / "site"
    shutil.copytree(bilingual_site, project, symlinks=True)
    settings = load_settings(project / "config.toml")
    store = await Store.open(settings.database_url)
    clock = FrozenClock(WEB_NOW)
    try:
        app = create_app(settings, store=store, clock=clock)
        async with web_client(app, base_url=SITE) as client:
            yield Site(client, settings, store, Tokens(SECRET, clock))
    finally:
        await store.close()


def scope(
    query: bytes = b"", cookie: str | None = None, accept: str | None = None
) -> dict[str, object]:
    headers = []
    if cookie is not None:
        headers.append((b"cookie", cookie.encode("latin-1")))
    if accept is not None:
        headers.append((b"accept-language", accept.encode("latin-1")))
    return {"type": "http", "query_string": query, "headers": headers}


OFFERED = ["en", "th", "km"]


# -- the order ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "stored", "cookie", "accept", "chosen"),
    [
        (b"lang=km", "th", "lang=en", "th", ("km", "query")),
        (b"", "th", "lang=km", "en", ("th", "subscriber")),
        (b"", None, "lang=km", "th", ("km", "cookie")),
        (b"", None, None, "th-TH,th;q=0.9,en;q=0.5", ("th", "header")),
        (b"", None, None, "fr-FR,de;q=0.5", ("en", "default")),
        (b"", None, None, None, ("en", "default")),
        # Names not offered fall through to the next rule, whatever case or form.
        (b"lang=TH", None, None, None, ("th", "query")),
        (b"lang=fr", "de", "lang=pt", "km", ("km", "header")),
        (b"a=1&lang=km&lang=th", None, None, None, ("km", "query")),
    ],
)
def test_the_order_of_the_rules(
    query: bytes,
    stored: str | None,
    cookie: str | None,
    accept: str | None,
    chosen: tuple[str, str],
) -> None:
    found = negotiate(scope(query, cookie, accept), OFFERED, stored)
    assert (found.tag, found.source) == chosen
    assert found.offered == tuple(OFFERED)


@pytest.mark.parametrize(
    "query",
    [
        b"lang=%3Cscript%3Ealert(1)%3C/script%3E",
        b"lang=th%0D%0ASet-Cookie:%20x=1",
        b"lang=th\r\nX: y",
        b"lang=" + b"t" * 5000,
        b"lang=%FF%FE",
        b"lang=%E0%B9%84%E0%B8%97%E0%B8%A2",  # "ไทย", the name, not the tag
        b"lang=th;",
        b"lang=../../etc/passwd",
        b"lang=*",
        b"lang=",
        b"lang",
    ],
)
def test_hostile_lang_values_are_ignored(query: bytes) -> None:
    found = negotiate(scope(query, accept="km"), OFFERED)
    assert (found.tag, found.source) == ("km", "header")


@pytest.mark.parametrize(
    "cookie",
    [
        "lang=<script>",
        'lang="th\\r\\nX: y"',
        "lang=fr",
        "lang=th" + ";x" * 3000,
        "lang",
        "===;;;",
        "lang=th\x00",
    ],
)
def test_hostile_cookies_are_ignored(cookie: str) -> None:
    found = negotiate(scope(cookie=cookie), OFFERED)
    assert (found.tag, found.source) == ("en", "default")


@pytest.mark.parametrize(
    "accept",
    [
        "th" + ",xx" * 10_000,  # oversized: only the start is read, and it names nothing
        "th\r\nSet-Cookie: x=1",
        "<script>alert(1)</script>",
        "th;q=NaN",
        "th;q=1e999",
        "x" * 100_000,
        ",,,;;;===",
    ],
)
def test_hostile_accept_language_headers_are_safe(accept: str) -> None:
    found = negotiate(scope(accept=accept), OFFERED)
    assert found.tag in OFFERED
    if len(accept) > MAX_ACCEPT_LANGUAGE:
        assert found.source in ("header", "default")


def test_one_language_offered_chooses_nothing() -> None:
    found = negotiate(scope(b"lang=th", "lang=th", "th"), ["en"], "th")
    assert found == PageLanguage("en", ("en",), "default")
    assert not found.multilingual


def test_the_cookie_and_vary_headers() -> None:
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"vary", b"Accept-Encoding")]
    found = dict(with_language_headers(list(headers), "th", secure=True))
    assert found[b"vary"] == b"Accept-Encoding, Accept-Language, Cookie"
    assert found[b"set-cookie"] == (
        b"lang=th; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly; Secure"
    )
    assert found[b"cache-control"] == b"private, no-cache"
    # Not HTML, no choice: untouched.
    feed = [(b"content-type", b"application/rss+xml"), (b"cache-control", b"public")]
    assert with_language_headers(list(feed), None, secure=False) == feed


# -- the app's pages ---------------------------------------------------------------------------


async def test_the_home_page_follows_accept_language_and_is_cached_per_language(
    site: Site,
) -> None:
    thai = await site.get("/", **{"Accept-Language": "th-TH,th;q=0.9,en;q=0.3"})
    assert thai.status_code == 200
    assert '<html lang="th">' in thai.text
    assert ">โพสต์ล่าสุด</h2>" in thai.text and ">Latest posts<" not in thai.text
    assert "<p>ติดตาม Riverside Commons News:" in thai.text
    # Months named in Thai, linked to the Thai archive pages.
    assert re.search(r'href="\./feeds/archive/2015-12\.th\.html">ธันวาคม 2015</a>', thai.text)
    assert thai.headers["content-language"] == "th"
    assert thai.headers["vary"] == "Accept-Language, Cookie"
    assert thai.headers["cache-control"] == "no-store"
    # Right after the Thai page, an English reader gets English (the cache is per language).
    english = await site.get("/", **{"Accept-Language": "en-GB"})
    assert '<html lang="en">' in english.text
    assert ">Latest posts</h2>" in english.text and "โพสต์ล่าสุด" not in english.text
    assert 'href="./feeds/archive/2015-12.html">December 2015</a>' in english.text
    default = await site.get("/")
    assert '<html lang="en">' in default.text
    again = await site.get("/", **{"Accept-Language": "th"})
    assert _without_tokens(again.text) == _without_tokens(thai.text)


async def test_the_switch_names_each_language_in_itself_and_marks_the_current(
    site: Site,
) -> None:
    page = await site.get("/", **{"Accept-Language": "th"})
    nav = re.search(r'<nav class="languages" aria-label="ภาษา">(.*?)</nav>', page.text, re.S)
    assert nav is not None
    links = re.findall(r"<a [^>]*>[^<]*</a>", nav.group(1))
    assert links == [
        '<a href="?lang=en" lang="en" hreflang="en">English</a>',
        '<a href="?lang=th" lang="th" hreflang="th" aria-current="true">ไทย</a>',
    ]
    # hreflang versions of the page, and the one that follows the browser.
    assert re.findall(r'<link rel="alternate" hreflang="([^"]+)" href="([^"]+)">', page.text) == [
        ("en", "./?lang=en"),
        ("th", "./?lang=th"),
        ("x-default", "./"),
    ]


async def test_the_switch_sets_a_cookie_that_later_pages_follow(site: Site) -> None:
    chosen = await site.get("/?lang=th", **{"Accept-Language": "en"})
    assert '<html lang="th">' in chosen.text
    cookie = chosen.headers["set-cookie"]
    assert cookie == "lang=th; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly"
    assert site.client.cookies.get("lang") == "th"
    # The cookie wins over the browser's language on the next pages, the switch over both.
    later = await site.get("/subscribe", **{"Accept-Language": "en"})
    assert '<html lang="th">' in later.text and "<h1>Subscribe to" in later.text
    assert "set-cookie" not in later.headers
    assert later.headers["vary"] == "Accept-Language, Cookie"
    back = await site.get("/subscribe?lang=en", **{"Accept-Language": "th"})
    assert '<html lang="en">' in back.text
    assert site.client.cookies.get("lang") == "en"


@pytest.mark.parametrize(
    "value",
    ["%3Cscript%3Ealert(1)%3C%2Fscript%3E", "th%0D%0ASet-Cookie:%20evil=1", "fr", "x" * 3000],
)
async def test_a_hostile_lang_is_ignored_and_never_reflected(site: Site, value: str) -> None:
    page = await site.get(f"/?lang={value}", **{"Accept-Language": "th"})
    assert page.status_code == 200
    assert '<html lang="th">' in page.text  # the header decides, as without the parameter
    assert "set-cookie" not in page.headers and "evil" not in str(page.headers)
    plain = await site.get("/", **{"Accept-Language": "th"})
    assert _without_tokens(page.text) == _without_tokens(plain.text)  # nothing reflected
    cookie = await site.client.get("/", headers={"Cookie": f"lang={value}"})
    assert '<html lang="en">' in cookie.text


async def test_a_thai_reader_gets_the_404_page_in_thai(site: Site) -> None:
    missing = await site.get("/no-such-page", **{"Accept-Language": "th"})
    assert missing.status_code == 404
    assert "<h1>ไม่พบหน้านี้</h1>" in missing.text and '<html lang="th">' in missing.text
    assert missing.headers["vary"] == "Accept-Language, Cookie"
    static = await site.get("/feeds/archive/1999-01.html", **{"Accept-Language": "th"})
    assert static.status_code == 404 and "ไม่พบหน้านี้" in static.text


async def test_signed_link_pages_use_the_subscriber_s_language(site: Site) -> None:
    som, _ = await subscribers.add(site.store, "som@example.org", WEB_NOW, confirmed=True)
    som = await subscribers.update_preferences(
        site.store, som.id or 0, name="Som", categories=[], language="th"
    )
    path = site.tokens.link(SITE, "preferences", som).removeprefix(SITE)
    # Their browser says English; the language they chose for the digest wins.
    page = await site.get(path, **{"Accept-Language": "en"})
    assert '<html lang="th">' in page.text and "<h1>การสมัครของคุณ</h1>" in page.text
    # A signed link is private: no hreflang versions of it.
    assert 'hreflang="x-default"' not in page.text
    # The switch wins, and the form's answer stays in the language switched to.
    switched = await site.get(f"{path}?lang=en")
    assert '<html lang="en">' in switched.text
    action = re.search(
        r'<form class="form preferences" method="post" action="([^"]+)"', switched.text
    )
    assert action is not None and action.group(1).endswith("?lang=en")
    token = CSRF_FIELD.search(switched.text)
    assert token is not None
    saved = await site.client.post(
        html.unescape(action.group(1)).replace("../", "/", 1),
        data={"csrf_token": html.unescape(token.group(1)), "name": "Som", "language": "th"},
        headers={"Origin": SITE},
    )
    assert saved.status_code == 200 and '<html lang="en">' in saved.text
    # Unsubscribe, with no choice on the request: theirs again, whatever the cookie says.
    unsubscribe = site.tokens.link(SITE, "unsubscribe", som).removeprefix(SITE)
    site.client.cookies.clear()
    page = await site.client.get(unsubscribe, headers={"Cookie": "lang=en"})
    assert '<html lang="th">' in page.text


async def test_subscribing_on_a_thai_page_stores_thai(site: Site) -> None:
    await site.get("/?lang=th")  # the switch: the cookie says th from now on
    form = await site.get("/subscribe", **{"Accept-Language": "en"})
    token = CSRF_FIELD.search(form.text)
    assert token is not None
    sent = await site.client.post(
        "/subscribe",
        data={"email": "noi@example.org", "csrf_token": html.unescape(token.group(1))},
        headers={"Origin": SITE, "Accept-Language": "en"},
    )
    assert sent.status_code == 200 and "<h1>โปรดตรวจอีเมลของคุณ</h1>" in sent.text
    found = await site.store.subscriber_by_email("noi@example.org")
    assert found is not None and found.language == "th"


# -- the published pages -----------------------------------------------------------------------


def test_publishing_writes_a_page_per_language_beside_the_default(bilingual_site: Path) -> None:
    feeds = bilingual_site / "feeds"
    assert (feeds / "archive" / "2015-12.html").is_file()
    thai = (feeds / "archive" / "2015-12.th.html").read_text()
    english = (feeds / "archive" / "2015-12.html").read_text()
    assert '<html lang="th">' in thai and "<h1>คลังบทความเดือน ธันวาคม 2015</h1>" in thai
    assert '<html lang="en">' in english and "<h1>Archive for December 2015</h1>" in english
    for page, current in ((english, "en"), (thai, "th")):
        assert re.findall(r'<link rel="alternate" hreflang="([^"]+)" href="([^"]+)">', page) == [
            ("en", "2015-12.html"),
            ("th", "2015-12.th.html"),
            ("x-default", "2015-12.html"),
        ]
        assert f'hreflang="{current}" aria-current="true"' in page
    assert '<a href="2015-12.th.html?lang=th" lang="th" hreflang="th"' in english
    # A Thai page's months are the Thai pages; its words are Thai where the catalog has them.
    index = (feeds / "archive" / "index.th.html").read_text()
    assert re.search(r'<a href="\.\./\.\./feeds/archive/2015-1\d\.th\.html">', index)
    assert "<h1>คลังบทความ</h1>" in index and "โพสต์)" in index
    assert "<h2>ทั้งเว็บไซต์</h2>" in (feeds / "index.th.html").read_text()
    assert (feeds / "digest" / "index.th.html").is_file()


async def test_the_web_app_answers_a_published_page_in_the_reader_s_language(
    site: Site,
) -> None:
    thai = await site.get("/feeds/archive/2015-12.html", **{"Accept-Language": "th"})
    english = await site.get("/feeds/archive/2015-12.html", **{"Accept-Language": "en"})
    assert "คลังบทความเดือน ธันวาคม 2015" in thai.text
    assert "Archive for December 2015" in english.text
    for response in (thai, english):
        assert response.headers["vary"] == "Accept-Encoding, Accept-Language, Cookie"
    # Each version has its own ETag: an English copy never satisfies a Thai reader.
    assert thai.headers["etag"] != english.headers["etag"]
    revalidated = await site.client.get(
        "/feeds/archive/2015-12.html",
        headers={"Accept-Language": "th", "If-None-Match": english.headers["etag"]},
    )
    assert revalidated.status_code == 200 and "คลังบทความเดือน" in revalidated.text
    same = await site.client.get(
        "/feeds/archive/2015-12.html",
        headers={"Accept-Language": "th", "If-None-Match": thai.headers["etag"]},
    )
    assert same.status_code == 304
    # A version named by its own file is that version, whoever asks.
    named = await site.get("/feeds/archive/2015-12.th.html", **{"Accept-Language": "en"})
    assert "คลังบทความเดือน" in named.text
    # The switch's link: the cookie is set, and the feeds list follows it.
    switched = await site.get("/feeds/archive/2015-12.html?lang=th")
    assert "คลังบทความเดือน" in switched.text and site.client.cookies.get("lang") == "th"
    assert switched.headers["cache-control"] == "private, no-cache"
    listing = await site.get("/feeds/")
    assert "<h2>ทั้งเว็บไซต์</h2>" in listing.text
    # Feeds themselves are the same for everyone.
    feed = await site.get("/feeds/index.rss", **{"Accept-Language": "th"})
    assert "Accept-Language" not in feed.headers.get("vary", "")


def _without_tokens(text: str) -> str:
    return CSRF_FIELD.sub("", text)


async def test_a_site_in_one_language_has_no_switch_cookie_or_vary(web: httpx.AsyncClient) -> None:
    for path in ("/?lang=th", "/subscribe?lang=th", "/feeds/archive/2015-12.html?lang=th"):
        page = await web.get(path, headers={"Accept-Language": "th", "Cookie": "lang=th"})
        assert page.status_code == 200, path
        assert '<html lang="en">' in page.text
        assert "set-cookie" not in page.headers and "content-language" not in page.headers
        assert "Accept-Language" not in page.headers.get("vary", "")
        assert 'class="languages"' not in page.text and "hreflang" not in page.text


async def test_the_preferences_page_chooses_what_comes_of_other_languages(site: Site) -> None:
    som, _ = await subscribers.add(site.store, "noi@example.org", WEB_NOW, confirmed=True)
    path = site.tokens.link(SITE, "preferences", som).removeprefix(SITE)
    page = await site.get(path, **{"Accept-Language": "en"})
    assert '<select id="preferences-other-languages" name="other_languages">' in page.text
    assert '<option value="" selected>as the site chooses</option>' in page.text

    async def save(choice: str) -> httpx.Response:
        form = await site.get(path)
        token = CSRF_FIELD.search(form.text)
        assert token is not None
        return await site.client.post(
            path,
            data={
                "csrf_token": html.unescape(token.group(1)),
                "name": "Noi",
                "other_languages": choice,
            },
            headers={"Origin": SITE},
        )

    saved = await save("link")
    assert saved.status_code == 200 and '<option value="link" selected>' in saved.text
    found = await site.store.subscriber_by_email("noi@example.org")
    assert found is not None and found.other_languages == "link"
    refused = await save("everything<script>")
    assert refused.status_code == 400 and "<script>" not in refused.text
    found = await site.store.subscriber_by_email("noi@example.org")
    assert found is not None and found.other_languages == "link"
    back = await save("")  # the site's choice again
    assert back.status_code == 200
    found = await site.store.subscriber_by_email("noi@example.org")
    assert found is not None and found.other_languages is None
