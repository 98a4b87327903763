"""/: the site's front page. Latest posts, the feeds, the archive's months, the subscribe form.

Everything comes from the store, so the page is current even before the next publish. The
archive links point at the published month pages (/feeds/archive/YYYY-MM.html), grouped in
the site's time zone as publish groups them.

It is rendered once per change of what it shows and per language (the store's content
counter, the config, the templates: pagecache.py), not once per request, and every query
behind it stays the same size however many posts there are (the newest few, and a few index
lookups per month). Each visitor's copy gets its own CSRF token in place of TOKEN_SLOT.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from syndicate.config import Settings
from syndicate.i18n import Translator, translator
from syndicate.links import public_url, with_public_links
from syndicate.models import PostKey, SourceState
from syndicate.months import month_key, month_label, month_start
from syndicate.publish.pages import TemplateProblem, variant_path
from syndicate.store import Store
from syndicate.web.csrf import csrf_token
from syndicate.web.forms import offered_categories
from syndicate.web.language import PageLanguage, request_language
from syndicate.web.services import WebServices, services

log = logging.getLogger(__name__)

HOME_TEMPLATE = "web/home.html.j2"
HOME_PATH = "/"
LATEST = 10
# Where the rendered page has the CSRF token (URL-safe characters, so escaping keeps it).
TOKEN_SLOT = ("csrf-slot-" + secrets.token_hex(16)).encode()


@dataclass(frozen=True, slots=True)
class SourceLink:
    """How a post's source is shown: `source.title`, linked to `source.url` when known."""

    title: str
    url: str | None


@dataclass(frozen=True, slots=True)
class Month:
    key: str  # "2015-12"
    label: str  # "December 2015"
    count: int
    url: str


def routes() -> list[BaseRoute]:
    return [Route("/", home, methods=["GET", "HEAD"])]


async def home(request: Request) -> Response:
    web = services(request)
    language = request_language(request)
    # Rendered once per change of what it shows and per language (pagecache.py), with a
    # stand-in where the form's CSRF token goes; each visitor gets a fresh token of their
    # own in its place.
    try:
        page = await web.home_page(language.tag).get(
            web.pages, web.settings.templates_dir, lambda: _render(web, language)
        )
    except TemplateProblem as problem:
        log.error("cannot render page: %s", problem)
        return web.pages.error_page(500, path=HOME_PATH, language=language)
    body = page.replace(TOKEN_SLOT, csrf_token(request).encode())
    # The page carries a fresh CSRF token: shared caches must not hand one visitor's copy
    # to everyone.
    headers = {"cache-control": "no-store"}
    if language.multilingual:
        headers["content-language"] = language.tag
    return HTMLResponse(body, headers=headers)


async def _render(web: WebServices, language: PageLanguage) -> bytes:
    settings = web.settings
    pages = web.pages
    # Checked again here, not only at ingest: rows stored before that check may hold links
    # that must not be shown.
    posts = [with_public_links(post) for post in await web.store.recent_posts(LATEST)]
    context = {
        "title": settings.site.title,
        "description": settings.site.description,
        "posts": posts,
        "sources": source_links(settings, await web.store.source_states()),
        # Relative: the page works on whatever host serves it (publish.pages.root_from).
        "months": await stored_months(
            settings, web.store, feeds_url="./feeds", words=web.pages.words(language)
        ),
        "categories": await offered_categories(web),
        "csrf_token": TOKEN_SLOT.decode(),
        "form": {},
    }
    base = pages.base_for(HOME_PATH, language, alternates=True)
    return pages.renderer.render(HOME_TEMPLATE, {**base, **context})


async def stored_months(
    settings: Settings, store: Store, *, feeds_url: str, words: Translator | None = None
) -> list[Month]:
    """archive_months() of every stored post, from the store's month counts (a few index
    lookups per month) rather than from every post; named in `words`' language (default
    English), linked to the month pages in it (publish.pages.variant_path)."""
    zone = settings.site.tz
    default = settings.site.offered_languages[0] if words else None
    words = words or translator(None, None)
    counts = await store.month_counts(lambda moment: month_start(moment, zone))
    keys = [(month_key(start, zone), count) for start, count in counts]
    here = words.language

    def url(key: str) -> str:
        return f"{feeds_url}/{variant_path(f'archive/{key}.html', here, default or here)}"

    return [Month(m, words.month_label(m), n, url(m)) for m, n in keys]


def source_links(settings: Settings, states: list[SourceState]) -> dict[str, SourceLink]:
    """Each configured source's name as the archive pages credit it (build.py's rule)."""
    known = {state.name: state for state in states}
    links = {}
    for source in settings.sources:
        state = known.get(source.name)
        title = source.display_title(state.feed_title if state else None)
        links[source.name] = SourceLink(title, public_url(state.feed_link) if state else None)
    return links


def archive_months(
    settings: Settings, keys: list[PostKey], *, feeds_url: str | None = None
) -> list[Month]:
    """Months with posts, newest first, in the site's time zone (as publish groups them),
    linked under `feeds_url` (default: the public `[site] url`'s /feeds)."""
    zone = settings.site.tz
    counts: dict[str, int] = {}
    for key in keys:
        month = month_key(key.published, zone)
        counts[month] = counts.get(month, 0) + 1
    feeds_url = feeds_url or f"{settings.site.url}/feeds"
    return [
        Month(m, month_label(m), counts[m], f"{feeds_url}/archive/{m}.html")
        for m in sorted(counts, reverse=True)
    ]
