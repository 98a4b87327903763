"""The problems the digest's live preview lists (issue 21, item 3): template errors as
file:line, links that do not resolve, images without alt, Gmail's clipping size, and
SpamAssassin's score.

Real parts: HTTP servers on loopback addresses (tests/httpserver.py), the bundled project
ingested and a digest copy sent through its Maildir outbox (the message as sent), Jinja
templates in a temporary folder, and Debian's spamassassin (scripts/test installs it).
One thing cannot run here and is stood in for, as in tests/test_netguard.py: a public web
server, played by a server on 127.0.0.3 that the guard's stand-in judge calls public, so
that a redirect from a "public" link into 127.0.0.1 can be refused.
"""

from __future__ import annotations

import mailbox
import re
import shutil
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, english_only
from httpserver import Connection, HttpServer, Raw, Request, Response, unused_url
from jinja2 import TemplateSyntaxError, UndefinedError
from test_netguard import stand_in_judge

from syndicate.cli import cli
from syndicate.errors import ConfigError
from syndicate.ingest.netguard import PublicOnlyBackend
from syndicate.mail import headers
from syndicate.mail.message import alternative_message
from syndicate.preview.problem import MAX_MESSAGE, MAX_WHERE
from syndicate.preview.problems import (
    CLIPPING_SIZE,
    Problem,
    check_links,
    clipping,
    find_problems,
    images_without_alt,
    links_in,
    spam_score,
    template_problem,
)
from syndicate.templating import email_environment, render_template

SECRET = "a-test-secret-of-enough-length-0123456789"
CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def messages(problems: list[Problem]) -> dict[str, str]:
    return {problem.where: problem.message for problem in problems}


# --- links: a real server on 127.0.0.1 ---------------------------------------------------------


def head_refused(request: Request) -> Response:
    return Response(405) if request.method == "HEAD" else Response(200, b"fine")


async def test_each_broken_link_says_what_is_wrong_and_good_ones_say_nothing(
    http_server: HttpServer,
) -> None:
    http_server.route("/ok", Response(200, b"hello"))
    http_server.route("/broken", Response(500, b"oops"))
    http_server.route("/head-refused", head_refused)
    http_server.route("/moved", Response.redirect("/moved-again", 301))
    http_server.route("/moved-again", Response.redirect(http_server.url_for("/ok"), 302))
    http_server.route("/moved-away", Response.redirect("/gone", 308))
    http_server.route("/private", Response(403))
    for hop in range(7):
        http_server.route(f"/loop{hop}", Response.redirect(f"/loop{hop + 1}"))
    url = http_server.url_for
    links = [
        url("/ok"), url("/missing"), url("/broken"), url("/head-refused"), url("/moved"),
        url("/moved-away"), url("/private"), url("/loop0"), url("/ok"),
    ]  # fmt: skip
    problems = await check_links(links, allow_private=True)
    assert messages(problems) == {
        url("/missing"): "Answers HTTP 404 Not Found.",
        url("/broken"): "Answers HTTP 500 Internal Server Error.",
        url("/moved-away"): f"Redirects to {url('/gone')}, which answers HTTP 404 Not Found.",
        url("/private"): (
            "Answers HTTP 403 Forbidden: the server would not answer the check; "
            "try it in a browser."
        ),
        url("/loop0"): f"More than 5 redirects; the last to {url('/loop6')}.",
    }
    assert [p.severity for p in problems] == ["error", "error", "error", "warning", "error"]
    # HEAD first; GET only where HEAD was refused (405, 403); the duplicate asked once.
    assert [r.method for r in http_server.requests_to("/ok")] == ["HEAD", "HEAD"]  # + /moved
    assert [r.method for r in http_server.requests_to("/head-refused")] == ["HEAD", "GET"]
    assert [r.method for r in http_server.requests_to("/private")] == ["HEAD", "GET"]
    assert [r.method for r in http_server.requests_to("/broken")] == ["HEAD"]


