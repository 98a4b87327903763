"""/unsubscribe/<token> and /preferences/<token>: the pages behind a digest's links.

    GET  /unsubscribe/<token>       a page with an Unsubscribe button; changes nothing
    POST /unsubscribe/<token>       RFC 8058 one-click (List-Unsubscribe=One-Click): 200
    GET  /preferences/<token>       name and categories
    POST /preferences/<token>       saves them (CSRF-protected)

Scanners prefetch `List-Unsubscribe` URLs and the links in an email, so a GET only shows a
button, and the POST unsubscribes. The mail provider's one-click POST comes without cookies,
CSRF token or Origin, so that POST needs nothing but the signed link, and it answers 200 with
no redirect (RFC 8058). Both pages are sent with forms.PRIVATE's headers.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from syndicate import subscribers
from syndicate.categories import UnknownCategory, pick
from syndicate.digest.issue import OTHER_LANGUAGES
from syndicate.i18n import Translator
from syndicate.languages import language_name
from syndicate.models import Subscriber
from syndicate.statuses import SubscriberStatus
from syndicate.subscribers import InvalidLink, InvalidName
from syndicate.web.csrf import check_csrf, csrf_token
from syndicate.web.forms import (
    PRIVATE,
    form_values,
    invalid_link_page,
    invalid_name,
    linked_subscriber,
    offered_categories,
    public,
    same_language,
    site_link,
    unknown_category,
    unknown_choice,
    unknown_language,
)
from syndicate.web.language import PageLanguage, request_language
from syndicate.web.services import services

log = logging.getLogger(__name__)

UNSUBSCRIBE_PAGE = "web/unsubscribe.html.j2"
PREFERENCES_PAGE = "web/preferences.html.j2"


# -- unsubscribe -------------------------------------------------------------------------


async def unsubscribe_page(request: Request) -> Response:
    """Shows what the button would do; never changes anything (link scanners GET this)."""
    try:
        subscriber = await linked_subscriber(request, "unsubscribe")
    except InvalidLink as error:
        return invalid_link_page(request, error)
    return await _unsubscribe_view(request, subscriber, done=False)


async def unsubscribe(request: Request) -> Response:
    """RFC 8058 one-click, and the page's button (which posts the same field).

    Any POST to a valid link unsubscribes, with or without `List-Unsubscribe=One-Click`:
    a POST is never a prefetch, the signed token is the authorisation, and a provider that
    words its body differently must still get the person off the list.
    """
    web = services(request)
    try:
        subscriber = await subscribers.unsubscribe_by_link(
            web.tokens, web.store, request.path_params["token"], web.clock.now()
        )
    except InvalidLink as error:
        return invalid_link_page(request, error)
    if subscriber is not None:
        log.info("unsubscribed subscriber %s on the web", subscriber.id)
    return await _unsubscribe_view(request, subscriber, done=True)


async def _unsubscribe_view(
    request: Request, subscriber: Subscriber | None, *, done: bool
) -> Response:
    # `subscriber` None: forgotten since the email was sent; they get nothing either way,
    # and the one-click caller must see success.
    web = services(request)
    language = request_language(request, subscriber.language if subscriber else None)
    action = web.pages.link(request.url.path, f"/unsubscribe/{request.path_params['token']}")
    context: dict[str, Any] = {
        "title": web.pages.words(language).gettext("Unsubscribe"),
        "subscriber": public(subscriber) if subscriber else None,
        "done": done,
        # The button posts back to this very link (the token as it came, not a new one),
        # on the host the page came from.
        "action": same_language(language, action),
        "subscribed": subscriber is not None and subscriber.status != SubscriberStatus.UNSUBSCRIBED,
        "preferences": None,
    }
    if subscriber is not None and subscriber.status != SubscriberStatus.UNSUBSCRIBED:
        context["preferences"] = await _preferences_form(request, subscriber, {}, language)
    return web.pages.render(
        UNSUBSCRIBE_PAGE, context, path=request.url.path, language=language, headers=PRIVATE
    )


# -- preferences -------------------------------------------------------------------------


async def preferences_page(request: Request) -> Response:
    try:
        subscriber = await linked_subscriber(request, "preferences")
    except InvalidLink as error:
        return invalid_link_page(request, error)
    return await _preferences_view(request, subscriber, {})


async def save_preferences(request: Request) -> Response:
    web = services(request)
    try:
        subscriber = await linked_subscriber(request, "preferences")
    except InvalidLink as error:
        return invalid_link_page(request, error)
    form = await request.form()
    values = form_values(form)
    # The token in the URL proves whose preferences these are, but a URL leaks (a forwarded
    # email, browser history, a proxy's log), and another site that has it could change
    # them silently with a hidden form. The CSRF check makes the change come from this page.
    words = web.pages.words(request_language(request, subscriber.language))
    problem = check_csrf(request, form)
    if problem:
        log.warning("preferences refused: %s", problem)
        error = words.gettext(
            "This form had expired or did not come from this site. Please save it again."
        )
        return await _preferences_view(request, subscriber, values, error=error, status=403)
    # A category chosen earlier that the site no longer offers may be kept (it is shown).
    allowed = [*await offered_categories(web), *subscriber.categories]
    try:
        chosen = pick(values["categories"], allowed)
    except UnknownCategory:
        return await _preferences_view(
            request, subscriber, values, error=unknown_category(words), status=400
        )
    offered_languages = web.settings.site.offered_languages
    language = values["language"] or None
    if language is not None and language not in offered_languages:
        return await _preferences_view(
            request, subscriber, values, error=unknown_language(words), status=400
        )
    # "": the site's choice; no field (one language offered): left as it is.
    other_languages = values["other_languages"] if "other_languages" in form else None
    if other_languages not in (None, "", *OTHER_LANGUAGES):
        return await _preferences_view(
            request, subscriber, values, error=unknown_choice(words), status=400
        )
    try:
        updated = await subscribers.update_preferences(
            web.store,
            subscriber.id or 0,
            name=values["name"],
            categories=chosen,
            language=language,
            other_languages=other_languages,
        )
    except InvalidName as error:
        return await _preferences_view(
            request, subscriber, values, error=invalid_name(words, error), status=400
        )
    except InvalidLink as error:
        return invalid_link_page(request, error)
    return await _preferences_view(request, updated, {}, saved=True)


async def _preferences_view(
    request: Request,
    subscriber: Subscriber,
    values: dict[str, Any],
    *,
    error: str | None = None,
    saved: bool = False,
    status: int = 200,
) -> Response:
    web = services(request)
    # After a save, the language just saved (unless the switch chose one for this page).
    language = request_language(request, subscriber.language)
    context: dict[str, Any] = {
        "title": web.pages.words(language).gettext("Your subscription"),
        "subscriber": public(subscriber),
        "subscribed": subscriber.status != SubscriberStatus.UNSUBSCRIBED,
        "saved": saved,
        "preferences": await _preferences_form(request, subscriber, values, language, error=error),
        "unsubscribe_url": site_link(request, "unsubscribe", subscriber),
    }
    return web.pages.render(
        PREFERENCES_PAGE,
        context,
        path=request.url.path,
        language=language,
        status=status,
        headers=PRIVATE,
    )


async def _preferences_form(
    request: Request,
    subscriber: Subscriber,
    values: dict[str, Any],
    language: PageLanguage,
    *,
    error: str | None = None,
) -> dict[str, Any]:
    """What preferences.html.j2 and unsubscribe.html.j2 need to draw the preferences form."""
    web = services(request)
    offered = await offered_categories(web)
    known = {c.casefold() for c in offered}
    # A category chosen earlier that no source offers any more stays visible, so it can be
    # unticked rather than lingering invisibly.
    extra = [c for c in subscriber.categories if c.casefold() not in known]
    chosen = values["categories"] if values else list(subscriber.categories)
    languages = web.settings.site.offered_languages
    return {
        # A choice only where there is one to make; each language named in itself.
        "languages": [(tag, language_name(tag)) for tag in languages] if len(languages) > 1 else [],
        "language": (values.get("language") if values else None)
        or subscriber.language
        or languages[0],
        # What they get of the other languages' posts ("": the site's choice), where there
        # are other languages.
        "other_languages": values.get("other_languages", "")
        if values
        else subscriber.other_languages or "",
        "other_languages_choices": _other_languages_choices(web.pages.words(language))
        if len(languages) > 1
        else [],
        "action": same_language(language, site_link(request, "preferences", subscriber)),
        "csrf_token": csrf_token(request),
        "categories": [*offered, *extra],
        "chosen": {c.casefold() for c in chosen},
        "name": values["name"] if values else subscriber.name,
        "error": error,
    }


def _other_languages_choices(words: Translator) -> list[tuple[str, str]]:
    """The choices for the posts in other languages than the reader's, as (value, label)."""
    return [
        ("", words.gettext("as the site chooses")),
        ("omit", words.gettext("leave them out")),
        ("link", words.gettext("list their titles")),
        ("include", words.gettext("include them in full")),
    ]
