"""HTML pages from the admin's Jinja2 templates: the monthly archives and their index.

Admins edit the templates under `<config dir>/templates/web/`, so they are untrusted in two
ways: they may try things a template should not (hence the sandbox), and they make mistakes
(hence StrictUndefined, and errors that name the template file and line instead of a
traceback into Jinja's internals). The environment and rendering are syndicate.templating's,
shared with the emails; this module adds what pages know (their templates and context).

Post fields reach the templates as plain text and are escaped by autoescape; nothing here
marks them safe. The output holds no build time, so the same page renders to the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from syndicate.languages import language_name
from syndicate.models import Post
from syndicate.publish.document import (
    FEED_TYPES,
    Alternate,
    ArchivePage,
    FeedEntry,
    FeedGroup,
    FeedLink,
    IssueLink,
    LanguageLink,
    MonthLink,
    feed_type,
)

# TemplateProblem is re-exported (the "as"): callers of the page renderer catch it from here.
from syndicate.templating import TemplateProblem as TemplateProblem
from syndicate.templating import page_environment, render_template

_SAMPLE_DATE = datetime(2015, 12, 8, 10, 0, tzinfo=UTC)

ARCHIVE_TEMPLATE = "web/archive.html.j2"
ARCHIVE_INDEX_TEMPLATE = "web/archive-index.html.j2"
FEEDS_TEMPLATE = "web/feeds.html.j2"
ISSUES_TEMPLATE = "web/digest-index.html.j2"


def root_from(path: str) -> str:
    """The site's root as a URL relative to a page at `path` (a URL path on the site):
    "/" and "/subscribe" give ".", "/confirm/<token>" "..", "/feeds/archive/2015-12.html"
    "../..". Pages link with it (`{{ site_url }}/subscribe`), so they work on whatever
    host and under whatever prefix they are served from: the public `[site] url`, or
    http://127.0.0.1:8080/ on the admin's machine. Only dots: nothing from the request.
    """
    depth = path.count("/") - 1 if path.startswith("/") else path.count("/")
    return "/".join([".."] * depth) if depth > 0 else "."


def variant_path(path: str, language: str, default: str) -> str:
    """Where the `language` version of the published page `path` is: the default language's
    keeps the page's own name (links and bookmarks from before stay good), another's has the
    tag before the extension: "archive/2015-12.html", "th" -> "archive/2015-12.th.html"."""
    if language == default:
        return path
    stem, dot, extension = path.rpartition(".")
    return f"{stem}.{language}.{extension}" if dot else f"{path}.{language}"


def page_languages(
    path: str, language: str, offered: Sequence[str]
) -> tuple[tuple[LanguageLink, ...], tuple[Alternate, ...]]:
    """The switch and the hreflang links of the published page `path` in `language`, for a
    site offering `offered` (the default first); none with one language.

    The switch links to each version's own file with `?lang=`: served by syndicate, the
    query sets the reader's choice (syndicate/web/language.py); served by any static web
    server, the file alone is the right page. The default's name is also what the web app
    answers in the reader's language, so it is x-default as well."""
    if len(offered) < 2:
        return (), ()
    default = offered[0]
    name = {tag: variant_path(path, tag, default).rpartition("/")[2] for tag in offered}
    switch = tuple(
        LanguageLink(tag, language_name(tag), f"{name[tag]}?lang={tag}", tag == language)
        for tag in offered
    )
    alternates = tuple(Alternate(tag, name[tag]) for tag in offered)
    return switch, (*alternates, Alternate("x-default", name[default]))