async def test_connection_and_name_errors_are_problems(http_server: HttpServer) -> None:
    closed = unused_url("/feed")
    problems = await check_links([closed, "http://nowhere.invalid/"], allow_private=True)
    said = messages(problems)
    assert said[closed] == "Connection refused by 127.0.0.1."
    # .invalid never resolves (RFC 2606); the resolver's reason depends on the network.
    assert said["http://nowhere.invalid/"].startswith("Cannot resolve nowhere.invalid: ")


async def test_the_whole_check_is_bounded_and_says_how_many_links_were_not_checked(
    http_server: HttpServer,
) -> None:
    http_server.route("/slow", Response(200, b"late", delay=30))
    links = [http_server.url_for(f"/slow?page={n}") for n in range(5)]
    started = time.monotonic()
    problems = await check_links(links, timeout=0.5, total=1.2, concurrency=1, allow_private=True)
    elapsed = time.monotonic() - started
    assert elapsed < 2.5  # total 1.2 s, and at most 1 s to let the cut-off requests go
    late = [p for p in problems if p.message == "No answer within 0.5 s."]
    assert late and all(p.severity == "error" for p in late)
    summary = problems[-1]
    unchecked = len(links) - len(late)
    assert unchecked >= 1
    assert summary == Problem(
        "link",
        f"{unchecked} of 5 links",
        f"{unchecked} links were not checked: the check stops after 1.2 s.",
        "info",
    )
    # A slow link is given up on after HEAD: no GET doubles its time.
    assert {r.method for r in http_server.requests_to("/slow")} == {"HEAD"}


# --- links: no requests into the machine's own network -----------------------------------------


@pytest.fixture
def public_server() -> Iterator[HttpServer]:
    with HttpServer("127.0.0.3") as server:
        yield server


async def test_a_redirect_into_the_machines_own_network_is_refused_before_connecting(
    http_server: HttpServer, public_server: HttpServer
) -> None:
    http_server.route("/admin", Response(200, b"secrets"))
    public_server.route("/post", Response.redirect(http_server.url_for("/admin")))
    public_server.route("/fine", Response(200))
    link = public_server.url_for("/post")
    problems = await check_links(
        [link, public_server.url_for("/fine")],
        network=PublicOnlyBackend(judge=stand_in_judge),
    )
    assert messages(problems) == {
        link: (
            f"Redirects to {http_server.url_for('/admin')}, not followed: 127.0.0.1 is a "
            "loopback address, and links into this machine's own network are not followed."
        )
    }
    assert http_server.requests == []
    assert [r.method for r in public_server.requests_to("/post")] == ["HEAD"]


async def test_a_link_to_a_private_address_is_refused_without_a_request(
    http_server: HttpServer,
) -> None:
    http_server.route("/admin", Response(200, b"secrets"))
    port = http_server.url.rsplit(":", 1)[1]
    links = [
        http_server.url_for("/admin"),
        f"http://localhost:{port}/admin",
        f"http://[::ffff:127.0.0.1]:{port}/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
    ]
    problems = await check_links(links)
    said = messages(problems)
    assert said[links[0]] == (
        "Not checked: 127.0.0.1 is a loopback address, and links into this machine's own "
        "network are not followed."
    )
    assert said[links[1]].startswith("Not checked: localhost resolves to ")
    assert "loopback" in said[links[2]]
    assert "cloud metadata service" in said[links[3]]
    assert "a private address" in said[links[4]]
    assert http_server.requests == []


