"""HTML pages from the admin's Jinja2 templates: the monthly archives and their index.

Admins edit the templates under `<config dir>/templates/web/`, so they are untrusted in two
ways: they may try things a template should not (hence the sandbox), and they make mistakes
(hence StrictUndefined, and errors that name the template file and line instead of a
traceback into Jinja's internals).

Post fields reach the templates as plain text and are escaped by autoescape; nothing here
marks them safe. The output holds no build time, so the same page renders to the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from zoneinfo import ZoneInfo

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateRuntimeError,
    TemplateSyntaxError,
    Undefined,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from syndicate.errors import TemplateError as SyndicateTemplateError
from syndicate.publish.document import ArchivePage

ARCHIVE_TEMPLATE = "web/archive.html.j2"
ARCHIVE_INDEX_TEMPLATE = "web/archive-index.html.j2"

# The whole site's feeds, linked from every page (footer and <head> autodiscovery).
_FEED_TYPES = {
    "rss": ("RSS", "application/rss+xml"),
    "atom": ("Atom", "application/atom+xml"),
    "json": ("JSON Feed", "application/feed+json"),
}

# Fixed English names rather than strftime's %B, which follows the process locale: the same
# page must render to the same bytes on every machine.
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


class TemplateProblem(SyndicateTemplateError, ValueError):
    """A template cannot be loaded or rendered. The message reads "file:line: reason".

    `template` is the file as admins know it ("templates/web/archive.html.j2"); `line` is
    None when the problem has no line (a template that does not exist).
    """

    def __init__(self, template: str, line: int | None, reason: str) -> None:
        self.template = template
        self.line = line
        self.reason = reason
        where = f"{template}:{line}" if line is not None else template
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class FeedLink:
    """One of the site's feeds as templates see it: `feed.label`, `feed.type`, `feed.url`."""

    format: str  # "rss"
    label: str  # "RSS"
    type: str  # "application/rss+xml"
    url: str


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
        unknown = [f for f in wanted if f not in _FEED_TYPES]
        if unknown:
            raise ValueError(f"unknown feed format(s): {', '.join(unknown)}")
        self.formats = tuple(f for f in _FEED_TYPES if f in wanted)
        # Absolute, so the filenames Jinja reports can be shown relative to the config dir.
        self.templates_dir = templates_dir.resolve()
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(self.templates_dir, encoding="utf-8"),
            # Every template this renderer loads is an HTML page; escaping by default means a
            # template with an unexpected extension fails safe rather than open.
            autoescape=select_autoescape(
                enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2", "xml.j2"),
                default_for_string=True,
                default=True,
            ),
            # A misspelt variable must be an error an admin sees, not a silently empty line.
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # Files end with a newline like any other text file.
            keep_trailing_newline=True,
        )
        self.env.filters["date"] = _date
        self.env.filters["isodate"] = _isodate

    def render_archive(self, page: ArchivePage) -> bytes:
        """One month's page ("Archive for December 2015")."""
        return self.render(ARCHIVE_TEMPLATE, self._page_context(page))

    def render_archive_index(self, page: ArchivePage) -> bytes:
        """The list of months with posts."""
        return self.render(ARCHIVE_INDEX_TEMPLATE, self._page_context(page))

    def render(self, name: str, context: Mapping[str, object]) -> bytes:
        """Render any template in the folder as UTF-8; raises TemplateProblem.

        The `date` filter reads the site timezone from the `timezone` variable (an IANA
        name), so a context for it should carry one; UTC is assumed otherwise.
        """
        try:
            template = self.env.get_template(name)
            text = template.render(context)
        except TemplateSyntaxError as exc:
            # Raised while compiling: it knows its file and line, the traceback does not.
            path = exc.filename or exc.name or name
            raise TemplateProblem(self._display(path), exc.lineno, exc.message or "") from exc
        except TemplateNotFound as exc:
            # Either `name` itself is missing, or a template extends/includes a missing one.
            where = self._template_frame(exc.__traceback__)
            if where is None:
                raise TemplateProblem(
                    self._display(str(self.templates_dir / name)), None, "template not found"
                ) from exc
            raise TemplateProblem(where[0], where[1], f"template {exc.name!r} not found") from exc
        except Exception as exc:
            # UndefinedError, SecurityError from the sandbox, or a plain TypeError from an
            # expression like `1 + "a"`: all mistakes in a template when raised from one.
            # Jinja rewrites the traceback so template frames carry the template's filename
            # and line (jinja2.debug.rewrite_traceback_stack); the innermost one is the culprit.
            where = self._template_frame(exc.__traceback__)
            if where is None:
                raise
            reason = (exc.message if isinstance(exc, TemplateError) else None) or str(exc)
            raise TemplateProblem(where[0], where[1], reason) from exc
        return text.encode("utf-8")

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
            FeedLink(f, _FEED_TYPES[f][0], _FEED_TYPES[f][1], f"{feeds_url}/index.{f}")
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
        }

    def _template_frame(self, tb: TracebackType | None) -> tuple[str, int] | None:
        """The innermost traceback frame inside a template file, as (display name, line)."""
        found = None
        while tb is not None:
            filename = tb.tb_frame.f_code.co_filename
            if Path(filename).is_relative_to(self.templates_dir):
                found = (self._display(filename), tb.tb_lineno)
            tb = tb.tb_next
        return found

    def _display(self, filename: str) -> str:
        """The template's path as admins see it, from the config dir: "templates/web/x.j2"."""
        path = Path(filename)
        try:
            return path.relative_to(self.templates_dir.parent).as_posix()
        except ValueError:
            return path.as_posix()


def _in_site_zone(context: Context, value: object, filter_name: str) -> datetime:
    if isinstance(value, Undefined):
        # StrictUndefined raises on use with a message naming the missing variable, which is
        # clearer than "expected a datetime".
        str(value)
    if not isinstance(value, datetime):
        raise TemplateRuntimeError(
            f"the {filter_name} filter needs a datetime, not {type(value).__name__}"
        )
    if value.tzinfo is None:
        # Posts carry aware UTC times; a naive one would be shown in an unknown zone.
        raise TemplateRuntimeError(f"the {filter_name} filter needs an aware datetime")
    zone = context.get("timezone") or "UTC"
    return value.astimezone(ZoneInfo(str(zone)))


@pass_context
def _date(context: Context, value: object) -> str:
    """`{{ post.published|date }}` -> "8 December 2015", in the site timezone."""
    moment = _in_site_zone(context, value, "date")
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"


@pass_context
def _isodate(context: Context, value: object) -> str:
    """`{{ post.published|isodate }}` -> "2015-12-08T10:30:00+01:00", for <time datetime>."""
    return _in_site_zone(context, value, "isodate").isoformat()
