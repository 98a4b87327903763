"""`syndicate digest preview --serve`: the upcoming issue on a local page that reloads when a
template, the intro or the config changes, for any reader, with its problems (issue 21,
item 3). The reload in a real browser is tests/test_preview_browser.py.

Real parts: the command in a child process (tests/previewsite.py) serving on 127.0.0.1, a
SQLite file with the example feeds ingested, httpx for the requests.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import httpx
import pytest
from previewsite import PreviewServer, start, stop, syndicate

from syndicate.clock import FrozenClock
from syndicate.config import load_settings
from syndicate.preview.render import Reader, render_preview, upcoming_period
from syndicate.store import Store

DIGEST = "templates/email/digest.html.j2"


def copy_of(server: PreviewServer, query: str = "") -> str:
    answer = server.get(f"/copy{query}")
    assert answer.status_code == 200, answer.text
    return answer.text


def titles(html: str) -> list[str]:
    return re.findall(r'class="post-title"[^>]*><a [^>]*>([^<]+)</a>', html)


def test_the_page_shows_the_issue_its_html_at_two_widths_and_its_text_part(
    preview: PreviewServer,
) -> None:
    page = preview.get("/")
    assert page.status_code == 200
    assert "Digest 2015-12: Riverside Commons News: December 2015" in page.text
    assert '<iframe id="copy" title="The HTML copy" src="/copy">' in page.text
    # The page's own policy: its script from itself, nothing inline, never framed.
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"

    copy = preview.get("/copy")
    assert "sandbox" in copy.headers["content-security-policy"]  # no script in the copy
    assert titles(copy.text), "no post in the copy"

    phone = preview.get("/?view=phone").text
    assert '<section class="copy phone"' in phone
    assert '<a href="/?view=phone" aria-current="page">Phone</a>' in phone

    text = preview.get("/?view=text").text
    part = re.search(r'<pre id="text">(.*?)</pre>', text, re.S)
    assert part is not None and "Riverside Commons News: December 2015" in part.group(1)
    assert unescape(titles(copy.text)[0]) in unescape(part.group(1))
    assert "<iframe" not in text


def test_a_persona_is_a_subscribers_categories_name_and_language(
    preview_project: Path,
) -> None:
    add = ("subscribers", "add")
    syndicate(preview_project, *add, "ann@example.org", "--name", "Ann", "--category", "Rivers")
    syndicate(preview_project, *add, "som@example.org", "--name", "Som", "--language", "th")
    start_as = ("--subscriber", "som@example.org", "--language", "en")
    server = start(preview_project, "--month", "2015-12", "--no-link-check", *start_as)
    try:
        # The reader given on the command line is in the address it prints.
        assert server.link == f"{server.url}?email=som%40example.org&lang=en"
        everyone = titles(copy_of(server))
        ann = copy_of(server, "?email=ann@example.org")
        assert 0 < len(titles(ann)) < len(everyone)  # her category only
        assert "Ann" in ann and '<html lang="en"' in ann
        page = server.get("/?email=ANN@example.org&view=phone").text
        assert 'The copy for <strong id="reader">Ann &lt;ann@example.org&gt;</strong>' in page
        # The address stays in every link of the page, so a reload keeps the persona.
        assert 'src="/copy?email=ANN%40example.org"' in page
        assert '<a href="/?email=ANN%40example.org&amp;view=text">Text</a>' in page

        som = copy_of(server, "?email=som@example.org")
        assert "Som" in som and '<html lang="th"' in som  # his language: the Thai posts
        assert not set(titles(som)) & set(everyone)
        # A language chosen over his: the English copy, every category.
        assert titles(copy_of(server, "?email=som@example.org&lang=en")) == everyone
        thai = server.get("/?lang=th&view=text").text
        assert "ธันวาคม 2015" in thai  # December, in Thai

        nobody = server.get("/?email=nobody@example.org").text
        assert "No subscriber has this address" in nobody
        assert titles(copy_of(server, "?email=nobody@example.org")) == everyone
    finally:
        stop(server)


def test_a_template_edit_is_a_new_generation_and_shows_at_once(preview: PreviewServer) -> None:
    seen = preview.generation()
    template = preview.project / DIGEST
    source = template.read_text(encoding="utf-8")
    waiting: dict[str, str] = {}
    # The page's long poll is already waiting when the file is saved, as in a browser.
    poll = threading.Thread(target=lambda: waiting.update(gen=preview.wait_for_change(seen)))
    poll.start()
    preview.edit(DIGEST, source.replace("{% block content %}", "{% block content %}<p>Fresh</p>"))
    poll.join(timeout=10)
    assert not poll.is_alive(), "the long poll did not answer the change"
    assert waiting["gen"] != seen
    assert "<p>Fresh</p>" in copy_of(preview)
    # Nothing changed since: asking with the new generation waits (the server answers the
    # same generation after its long poll; here the request is cut short instead).
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{preview.url}changes?seen={waiting['gen']}", timeout=1)


def test_each_page_shows_the_posts_as_they_are_now(preview: PreviewServer) -> None:
    first = titles(copy_of(preview))[0]
    feeds = preview.project / "examples"
    for feed in feeds.iterdir():
        text = feed.read_text(encoding="utf-8")
        if first in text:
            feed.write_text(text.replace(first, "Renamed while the preview ran"), "utf-8")
    # The worker (here the command) ingests meanwhile; no watched file changes.
    syndicate(preview.project, "ingest")
    assert preview.get("/").status_code == 200  # the page, then its frame
    assert titles(copy_of(preview))[0] == "Renamed while the preview ran"


def test_a_template_error_is_listed_at_its_file_and_line_and_fixing_it_recovers(
    preview: PreviewServer,
) -> None:
    template = preview.project / DIGEST
    good = template.read_text(encoding="utf-8")
    lines = good.splitlines(keepends=True)
    broken_line = next(i for i, line in enumerate(lines) if "{% block content %}" in line) + 2
    lines.insert(broken_line - 1, "{{ post.title | no_such_filter }}\n")
    seen = preview.generation()
    preview.edit(DIGEST, "".join(lines))
    preview.wait_for_change(seen)
    page = preview.get("/").text
    assert f"templates/email/digest.html.j2:{broken_line}" in page
    assert "no_such_filter" in page
    assert "Nothing to show: see the problems." in page
    assert preview.get("/copy").status_code == 409

    seen = preview.generation()
    preview.edit(DIGEST, good)
    preview.wait_for_change(seen)
    page = preview.get("/").text
    assert "digest.html.j2:" not in page and '<iframe id="copy"' in page


def test_the_intro_and_the_config_are_watched_and_a_broken_config_keeps_the_last_good_one(
    preview: PreviewServer,
) -> None:
    seen = preview.generation()
    preview.edit("digest/intro/2015-12.md", "A word from the *editor* first.\n")
    seen = preview.wait_for_change(seen)
    assert "A word from the <em>editor</em> first." in copy_of(preview)

    config = (preview.project / "config.toml").read_text(encoding="utf-8")
    assert 'title = "Riverside Commons News"' in config
    preview.edit("config.toml", config.replace("[site]\n", "[site]\nno_such_key = 1\n", 1))
    seen = preview.wait_for_change(seen)
    page = preview.get("/").text
    assert "config.toml" in page and "no_such_key" in page
    assert '<iframe id="copy"' in page  # the last config that loaded is still in use

    renamed = config.replace('title = "Riverside Commons News"', 'title = "River Weekly"', 1)
    preview.edit("config.toml", renamed)
    preview.wait_for_change(seen)
    page = preview.get("/").text
    assert "no_such_key" not in page and "River Weekly" in page


def test_images_without_alt_and_the_slow_checks_are_listed(preview: PreviewServer) -> None:
    source = (preview.project / DIGEST).read_text(encoding="utf-8")
    seen = preview.generation()
    image = '<img src="https://cdn.example.org/banner.png">'
    preview.edit(DIGEST, source.replace("{% block content %}", "{% block content %}" + image))
    preview.wait_for_change(seen)
    page = preview.get("/").text
    assert 'data-kind="image"' in page and "banner.png" in page
    assert 'data-src="/checks"' in page
    checks = preview.get("/checks").text
    assert "Links are not checked (--no-link-check)." in checks
    assert 'data-kind="spam"' in checks  # a score, or how to install SpamAssassin


def test_only_requests_to_this_machine_are_answered(preview: PreviewServer) -> None:
    # A page elsewhere that rebinds its own name to 127.0.0.1 sends its own Host.
    rebound = preview.get("/", headers={"Host": "attacker.example"})
    assert rebound.status_code == 400
    assert preview.get("/", headers={"Host": "localhost"}).status_code == 200
    assert preview.get("/static/../config.toml").status_code == 404
    assert preview.get("/static/page.html.j2").status_code == 404
    # A generation no page was given is answered at once, however long.
    boot = preview.generation().split("-")[0]
    for seen in (f"{boot}-{'9' * 5000}", "x", ""):
        answer = preview.get(f"/changes?seen={seen}", timeout=5)
        assert answer.status_code == 200 and answer.json()["generation"].startswith(boot)


def test_hostile_values_are_escaped_on_the_page(preview_project: Path) -> None:
    syndicate(
        preview_project,
        *("subscribers", "add", "eve@example.org", "--confirmed"),
        *("--name", '<script>alert(1)</script>"'),
    )
    server = start(preview_project, "--month", "2015-12", "--no-link-check")
    try:
        page = server.get("/", params={"email": "eve@example.org"}).text
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        forged = server.get("/", params={"email": '"><script>alert(2)</script>'}).text
        assert "<script>alert(2)" not in forged
        assert 'value="&#34;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"' in forged
        assert server.get("/", params={"view": "<x>"}).status_code == 200
    finally:
        stop(server)


def test_the_command_refuses_other_machines_and_conflicting_options(
    preview_project: Path,
) -> None:
    def run(*options: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "syndicate", "--config"]
        command += [str(preview_project / "config.toml"), "digest", "preview", *options]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    remote = run("--serve", "--host", "0.0.0.0")
    assert remote.returncode == 1
    assert "--host '0.0.0.0' is reachable from other machines" in remote.stderr
    assert "--allow-remote" in remote.stderr
    assert run("--serve", "--format", "text").returncode == 2
    assert "leave out --format" in run("--serve", "-o", "x.html").stderr
    assert (
        "--no-link-check goes with --serve" in run("--month", "2015-12", "--no-link-check").stderr
    )


def test_a_port_in_use_is_one_clear_line(preview: PreviewServer) -> None:
    port = preview.url.rsplit(":", 1)[1].strip("/")
    command = [sys.executable, "-m", "syndicate", "--config"]
    command += [str(preview.project / "config.toml"), "digest", "preview", "--serve"]
    taken = subprocess.run(
        [*command, "--port", port], capture_output=True, text=True, timeout=60, check=False
    )
    assert taken.returncode == 1
    assert f"error: cannot listen on 127.0.0.1:{port}" in taken.stderr
    assert "Traceback" not in taken.stderr


async def test_the_upcoming_issue_is_the_due_one_not_sent_else_the_period_in_progress(
    preview_project: Path,
) -> None:
    settings = load_settings(preview_project / "config.toml")
    async with await Store.open(settings.database_url) as store:
        # 9 December: November's issue fell due on the 1st and was never sent.
        december = datetime(2015, 12, 9, 12, tzinfo=UTC)
        assert (await upcoming_period(settings, store, december)).key == "2015-11"
        assert await store.claim_run("digest:2015-11", "test", december)
        await store.finish_run("digest:2015-11", december)
        assert (await upcoming_period(settings, store, december)).key == "2015-12"


async def test_no_posts_and_a_reader_who_gets_nothing_are_said_not_raised(
    preview_project: Path,
) -> None:
    settings = load_settings(preview_project / "config.toml")
    clock = FrozenClock(datetime(2015, 12, 9, tzinfo=UTC))
    async with await Store.open(settings.database_url) as store:
        empty = await render_preview(settings, store, clock, "2014-01", Reader())
        assert empty.html is None
        assert [p.message for p in empty.problems] == [
            "No posts in 2014-01 yet, so there is no issue to show (--month chooses another "
            "period)."
        ]
        full = await render_preview(settings, store, clock, "2015-12", Reader())
        assert full.html is not None and full.message is not None and full.posts > 0
        # The message as sent: the headers a subscriber's copy has.
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in full.message


def test_the_server_stops_on_ctrl_c_with_a_page_waiting(preview: PreviewServer) -> None:
    seen = preview.generation()
    waiting = threading.Thread(
        target=lambda: httpx.get(f"{preview.url}changes?seen={seen}", timeout=30)
    )
    waiting.start()
    asyncio.run(asyncio.sleep(0.3))
    stop(preview)  # within its timeout, exit status 0
    waiting.join(timeout=30)