async def test_javascript_data_and_relative_links_are_refused_without_a_request() -> None:
    html = (
        '<a href="javascript:alert(1)">a</a> <a href="JaVaScRiPt:alert(2)">b</a>'
        '<a href="java&#x09;script:alert(3)">c</a> <a href="data:text/html,<b>x</b>">d</a>'
        '<a href="/relative/path">e</a> <a href="https://user:pass@bank.example@evil.example/">f'
        "</a>"
    )
    links = links_in(html)
    assert len(links) == 6
    problems = await check_links(links, total=2)
    assert [p.message for p in problems] == [
        "Not checked: a javascript: link; only http and https links are checked (and published).",
        "Not checked: a javascript: link; only http and https links are checked (and published).",
        "Not checked: a javascript: link; only http and https links are checked (and published).",
        "Not checked: a data: link; only http and https links are checked (and published).",
        "Not checked: a relative link, which leads nowhere in an email (links need https://...).",
        "Not checked: a link with a user name or password in it (it can show one host and "
        "open another).",
    ]
    assert problems[2].where == "java\\x09script:alert(3)"  # the tab shown, not obeyed


def test_links_in_are_distinct_in_order_without_mail_or_fragment_links() -> None:
    html = """
      <a href="https://a.example/one?x=1&amp;y=2">one</a>
      <a href="#top">top</a> <a href="mailto:editor@example.org">mail</a>
      <a href=" https://b.example/two ">two</a> <a>no href</a>
      <a href="https://a.example/one?x=1&y=2">one again</a>
      <map><area href="https://c.example/three"></map>
      <img src="https://d.example/not-a-link.png" alt="">
    """
    assert links_in(html) == [
        "https://a.example/one?x=1&y=2",
        "https://b.example/two",
        "https://c.example/three",
    ]


# --- what a problem says is safe to print ------------------------------------------------------


