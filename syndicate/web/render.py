"""Web pages from the admins' templates (templates/web/), as Starlette responses.

    pages = services(request).pages
    return pages.render("web/home.html.j2", {"title": "Home", "posts": posts}, path=path)
    return pages.message("Check your inbox", "We sent you a link.", path=path, link=("/", "Home"))

`path` is the request's URL path. Links between the site's pages are relative to it
(`site_url` is "." on /, ".." on /confirm/<token>: publish.pages.root_from), so the pages work
on the host they are served from, and under a proxy's prefix: the admin trying it at
http://127.0.0.1:8080/ before `[site] url` exists, a second name, a staging copy. Only emails
and feeds carry the absolute `[site] url` (they are read elsewhere).

The rendering itself is PageRenderer's (syndicate/publish/pages.py): the same sandboxed,
autoescaped, StrictUndefined environment the static archive pages use, so an admin's
template behaves the same on disk and over HTTP. What this adds is the base variables every
page needs (base.html.j2: language, site_title, feeds...) and the rule that a broken template
is logged with its file:line and costs the visitor only a plain 500 page, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.responses import HTMLResponse

from syndicate.config import Settings
from syndicate.publish.pages import PageRenderer, TemplateProblem, root_from

log = logging.getLogger(__name__)

MESSAGE_TEMPLATE = "web/message.html.j2"


class WebPages:
    """Renders templates/web/*.j2 for the web app; one per app, lives as long as it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        formats = tuple(settings.publish.formats)
        self.renderer = PageRenderer(settings.templates_dir, formats=formats)
        site = settings.site
        # What base.html.j2 reads on every page (and the links of base_for(path)); a route's
        # context may override any of it.
        self.base: dict[str, object] = {
            "language": site.language,
            "title": site.title,
            "site_title": site.title,
            "site_description": site.description,
            "timezone": site.timezone,
        }

    def base_for(self, path: str) -> dict[str, object]:
        """The base variables for a page at `path`, with its relative links."""
        site_url = root_from(path)
        feeds_url = f"{site_url}/feeds"
        links = {"site_url": site_url, "feeds_url": feeds_url}
        return {**self.base, **links, "feeds": self.renderer.feeds(feeds_url)}

    @staticmethod
    def link(path: str, target: str) -> str:
        """`target` (a path on this site, "/preferences/<token>") relative to a page at
        `path`; anything else (an absolute URL) as it is."""
        if target.startswith("/") and not target.startswith("//"):
            return root_from(path) + target
        return target

    def render(
        self,
        name: str,
        context: Mapping[str, object],
        *,
        path: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """Template `name` ("web/home.html.j2") with the base variables plus `context`,
        for a page at `path` (the request's URL path: links are relative to it).

        A TemplateProblem is logged ("templates/web/home.html.j2:12: 'x' is undefined") and
        answered with a 500 page; the visitor never sees the template's internals.
        """
        try:
            body = self.renderer.render(name, {**self.base_for(path), **context})
        except TemplateProblem as problem:
            log.error("cannot render page: %s", problem)
            return self.error_page(500, path=path)
        return HTMLResponse(body, status_code=status, headers=dict(headers or {}))

    def message(
        self,
        title: str,
        text: str,
        *,
        path: str,
        status: int = 200,
        link: tuple[str, str] | None = None,
    ) -> HTMLResponse:
        """A simple page: a heading, one paragraph, optionally a link as (url, label); a
        url starting with "/" is a page of this site, linked relative to `path`."""
        context = {"title": title, "message": text, "link": _link(path, link)}
        try:
            body = self.renderer.render(MESSAGE_TEMPLATE, {**self.base_for(path), **context})
        except TemplateProblem as problem:
            log.error("cannot render page: %s", problem)
            return _plain(status if status >= 400 else 500, title, text)
        return HTMLResponse(body, status_code=status)

    def error_page(self, status: int, *, path: str) -> HTMLResponse:
        """The page for an HTTP error status (404, 405, 413, 500...) at `path`."""
        title, text = ERRORS.get(status, ERRORS[500] if status >= 500 else ERRORS[400])
        link = ("/", "Go to the home page") if status in (404, 405) else None
        return self.message(title, text, path=path, status=status, link=link)


def _link(path: str, link: tuple[str, str] | None) -> dict[str, str] | None:
    return {"url": WebPages.link(path, link[0]), "label": link[1]} if link else None


def _plain(status: int, title: str, text: str) -> HTMLResponse:
    # The last resort when even the message template is broken: no template, no markup.
    # An HTMLResponse by class (callers' signatures stay simple) but text/plain on the wire.
    return HTMLResponse(f"{title}\n\n{text}\n", status_code=status, media_type="text/plain")


def plain_error(status: int) -> HTMLResponse:
    """An error page that needs no template (used when the app's services are unavailable)."""
    title, text = ERRORS.get(status, ERRORS[500])
    return _plain(status, title, text)


ERRORS: dict[int, tuple[str, str]] = {
    400: ("Bad request", "The request could not be understood."),
    404: ("Page not found", "There is no page at this address."),
    405: ("Method not allowed", "This page cannot be used that way."),
    413: ("Request too large", "What you sent is larger than this site accepts."),
    500: ("Something went wrong", "The site could not show this page. Please try again later."),
}
