"""Rendering a digest issue: the shared body once, then each subscriber's copy cheaply.

    renderer = DigestRenderer(settings.templates_dir, settings.digest.subject)
    rendered = renderer.render(context)                    # templates + CSS inlining, once
    html, text = rendered.personalise(subscriber, unsubscribe_url, preferences_url)  # each
    page = rendered.web_copy()                             # "view in browser", no personal data

Sending to many subscribers must not re-render templates or re-inline CSS for each one (the
benchmark asks for thousands of copies a second), so the body is rendered once with a
marker string in every personal value (`%%SYNDICATE-NAME%%`, `%%SYNDICATE-UNSUBSCRIBE%%`,
...). Markers are plain ASCII without characters HTML escapes, so they come out of
autoescaping and css-inline unchanged; the result is split once at the markers, and
personalise() joins the pieces with the subscriber's values, escaped for HTML in the HTML
part (values may sit in attributes, hence quote=True) and as they are in the text part.

Two things could break that, and both are stopped here: a feed smuggling a marker into a
post (an image URL ending in `%%SYNDICATE-EMAIL%%` would tell its owner every subscriber's
address), so marker look-alikes in the data are defused before rendering; and a template
changing a marker (`{{ subscriber.name|upper }}`), which is reported as a TemplateProblem
rather than sent as `%%Syndicate-Name%%`.

Templates live in `<templates>/email/`: digest.html.j2 (extending base.html.j2), styled by
style.css, and digest.txt.j2, rendered without autoescaping. Both run sandboxed with
StrictUndefined (FieldUndefined: a misspelt field is named as the template sees it), and
mistakes come back as TemplateProblem ("file:line: reason") like the web pages'. The
environments, rendering and CSS inlining are syndicate.templating's, shared with the pages and
the confirmation email; how a copy goes on the wire is syndicate.mail.wire's (MailCopy), so
this package knows nothing of mail.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from jinja2 import Template

from syndicate.digest.context import (
    DigestContext,
    DigestGroup,
    DigestPeriod,
    DigestPost,
    DigestSite,
    DigestSubscriber,
    DigestUrls,
)
from syndicate.i18n import catalog_file, catalog_languages, translator
from syndicate.plaintext import tidy
from syndicate.templating import (
    TemplateProblem,
    default_locales_dir,
    display_path,
    email_environment,
    inline_css,
    render_template,
    string_template_problem,
    template_problem,
)

HTML_TEMPLATE = "email/digest.html.j2"
TEXT_TEMPLATE = "email/digest.txt.j2"
SUBJECT = "[digest] subject"  # how problems with the subject setting are named

# The personal values, each with the marker that stands for it in the shared body.
_SLOTS = ("NAME", "EMAIL", "GREETING", "UNSUBSCRIBE", "PREFERENCES")
_MARKER = re.compile("%%SYNDICATE-(" + "|".join(_SLOTS) + ")%%")
# Something that looks like a marker: in any case, and URL-encoded (`|urlencode`).
_LOOKALIKE = re.compile(r"%(?:25)?%(?:25)?syndicate-", re.IGNORECASE)
# Where a look-alike in the data gets a word joiner (invisible) between its two "%".
_LOOKALIKE_START = re.compile(r"(%(?:25)?)(?=%(?:25)?syndicate-)", re.IGNORECASE)


def _marker(slot: str) -> str:
    return f"%%SYNDICATE-{slot}%%"


MARKED_SUBSCRIBER = DigestSubscriber(
    name=_marker("NAME"), email=_marker("EMAIL"), greeting=_marker("GREETING")
)

# What the web copy shows in place of the personal values.
NEUTRAL_GREETING = "Hello,"
# The web copy is published at <site>/feeds/digest/<period>.html, so this relative link leads
# to the site's home page when the digest does not know the site's address (see web_copy).
RELATIVE_HOME = "../../"
# From the web copy rendered for the web (DigestRenderer.render_web_copy), the site's root.
WEB_COPY_HOME = RELATIVE_HOME


class _Pieces:
    """A rendered part split at its markers: literal text, with slots filled per subscriber."""

    __slots__ = ("parts", "slots")

    def __init__(self, rendered: str) -> None:
        # re.split with a group: literal text at even indexes, slot names at odd ones.
        self.parts = _MARKER.split(rendered)
        self.slots = tuple((i, self.parts[i]) for i in range(1, len(self.parts), 2))

    def names(self) -> set[str]:
        return {name for _, name in self.slots}

    def literals(self) -> Iterator[str]:
        return iter(self.parts[::2])

    def fill(self, values: Mapping[str, str]) -> str:
        parts = self.parts.copy()
        for index, name in self.slots:
            parts[index] = values[name]
        return "".join(parts)


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    """An issue rendered once: `html` (CSS inlined) and `text` hold personal markers.

    Rebuilt from a stored issue with RenderedDigest(subject, html, text). `home_url` is where
    the web copy's unsubscribe and preferences links lead (the site's home page); "" means
    RELATIVE_HOME, right for the web copy where it is published.
    """

    subject: str
    html: str
    text: str
    home_url: str = ""
    # The previews' greeting for no one in particular, in the copy's language.
    neutral_greeting: str = NEUTRAL_GREETING
    _html: _Pieces = field(init=False, repr=False, compare=False)
    _text: _Pieces = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Split once here, so each personalise() is a few list copies and two joins.
        object.__setattr__(self, "_html", _Pieces(self.html))
        object.__setattr__(self, "_text", _Pieces(self.text))

    def personalise(
        self, subscriber: DigestSubscriber, unsubscribe_url: str, preferences_url: str
    ) -> tuple[str, str]:
        """(html, text) for one subscriber: cheap — no template rendering, no CSS inlining."""
        escaped, values = self.personal_values(subscriber, unsubscribe_url, preferences_url)
        return self._html.fill(escaped), self._text.fill(values)

    def personal_values(
        self, subscriber: DigestSubscriber, unsubscribe_url: str, preferences_url: str
    ) -> tuple[dict[str, str], dict[str, str]]:
        """What fills the slots of one subscriber's copy, by slot name: escaped for the HTML
        part, and as they are for the text part."""
        values = _personal(subscriber, unsubscribe_url, preferences_url)
        return _escaped(values), values

    @property
    def html_parts(self) -> tuple[str, ...]:
        """The HTML split at its markers: literal text at even indexes, slot names at odd
        ones (for syndicate.mail.wire, which fills them as bytes for the wire)."""
        return tuple(self._html.parts)

    @property
    def text_parts(self) -> tuple[str, ...]:
        """The text part split as html_parts is."""
        return tuple(self._text.parts)

    def web_copy(self) -> str:
        """The "view in browser" page: no name or address, "Hello,", and the unsubscribe and
        preferences links leading to the site's home page (a token-less link could not
        unsubscribe anyone, and the page is public)."""
        return self._html.fill(_escaped(self._neutral()))

    def text_copy(self) -> str:
        """The text part with the web copy's neutral values (previews)."""
        return self._text.fill(self._neutral())

    def _neutral(self) -> dict[str, str]:
        return _neutral(self.home_url or RELATIVE_HOME, self.neutral_greeting)