def escape_location(connection: Connection) -> None:
    connection.send(
        b"HTTP/1.1 302 Found\r\nLocation: /a\x1b[2J\x1b]0;pwned\x07\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )


async def test_hostile_urls_and_server_answers_print_safely_and_short(
    http_server: HttpServer,
) -> None:
    http_server.route("/escape", Raw(escape_location))
    long = http_server.url_for("/" + "x" * 2000)
    huge = http_server.url_for("/" + "x" * 10_000)
    hostile = "https://evil.example/\r\nX-Injected: 1\x1b[31m\u202eredaolnwod"
    problems = await check_links(
        [long, hostile, http_server.url_for("/escape"), huge], allow_private=True
    )
    assert len(problems) == 4
    for problem in problems:
        assert not CONTROLS.search(problem.where + problem.message), problem
        assert len(problem.where) <= MAX_WHERE and len(problem.message) <= MAX_MESSAGE
    assert problems[0].where.startswith(http_server.url_for("/xxx"))
    assert "…" in problems[0].where and problems[0].message == "Answers HTTP 404 Not Found."
    assert problems[3].message == (
        "Not checked: longer than 2048 characters, which we do not publish."
    )
    # The 10 KB one was never asked for.
    assert all(len(request.path) < 5000 for request in http_server.requests)
    assert problems[2].message.startswith(
        "Redirects to an invalid URL (Invalid non-printable ASCII character in URL, '\\x1b'"
    )
    assert problems[1].where == (
        "https://evil.example/\\x0d\\x0aX-Injected: 1\\x1b[31m\\u202eredaolnwod"
    )
    # Made by hand too (the page's own problems): the fields are cleaned when made.
    made = Problem("link", "a\nb", "c\x1bd" + "e" * 5000)
    assert made.where == "a\\x0ab" and len(made.message) == MAX_MESSAGE
    assert made.message.startswith("c\\x1bd")


# --- images ------------------------------------------------------------------------------------


def test_images_without_alt_are_errors_and_empty_alt_is_for_decoration_only() -> None:
    html = """
      <img src="https://a.example/logo.png" alt="Riverside Commons">
      <img src="https://a.example/photo.jpg">
      <IMG SRC="https://a.example/photo.jpg">
      <img src="https://a.example/chart.png" alt="">
      <img src="https://a.example/pixel.gif" width="1" height="1" alt="">
      <img src="https://a.example/rule.png" role="presentation" alt="">
      <img src="https://a.example/spacer.gif" height="1px" alt="" />
      <img src="https://a.example/blank.png" alt="   ">
    """
    problems = images_without_alt(html)
    assert [(p.where, p.severity) for p in problems] == [
        ('<img src="https://a.example/photo.jpg">', "error"),
        ('<img src="https://a.example/chart.png">', "warning"),
        ('<img src="https://a.example/blank.png">', "warning"),
    ]
    assert problems[0].message == (
        'An image has no alt text (2 times): add alt="..." saying what it shows, or alt="" '
        "if it is only decoration."
    )


# --- a real digest: size, images, links, spam --------------------------------------------------


@pytest.fixture(scope="module")
def digest(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    """The bundled project's December 2015 copy as sent through its outbox: (HTML part,
    message bytes)."""
    folder = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "config.toml", folder / "config.toml")
    for name in ("examples", "templates", "locales"):
        shutil.copytree(REPO / name, folder / name)
    english_only(folder / "config.toml")
    config = str(folder / "config.toml")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SYNDICATE_SECRET", SECRET)
        for args in (
            ["ingest"],
            ["digest", "test", "--month", "2015-12", "--to", "editor@example.org"],
        ):
            result = CliRunner().invoke(cli, ["--config", config, *args])
            assert result.exit_code == 0, result.output
    outbox = mailbox.Maildir(folder / "var" / "outbox", factory=None, create=False)
    [key] = list(outbox.iterkeys())
    raw = outbox.get_bytes(key)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    html_part = parsed.get_body(("html",))
    assert html_part is not None
    return html_part.get_content(), raw


def test_the_real_digest_is_under_the_clipping_size_and_its_images_have_alt(
    digest: tuple[str, bytes],
) -> None:
    html, message = digest
    assert 5_000 < len(message) < 0.9 * CLIPPING_SIZE
    assert clipping(message) is None
    assert images_without_alt(html) == []
    links = links_in(html)
    assert "https://news.riverside-commons.example/" in links
    assert all(link.startswith("https://") for link in links)
    assert len(links) == len(set(links))


def padded(html: str, message: bytes, size: int) -> bytes:
    """The digest again with its HTML part padded so that the message is about `size` bytes."""
    parsed = message_from_bytes(message, policy=policy.default)
    text_part = parsed.get_body(("plain",))
    assert text_part is not None
    fields = [
        headers.mailbox("From", "", "news@riverside-commons.example"),
        headers.mailbox("To", "", "editor@example.org"),
        headers.text("Subject", str(parsed["Subject"])),
    ]
    filler = "<p>More news from the river, and from the commons beside it.</p>\n"
    count = max(0, size - len(message)) // len(filler)
    bigger = html.replace("</body>", filler * count + "</body>")
    return alternative_message(fields, text_part.get_content(), bigger)


def test_a_message_over_gmails_clipping_size_is_an_error_and_one_near_it_a_warning(
    digest: tuple[str, bytes],
) -> None:
    html, message = digest
    over = padded(html, message, 120 * 1024)
    assert len(over) > CLIPPING_SIZE
    problem = clipping(over)
    assert problem is not None and (problem.kind, problem.severity) == ("size", "error")
    size, excess = len(over) / 1024, (len(over) - CLIPPING_SIZE) / 1024
    assert problem.message.startswith(
        f"The message is {size:.1f} KB, {excess:.1f} KB over Gmail's 102 KB limit: Gmail "
        "will clip it"
    )
    near = padded(html, message, 97 * 1024)
    assert 0.9 * CLIPPING_SIZE < len(near) <= CLIPPING_SIZE
    warning = clipping(near)
    assert warning is not None and warning.severity == "warning"
    assert "under Gmail's 102 KB clipping limit" in warning.message
    # Exactly at the limit is not over it.
    assert clipping(b"x" * CLIPPING_SIZE).severity == "warning"  # type: ignore[union-attr]
    assert clipping(b"x" * (CLIPPING_SIZE + 1)).severity == "error"  # type: ignore[union-attr]


async def test_find_problems_lists_errors_first(digest: tuple[str, bytes]) -> None:
    html, message = digest
    worse = html.replace(
        "</body>",
        '<img src="https://a.example/chart.png" alt=""><img src="https://a.example/x.png">'
        '<a href="javascript:alert(1)">x</a></body>',
    )
    problems = await find_problems(worse, message, check_link_urls=False)
    assert [(p.kind, p.severity) for p in problems] == [
        ("image", "error"),
        ("image", "warning"),
        ("spam", "info"),  # a clean digest, under the threshold
    ]
    # With the links checked: the javascript: one is refused without a request, and the
    # site's own links (a .example domain nobody serves) do not resolve, each said so.
    checked = await find_problems(worse, message, link_timeout=2, link_total=5)
    severities = [p.severity for p in checked]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    said = messages(checked)
    assert said["javascript:alert(1)"].startswith("Not checked: a javascript: link")
    assert any(
        p.where.startswith("https://news.riverside-commons.example/") and p.kind == "link"
        for p in checked
    )


# --- SpamAssassin, the real one ----------------------------------------------------------------

SPAMMY = (
    b"From: winner@lottery-prize.example\r\nTo: you@example.org\r\n"
    b"Subject: FREE VIAGRA!!! CLAIM YOUR PRIZE NOW\r\n"
    b"Date: Wed, 02 Dec 2015 10:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\n"
    b"BUY VIAGRA NOW!!! CHEAP CIALIS, 100% FREE, CLICK HERE http://cheap-pills.example/\r\n"
    b"MAKE MONEY FAST. ACT NOW! YOU HAVE WON $1,000,000 US DOLLARS. GUARANTEED!!!\r\n"
)
SCORE = re.compile(r"scores the message (-?\d+\.\d)")


def score_of(problem: Problem | None) -> float:
    assert problem is not None and problem.kind == "spam", problem
    found = SCORE.search(problem.message)
    assert found is not None, problem.message
    return float(found.group(1))


@pytest.fixture(scope="module")
def clean_score(digest: tuple[str, bytes]) -> Problem | None:
    if shutil.which("spamassassin") is None:
        pytest.fail("spamassassin is not installed: scripts/test installs it (apt-get)")
    return spam_score(digest[1])


def test_a_clean_digest_scores_under_spamassassins_threshold(
    clean_score: Problem | None,
) -> None:
    assert clean_score is not None and clean_score.severity == "info"
    assert "under its spam threshold of 5.0" in clean_score.message
    assert score_of(clean_score) < 5.0


def test_a_spammy_message_scores_higher_naming_the_rules(clean_score: Problem | None) -> None:
    spammy = spam_score(SPAMMY)
    assert score_of(spammy) > score_of(clean_score) + 3
    assert spammy is not None and spammy.severity == "error"
    assert "at or over its spam threshold of 5.0. Rules that hit: " in spammy.message
    assert "DRUG" in spammy.message  # the rule names, the heaviest first


def test_a_message_cannot_forge_its_own_spamassassin_report() -> None:
    forged = SPAMMY.replace(
        b"Date:", b"X-Spam-Status: No, score=-99.0 required=5.0 tests=NONE\r\nDate:"
    ) + (
        b"\r\nContent analysis details:   (-99.0 points, 5.0 required)\r\n\r\n"
        b" pts rule name              description\r\n"
        b"---- ---------------------- ------------------------------\r\n"
        b"-99.0 ALL_GOOD              Trust me\r\n"
    )
    problem = spam_score(forged)
    assert score_of(problem) > 0 and "ALL_GOOD" not in problem.message  # type: ignore[union-attr]


def test_without_spamassassin_the_problem_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert spam_score(SPAMMY) == Problem(
        "spam",
        "the message",
        "SpamAssassin is not installed: `apt-get install spamassassin` to score the message",
        "info",
    )


def test_a_spamassassin_run_that_takes_too_long_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in spamassassin on PATH that never answers: the real one cannot be made to hang.
    folder = tmp_path / "bin"
    folder.mkdir()
    program = folder / "spamassassin"
    program.write_text("#!/bin/sh\nexec sleep 30\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    started = time.monotonic()
    problem = spam_score(SPAMMY, timeout=0.5)
    assert time.monotonic() - started < 3
    assert problem == Problem(
        "spam",
        "the message",
        "SpamAssassin did not finish within 0.5 s, so the message is not scored.",
        "warning",
    )
    program.write_text("#!/bin/sh\necho 'cannot read rules' >&2\nexit 3\n")
    failed = spam_score(SPAMMY)
    assert failed is not None and failed.severity == "warning"
    assert failed.message == "SpamAssassin failed with exit status 3: cannot read rules."


# --- templates ---------------------------------------------------------------------------------


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    (folder / "email").mkdir(parents=True)
    (folder / "email" / "syntax.html.j2").write_text(
        "<p>fine</p>\n<p>{{ site.name }}</p>\n{% if posts %}\n<p>never closed</p>\n"
    )
    (folder / "email" / "digest.html.j2").write_text(
        "<h1>{{ site.name }}</h1>\n{% for post in posts %}\n{% include 'email/post.html.j2' %}\n"
        "{% endfor %}\n"
    )
    (folder / "email" / "post.html.j2").write_text(
        "<article>\n<h2>{{ post.title }}</h2>\n<p>{{ post.summary_html }}</p>\n</article>\n"
    )
    (folder / "email" / "sum.html.j2").write_text("one\ntwo\n{{ 1 + site.name }}\n")
    return folder


VARIABLES = {"site": {"name": "Riverside"}, "posts": [{"title": "One"}]}


def test_a_template_syntax_error_is_named_by_file_and_line(templates: Path) -> None:
    env = email_environment(templates, autoescape=True)
    with pytest.raises(TemplateSyntaxError) as raised:
        env.get_template("email/syntax.html.j2")
    problem = template_problem(raised.value, templates)
    assert problem.kind == "template" and problem.severity == "error"
    assert problem.where == "templates/email/syntax.html.j2:4"  # where the file ends
    assert "endif" in problem.message


def test_an_undefined_field_while_rendering_is_named_at_the_innermost_template(
    templates: Path,
) -> None:
    env = email_environment(templates, autoescape=True)
    with pytest.raises(UndefinedError) as raised:
        env.get_template("email/digest.html.j2").render(VARIABLES)
    problem = template_problem(raised.value, templates)
    assert problem.where == "templates/email/post.html.j2:3"
    assert problem.message == 'A mapping has no field "summary_html" (a mapping has title).'
    # The same through syndicate's renderer, which raises its own TemplateProblem.
    with pytest.raises(Exception) as again:
        render_template(env, templates, "email/digest.html.j2", VARIABLES)
    assert template_problem(again.value, templates) == problem


def test_a_type_error_in_an_expression_is_named_by_file_and_line(templates: Path) -> None:
    env = email_environment(templates, autoescape=True)
    with pytest.raises(TypeError) as raised:
        env.get_template("email/sum.html.j2").render(VARIABLES)
    problem = template_problem(raised.value, templates)
    assert problem.where == "templates/email/sum.html.j2:3"
    assert problem.message == "Unsupported operand type(s) for +: 'int' and 'str'."


def test_a_config_error_names_the_config_file(tmp_path: Path) -> None:
    error = ConfigError(
        [
            f"{tmp_path / 'config.toml'}: [digest] subject: field required",
            f"{tmp_path / 'config.toml'}: [site] url: not a URL",
        ]
    )
    problem = template_problem(error, tmp_path / "templates")
    assert problem.where == "config.toml"
    assert problem.message == "[digest] subject: field required; [site] url: not a URL."
