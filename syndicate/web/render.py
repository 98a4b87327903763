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

Every page is in one language (`language`, a PageLanguage: web/language.py says how it is
chosen): its template's words through gettext, the words routes pass in through
`words(language)` (`words.gettext("Check your email")`, written literally so `pybabel
extract` finds them), and, when the site offers several, the switch (`language_switch`) and,
on pages anyone may link to, the hreflang links (`alternates`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.responses import HTMLResponse

from syndicate.config import Settings
from syndicate.i18n import Translator, translator
from syndicate.languages import language_name
from syndicate.publish.document import Alternate, LanguageLink
from syndicate.publish.pages import PageRenderer, TemplateProblem, root_from
from syndicate.web.language import PageLanguage, default_language

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
        self.default_language = default_language(site.offered_languages)

    def words(self, language: PageLanguage | None = None) -> Translator:
        """The words of `language` (the site's default when None)."""
        tag = (language or self.default_language).tag
        return translator(tag, self.settings.locales_dir)

    def base_for(
        self, path: str, language: PageLanguage | None = None, *, alternates: bool = False
    ) -> dict[str, object]:
        """The base variables for a page at `path` in `language` (default: the site's),
        with its relative links; `alternates`: the page is one anyone may link to, so it
        names its other language versions (hreflang)."""
        site_url = root_from(path)
        feeds_url = f"{site_url}/feeds"
        links = {"site_url": site_url, "feeds_url": feeds_url}
        chosen = language or self.default_language
        return {
            **self.base,
            **links,
            "feeds": self.renderer.feeds(feeds_url),
            "language": chosen.tag,
            **page_languages(path, chosen, alternates=alternates),
        }

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
        language: PageLanguage | None = None,
        alternates: bool = False,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """Template `name` ("web/home.html.j2") with the base variables plus `context`,
        for a page at `path` (the request's URL path: links are relative to it), in
        `language` (the site's default when None).

        A TemplateProblem is logged ("templates/web/home.html.j2:12: 'x' is undefined") and
        answered with a 500 page; the visitor never sees the template's internals.
        """
        base = self.base_for(path, language, alternates=alternates)
        try:
            body = self.renderer.render(name, {**base, **context})
        except TemplateProblem as problem:
            log.error("cannot render page: %s", problem)
            return self.error_page(500, path=path, language=language)
        return HTMLResponse(body, status_code=status, headers=_with_language(headers, base))

    def message(
        self,
        title: str,
        text: str,
        *,
        path: str,
        language: PageLanguage | None = None,
        status: int = 200,
        link: tuple[str, str] | None = None,
    ) -> HTMLResponse:
        """A simple page: a heading, one paragraph, optionally a link as (url, label); a
        url starting with "/" is a page of this site, linked relative to `path`. The
        caller words them in `language` (words())."""
        context = {"title": title, "message": text, "link": _link(path, link)}
        base = self.base_for(path, language)
        try:
            body = self.renderer.render(MESSAGE_TEMPLATE, {**base, **context})
        except TemplateProblem as problem:
            log.error("cannot render page: %s", problem)
            return _plain(status if status >= 400 else 500, title, text)
        return HTMLResponse(body, status_code=status, headers=_with_language(None, base))

    def error_page(
        self, status: int, *, path: str, language: PageLanguage | None = None
    ) -> HTMLResponse:
        """The page for an HTTP error status (404, 405, 413, 500...) at `path`."""
        words = self.words(language)
        title, text = error_text(words, status)
        link = ("/", words.gettext("Go to the home page")) if status in (404, 405) else None
        return self.message(title, text, path=path, language=language, status=status, link=link)


def page_languages(
    path: str, language: PageLanguage, *, alternates: bool
) -> dict[str, tuple[LanguageLink, ...] | tuple[Alternate, ...]]:
    """The switch and hreflang links of the app's page at `path` in `language`: every
    version is this same URL with `?lang=` (which web/language.py honours before anything
    else), the plain URL being the one that follows the reader's browser (x-default)."""
    if not language.multilingual:
        return {"language_switch": (), "alternates": ()}
    switch = tuple(
        LanguageLink(tag, language_name(tag), f"?lang={tag}", tag == language.tag)
        for tag in language.offered
    )
    found: tuple[Alternate, ...] = ()
    if alternates:
        here = path.rpartition("/")[2] or "./"
        found = (
            *(Alternate(tag, f"{here}?lang={tag}") for tag in language.offered),
            Alternate("x-default", here),
        )
    return {"language_switch": switch, "alternates": found}


def _with_language(headers: Mapping[str, str] | None, base: Mapping[str, object]) -> dict[str, str]:
    # Content-Language says which version this is; only where there are several.
    found = dict(headers or {})
    if base.get("language_switch"):
        found.setdefault("Content-Language", str(base["language"]))
    return found


def _link(path: str, link: tuple[str, str] | None) -> dict[str, str] | None:
    return {"url": WebPages.link(path, link[0]), "label": link[1]} if link else None


def _plain(status: int, title: str, text: str) -> HTMLResponse:
    # The last resort when even the message template is broken: no template, no markup.
    # An HTMLResponse by class (callers' signatures stay simple) but text/plain on the wire.
    return HTMLResponse(f"{title}\n\n{text}\n", status_code=status, media_type="text/plain")


def plain_error(status: int) -> HTMLResponse:
    """An error page that needs no template (used when the app's services are unavailable)."""
    title, text = error_text(translator(None, None), status if status in ERRORS else 500)
    return _plain(status, title, text)


# The statuses with a page of their own; any other 4xx is told as 400, 5xx as 500.
ERRORS = (400, 404, 405, 413, 500)


def error_text(words: Translator, status: int) -> tuple[str, str]:
    """(title, sentence) of the error page for `status`, in `words`' language. Each a
    literal gettext call, so `pybabel extract` finds it."""
    if status == 404:
        return words.gettext("Page not found"), words.gettext("There is no page at this address.")
    if status == 405:
        return words.gettext("Method not allowed"), words.gettext(
            "This page cannot be used that way."
        )
    if status == 413:
        return words.gettext("Request too large"), words.gettext(
            "What you sent is larger than this site accepts."
        )
    if status >= 500:
        return words.gettext("Something went wrong"), words.gettext(
            "The site could not show this page. Please try again later."
        )
    return words.gettext("Bad request"), words.gettext("The request could not be understood.")