class PageRenderer:
    """Renders web pages from the templates folder (settings.templates_dir).

    Templates are named relative to that folder ("web/archive.html.j2"). Jinja reloads a
    template when its file changes, so one renderer can live as long as the process.
    `formats` are the feed formats the site publishes (settings.publish.formats): pages link
    only to feeds that exist.
    """

    def __init__(
        self, templates_dir: Path, formats: Iterable[str] = ("rss", "atom", "json")
    ) -> None:
        wanted = tuple(formats)
        unknown = [f for f in wanted if f not in FEED_TYPES]
        if unknown:
            raise ValueError(f"unknown feed format(s): {', '.join(unknown)}")
        self.formats = tuple(f for f in FEED_TYPES if f in wanted)
        # Absolute, so the filenames Jinja reports can be shown relative to the config dir.
        self.templates_dir = templates_dir.resolve()
        self.env = page_environment(self.templates_dir)

    def render_archive(self, page: ArchivePage) -> bytes:
        """One month's page ("Archive for December 2015")."""
        return self.render(ARCHIVE_TEMPLATE, self._page_context(page))

    def render_archive_index(self, page: ArchivePage) -> bytes:
        """The list of months with posts."""
        return self.render(ARCHIVE_INDEX_TEMPLATE, self._page_context(page))

    def render_feeds(self, page: ArchivePage, groups: Sequence[FeedGroup]) -> bytes:
        """/feeds/: every published feed, in `groups` (syndicate.publish.listings)."""
        return self.render(FEEDS_TEMPLATE, {**self._page_context(page), "groups": groups})

    def render_issues(self, page: ArchivePage, issues: Sequence[IssueLink]) -> bytes:
        """/feeds/digest/: the past digest issues ."""
        return self.render(ISSUES_TEMPLATE, {**self._page_context(page), "issues": issues})

    def check(self) -> list[str]:
        """Render the archive templates with sample data: "file:line: reason" per problem."""
        month = MonthLink("2015-12", "December 2015", 1, "https://example.org/feeds/archive/x")
        post = Post(
            source="sample",
            guid="sample",
            url="https://example.org/post",
            title="A sample post",
            published=_SAMPLE_DATE,
            updated=_SAMPLE_DATE,
            first_seen=_SAMPLE_DATE,
            content_hash="",
            authors=("A. Writer",),
            categories=("News",),
            excerpt="An excerpt.",
            discussion_url="https://example.org/t/1",
            reply_count=3,
        )
        page = ArchivePage(
            path="archive/2015-12.html",
            site_title="Sample site",
            site_url="https://example.org",
            feeds_url="https://example.org/feeds",
            language="en",
            title="Archive for December 2015",
            posts=(post,),
            months=(month,),
            previous=month,
            next=month,
            atom_url="https://example.org/feeds/archive/2015-12.atom",
        )
        problems = []
        sample_feed = feed_type("rss", "category/news.rss")
        groups = [FeedGroup("By category", (FeedEntry("News", "Posts in News.", (sample_feed,)),))]
        issues = [IssueLink("2015-12", "Sample: December 2015", "2015-12.html", _SAMPLE_DATE)]
        # The switch and hreflang links too: base.html.j2 draws them only on a site of
        # several languages, where a mistake in them would otherwise first show.
        switch, alternates = page_languages(page.path, "th", ("en", "th"))
        both = replace(page, language="th", languages=switch, alternates=alternates)
        renders = (
            lambda: self.render_archive(page),
            lambda: self.render_archive(both),
            lambda: self.render_archive_index(page),
            lambda: self.render_feeds(replace(page, title="Feeds"), groups),
            lambda: self.render_feeds(replace(page, title="Feeds"), []),
            lambda: self.render_issues(replace(page, title="Past issues"), issues),
            lambda: self.render_issues(replace(page, title="Past issues"), []),
        )
        for render in renders:
            try:
                render()
            except TemplateProblem as problem:
                problems.append(str(problem))
        return problems

    def render(self, name: str, context: Mapping[str, object]) -> bytes:
        """Render any template in the folder as UTF-8; raises TemplateProblem.

        The `date` filter reads the site timezone from the `timezone` variable (an IANA
        name), so a context for it should carry one; UTC is assumed otherwise.
        """
        return render_template(self.env, self.templates_dir, name, context).encode("utf-8")

    def has(self, name: str) -> bool:
        """Whether the folder holds template `name` ("web/feeds.html.j2")."""
        return (self.templates_dir / name).is_file()

    def fingerprint(self) -> str:
        """A hash of every file in the templates folder: pages change when templates do."""
        folder = self.templates_dir
        files = sorted(f for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else []
        digest = hashlib.sha256()
        for file in files:
            digest.update(file.relative_to(folder).as_posix().encode())
            digest.update(b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
        return digest.hexdigest()

    def feeds(self, feeds_url: str) -> tuple[FeedLink, ...]:
        """The site's feeds under `feeds_url`, in a fixed order (RSS, Atom, JSON Feed)."""
        return tuple(
            FeedLink(f, FEED_TYPES[f][0], FEED_TYPES[f][1], f"{feeds_url}/index.{f}")
            for f in self.formats
        )

    def _page_context(self, page: ArchivePage) -> dict[str, object]:
        # base.html.j2 reads a few top-level names rather than `page`, so other web pages
        # (the digest's "view in browser", the subscription pages) can extend it too.
        return {
            "page": page,
            "language": page.language,
            "title": page.title,
            "site_title": page.site_title,
            "site_url": page.site_url,
            "feeds_url": page.feeds_url,
            "feeds": self.feeds(page.feeds_url),
            "timezone": page.timezone,
            "language_switch": page.languages,
            "alternates": page.alternates,
        }