def _neutral(home: str, greeting: str = NEUTRAL_GREETING) -> dict[str, str]:
    """The personal slots of a copy for no one in particular; links lead to `home`."""
    return {
        "NAME": "",
        "EMAIL": "",
        "GREETING": greeting,
        "UNSUBSCRIBE": home,
        "PREFERENCES": home,
    }


def _from_web_copy(url: str, site_url: str) -> str:
    """`url` as a link from the web copy (<site>/feeds/digest/<period>.html): relative when
    it is inside the site, as it is."""
    if url == site_url or url == f"{site_url}/":
        return WEB_COPY_HOME
    if url.startswith(f"{site_url}/"):
        return WEB_COPY_HOME + url[len(site_url) + 1 :]
    return url


def _personal(
    subscriber: DigestSubscriber, unsubscribe_url: str, preferences_url: str
) -> dict[str, str]:
    """The values of the personal slots, by slot name."""
    return {
        "NAME": subscriber.name,
        "EMAIL": subscriber.email,
        "GREETING": subscriber.greeting,
        "UNSUBSCRIBE": unsubscribe_url,
        "PREFERENCES": preferences_url,
    }


def _escaped(values: Mapping[str, str]) -> dict[str, str]:
    return {name: escape(value, quote=True) for name, value in values.items()}


class DigestRenderer:
    """Renders digest issues from `<templates_dir>/email/` and the subject setting.

    Jinja reloads a template when its file changes and the stylesheet is read at each
    render, so one renderer can live as long as the process. With `sources` (what
    read_sources() returned when an issue was built) it renders those templates instead of
    the files, so a copy rendered later looks like the issue; problems are still named by
    the files' paths.
    """

    def __init__(
        self,
        templates_dir: Path,
        subject_template: str,
        *,
        sources: Mapping[str, str] | None = None,
        locales_dir: Path | None = None,
    ) -> None:
        # Absolute, so the filenames Jinja reports can be shown relative to the config dir.
        self.templates_dir = templates_dir.resolve()
        self.subject_template = subject_template
        self._sources = sources
        self.locales_dir = locales_dir or default_locales_dir(self.templates_dir)
        self.html_env = email_environment(
            self.templates_dir, autoescape=True, sources=sources, locales_dir=self.locales_dir
        )
        # Text is not HTML: escaping would show "Fish &amp; Ships" to the reader.
        self.text_env = email_environment(
            self.templates_dir, autoescape=False, sources=sources, locales_dir=self.locales_dir
        )
        self._subject: Template | None = None

    @staticmethod
    def read_sources(templates_dir: Path) -> dict[str, str]:
        """The email templates and stylesheet as they are now (path under `templates_dir` ->
        text), for an issue to keep and render with. A file that cannot be read is left out:
        rendering reports it if the digest uses it."""
        folder = templates_dir / "email"
        sources = {}
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file() and (path.suffix == ".j2" or path.name == "style.css"):
                with contextlib.suppress(OSError, UnicodeDecodeError):
                    name = path.relative_to(templates_dir).as_posix()
                    sources[name] = path.read_text(encoding="utf-8")
        return sources

    def render(self, context: DigestContext) -> RenderedDigest:
        """The shared parts of an issue, rendered once; raises TemplateProblem."""
        variables = self._variables(context)
        words = translator(str(variables["language"]), self.locales_dir)
        return RenderedDigest(
            subject=self._render_subject(variables),
            html=self._render_html(variables),
            text=self._render_text(variables),
            home_url=_home(context.site.url),
            neutral_greeting=words.gettext("Hello,"),
        )

    def render_web_copy(self, context: DigestContext) -> str:
        """The issue's public web copy, published at <site>/feeds/digest/<period>.html: the
        HTML template with `web_copy` true, so it greets no one, says nothing of "receiving
        this email" and links to subscribing instead of unsubscribing (templates that do not
        look at `web_copy` show their greeting; personal values are blank or lead home).
        Links into the site are relative to the page, so it works on any host serving it.
        """
        variables = self._variables(context, web_copy=True)
        html = render_template(self.html_env, self.templates_dir, HTML_TEMPLATE, variables)
        html = inline_css(self.templates_dir, html, self._sources)
        return _Pieces(html).fill(_escaped(_neutral(WEB_COPY_HOME)))

    def check(self) -> list[str]:
        """Render every email template with sample data, in English and in each language
        with a catalog (a translation with a misspelt "%(name)s" breaks every copy in its
        language, so its problems name the catalog): one "file:line: reason" per problem,
        [] when all is well."""
        problems: list[str] = []

        def attempt(step: Callable[..., object], *args: Any, catalog: str = "") -> None:
            try:
                step(*args)
            except TemplateProblem as problem:
                if str(problem) not in problems:  # else the template's own, said in English
                    problems.append(str(problem) + catalog)

        # Compiling every file catches syntax errors in templates the digest does not use.
        for name in self._email_templates():
            attempt(self._compile, name)
        for language in ["", *catalog_languages(self.locales_dir)]:
            found = catalog_file(self.locales_dir, language) if language else None
            shown = display_path(str(found), self.templates_dir) if found is not None else ""
            named = f" (translated by {shown})" if shown else ""
            # Both branches of the templates: an issue with posts and an empty one.
            for sample in (_sample_context(), _sample_context(empty=True)):
                sample = replace(sample, language=language)
                variables = self._variables(sample)
                for step in (self._render_html, self._render_text, self._render_subject):
                    attempt(step, variables, catalog=named)
                attempt(self.render_web_copy, sample, catalog=named)
        return problems

    # --- the parts -------------------------------------------------------------------------

    def _variables(self, context: DigestContext, *, web_copy: bool = False) -> dict[str, object]:
        """What templates see: the context's fields with markers for the personal values;
        for the web copy, links into the site relative to it."""
        shared = _defuse(context)
        site_url = shared.site.url.rstrip("/")
        urls = replace(
            shared.urls,
            unsubscribe=_marker("UNSUBSCRIBE"),
            preferences=_marker("PREFERENCES"),
            subscribe=f"{site_url}/subscribe",
            issues=f"{site_url}/feeds/digest/",
        )
        site = shared.site
        if web_copy:
            urls = replace(
                urls,
                view_in_browser=f"{shared.period.key}.html",
                archive=_from_web_copy(urls.archive, site_url),
                feeds=_from_web_copy(urls.feeds, site_url),
                subscribe=_from_web_copy(urls.subscribe, site_url),
                issues="./",
            )
            site = replace(site, url=WEB_COPY_HOME)
        marked = replace(shared, site=site, subscriber=MARKED_SUBSCRIBER, urls=urls)
        variables: dict[str, object] = {f.name: getattr(marked, f.name) for f in fields(marked)}
        # The date filter reads the zone from here, as on the web pages.
        variables["timezone"] = context.site.timezone
        variables["web_copy"] = web_copy
        # What the chrome is translated into, and what `lang` attributes compare with.
        variables["language"] = context.language or context.site.language
        return variables

    def _render_html(self, variables: Mapping[str, object]) -> str:
        html = render_template(self.html_env, self.templates_dir, HTML_TEMPLATE, variables)
        html = inline_css(self.templates_dir, html, self._sources)
        self._check_markers(HTML_TEMPLATE, html)
        return html

    def _render_text(self, variables: Mapping[str, object]) -> str:
        text = tidy(render_template(self.text_env, self.templates_dir, TEXT_TEMPLATE, variables))
        self._check_markers(TEXT_TEMPLATE, text)
        return text

    def _render_subject(self, variables: Mapping[str, object]) -> str:
        try:
            if self._subject is None:
                self._subject = self.text_env.from_string(self.subject_template)
            subject = self._subject.render(variables)
        except Exception as exc:
            problem = string_template_problem(exc, SUBJECT)
            if problem is None:
                raise
            raise problem from exc
        if _LOOKALIKE.search(subject):
            raise TemplateProblem(
                SUBJECT,
                None,
                "the subject is the same for every subscriber, so it cannot use subscriber.* "
                "or urls.unsubscribe/preferences",
            )
        # A header: CR or LF would end it (or start another one); tabs and runs of spaces
        # from the template's layout read badly in a subject line.
        return " ".join(subject.split())

    def _compile(self, name: str) -> None:
        env = self.text_env if name.endswith(".txt.j2") else self.html_env
        try:
            env.get_template(name)
        except Exception as exc:
            problem = template_problem(exc, self.templates_dir, name)
            if problem is None:
                raise
            raise problem from exc

    def _check_markers(self, name: str, rendered: str) -> None:
        """A changed marker would reach subscribers as gibberish; a missing unsubscribe link
        breaks the bulk-mail rules (RFC 8058 asks for a visible one too)."""
        pieces = _Pieces(rendered)
        shown = display_path(str(self.templates_dir / name), self.templates_dir)
        if any(_LOOKALIKE.search(literal) for literal in pieces.literals()):
            raise TemplateProblem(
                shown,
                None,
                "a personal value (subscriber.*, urls.unsubscribe, urls.preferences) was "
                "changed by a filter; print it as it is",
            )
        if "UNSUBSCRIBE" not in pieces.names():
            raise TemplateProblem(
                shown, None, "no unsubscribe link: the email must show {{ urls.unsubscribe }}"
            )

    def _email_templates(self) -> list[str]:
        folder = self.templates_dir / "email"
        if not folder.is_dir():
            return []
        return sorted(
            path.relative_to(self.templates_dir).as_posix()
            for path in folder.rglob("*.j2")
            if path.is_file()
        )


def _home(site_url: str) -> str:
    return site_url if site_url.endswith("/") else f"{site_url}/"


def _defuse(value: Any) -> Any:
    """`value` with marker look-alikes in its strings broken up, however deep they sit."""
    if isinstance(value, str):
        return _LOOKALIKE_START.sub("\\1\u2060", value) if "%" in value else value
    if is_dataclass(value) and not isinstance(value, type):
        return replace(value, **{f.name: _defuse(getattr(value, f.name)) for f in fields(value)})
    if isinstance(value, tuple | list):
        return type(value)(_defuse(item) for item in value)
    if isinstance(value, dict):
        return {key: _defuse(item) for key, item in value.items()}
    return value


# --- text ------------------------------------------------------------------------------------


def _sample_context(*, empty: bool = False) -> DigestContext:
    moment = datetime(2015, 12, 8, 10, 30, tzinfo=UTC)
    site = DigestSite(
        "Example News", "https://news.example", "News from the example", "en", "Europe/London"
    )
    period = DigestPeriod(
        "2015-12",
        "December 2015",
        datetime(2015, 12, 1, tzinfo=UTC),
        datetime(2016, 1, 1, tzinfo=UTC),
    )
    full = DigestPost(
        title="A post with everything",
        url="https://news.example/2015/12/everything/",
        excerpt="The first lines of the post.",
        image="https://news.example/images/everything.jpg",
        author="Ann Author",
        category="Projects",
        source="Example blog",
        date=moment,
        discussion_url="https://forum.example/t/everything/1",
        reply_count=12,
        categories=("Projects", "News"),
    )
    bare = DigestPost(
        title="A post with little",
        url="https://news.example/2015/12/little/",
        excerpt="",
        image=None,
        author="",
        category="",
        source="",
        date=moment,
        discussion_url=None,
        reply_count=None,
    )
    uncounted = replace(
        full,
        title="A post not yet discussed",
        discussion_url="https://forum.example/t/2",
        reply_count=None,
    )
    posts = () if empty else (full, bare, uncounted)
    groups = () if empty else (DigestGroup("Projects", (full, uncounted)), DigestGroup("", (bare,)))
    return DigestContext(
        site=site,
        period=period,
        groups=groups,
        posts=posts,
        urls=DigestUrls(
            view_in_browser="https://news.example/feeds/digest/2015-12.html",
            archive="https://news.example/feeds/archive/2015-12.html",
            feeds="https://news.example/feeds/index.rss",
        ),
        subscriber=DigestSubscriber("", "", NEUTRAL_GREETING),
        intro_html=""
        if empty
        else '<p>A <strong>busy</strong> month. <a href="https://news.example/">Home</a></p>',
        more=0 if empty else 2,
        preheader="3 posts from December 2015",
    )
