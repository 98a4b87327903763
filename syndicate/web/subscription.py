"""Subscribing on the web: the form, the confirmation link, unsubscribe and preferences.

    GET  /subscribe                 the form on a page of its own (the home page has it too)
    POST /subscribe                 email, name, categories, csrf_token -> "check your email"
    GET  /confirm/<token>           double opt-in: a page with a Confirm button; changes nothing
    POST /confirm/<token>           the button: makes the pending subscriber active, welcomes
    GET  /unsubscribe/<token>       a page with an Unsubscribe button; changes nothing
    POST /unsubscribe/<token>       RFC 8058 one-click (List-Unsubscribe=One-Click): 200
    GET  /preferences/<token>       name and categories
    POST /preferences/<token>       saves them (CSRF-protected)

Privacy first. POST /subscribe answers with the same page, byte for byte, whether the
address was new, pending, active, unsubscribed or forgotten, and whether the confirmation
email could be sent (a failure is logged; the subscriber stays pending and can simply
subscribe again): the form must not tell anyone who is on the list. Only a malformed address
or name, or a category the site does not offer (syndicate/categories.py), gets a different
answer (400, the form again with the error), whoever the address is. It is rate-limited per client
address (SUBSCRIBE_LIMIT per SUBSCRIBE_WINDOW, in memory: see ratelimit.py) because each
post may send an email to whatever address was typed; and CSRF-protected (csrf.py).

Confirming takes a click, like unsubscribing: mail scanners open the links in an email, and
a GET that confirmed would subscribe an address whose owner never wanted it. So the link in
the email (unchanged) shows a button; its POST confirms, then sends the welcome email
(subscribers.confirm_subscription; a failed welcome is logged, the confirmation stands). The
POST is CSRF-checked like the other forms: the signed link says whose subscription it is,
the form token and Origin that a person pressed the button on this site's page.
Shared pieces (the bad-link page, form values, the categories offered) are in forms.py.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from syndicate import subscribers
from syndicate.categories import UnknownCategory, pick
from syndicate.clock import Clock
from syndicate.errors import SyndicateError
from syndicate.models import Subscriber
from syndicate.statuses import SubscriberStatus
from syndicate.subscribers import InvalidLink, InvalidName, RejectedAddress
from syndicate.tokens import LIFETIMES
from syndicate.web.csrf import check_csrf, csrf_token
from syndicate.web.forms import (
    PRIVATE,
    form_values,
    invalid_link_page,
    invalid_name,
    offered_categories,
    public,
    same_language,
    site_link,
    unknown_category,
)
from syndicate.web.language import request_language
from syndicate.web.preferences import (
    preferences_page,
    save_preferences,
    unsubscribe,
    unsubscribe_page,
)
from syndicate.web.ratelimit import RateLimiter
from syndicate.web.services import services

log = logging.getLogger(__name__)

SUBSCRIBE_LIMIT = 5
SUBSCRIBE_WINDOW = timedelta(minutes=10)

SUBSCRIBE_PAGE = "web/subscribe.html.j2"
CONFIRM_PAGE = "web/confirm.html.j2"


def routes() -> list[BaseRoute]:
    return [
        Route("/subscribe", subscribe_page, methods=["GET"]),
        Route("/subscribe", subscribe, methods=["POST"]),
        Route("/confirm/{token}", confirm_page, methods=["GET"]),
        Route("/confirm/{token}", confirm, methods=["POST"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe, methods=["POST"]),
        Route("/preferences/{token}", preferences_page, methods=["GET"]),
        Route("/preferences/{token}", save_preferences, methods=["POST"]),
    ]


# -- subscribe and confirm ---------------------------------------------------------------


async def subscribe_page(request: Request) -> Response:
    return await _form_page(request, {})


async def subscribe(request: Request) -> Response:
    web = services(request)
    language = request_language(request)
    words = web.pages.words(language)
    retry_after = web.subscribe_limiter.hit(_client(request))
    if retry_after is not None:
        log.info("subscribe: rate limit for %s", _client(request))
        response = web.pages.message(
            words.gettext("Too many attempts"),
            words.gettext(
                "This form was sent too often from your network. Please wait a few minutes "
                "and try again."
            ),
            path=request.url.path,
            language=language,
            status=429,
            link=("/subscribe", words.gettext("Back to the form")),
        )
        response.headers["Retry-After"] = str(retry_after)
        return response
    form = await request.form()
    values = form_values(form)
    problem = check_csrf(request, form)
    if problem:
        log.warning("subscribe refused: %s", problem)
        error = words.gettext(
            "This form had expired or did not come from this site. Please send it again."
        )
        return await _form_page(request, values, error=error, status=403)
    try:
        subscribers.normalise_email(values["email"])
    except RejectedAddress as error:
        # "invalid address 'x': <why>" -> the why, which email-validator words for people,
        # in English: a reader of another language gets the sentence alone.
        why = str(error).rpartition(": ")[2] if values["email"].strip() and words.english else ""
        invalid = words.gettext("This email address is not valid.")
        text = f"{invalid} {why}" if why else words.gettext("Please enter your email.")
        return await _form_page(request, values, error=text.strip(), status=400)
    try:
        name = subscribers.clean_name(values["name"])
    except InvalidName as error:
        return await _form_page(request, values, error=invalid_name(words, error), status=400)
    try:
        chosen = pick(values["categories"], await offered_categories(web))
    except UnknownCategory:
        return await _form_page(request, values, error=unknown_category(words), status=400)
    try:
        await subscribers.subscribe(
            web.settings,
            web.store,
            web.transport,
            web.tokens,
            web.clock,
            values["email"],
            name=name,
            categories=chosen,
            source="web",
            # The language of the page they subscribed on, when they (the switch, the
            # cookie) or their browser chose it; else none, which is the site's first.
            language=language.chosen,
        )
    except RejectedAddress:
        pass  # a forgotten (suppressed) address: answered like any other, nothing is sent
    except SyndicateError as error:
        # Delivery or template trouble: the subscriber stays pending. Answering differently
        # would tell a visitor that this address was not yet active (active ones get no mail).
        log.error("subscribe: could not send the confirmation email: %s", error)
    days = LIFETIMES["confirm"].days
    return web.pages.message(
        words.gettext("Check your email"),
        words.ngettext(
            "If the address can be subscribed, an email with a confirmation link is on its "
            "way. Open the link within %(num)s day to start receiving the digest. Nothing "
            "arrived? Look in your spam folder, or fill in the form again for a new link.",
            "If the address can be subscribed, an email with a confirmation link is on its "
            "way. Open the link within %(num)s days to start receiving the digest. Nothing "
            "arrived? Look in your spam folder, or fill in the form again for a new link.",
            days,
        )
        % {"num": words.number(days)},
        path=request.url.path,
        language=language,
        link=("/", words.gettext("Back to the home page")),
    )


async def confirm_page(request: Request) -> Response:
    """The button; never changes anything (link scanners GET this)."""
    web = services(request)
    try:
        subscriber = await subscribers.subscriber_to_confirm(
            web.tokens, web.store, request.path_params["token"]
        )
    except InvalidLink as error:
        return invalid_link_page(request, error)
    if subscriber.status == SubscriberStatus.ACTIVE:
        return _subscribed_page(request, subscriber)
    return _confirm_view(request, subscriber)


async def confirm(request: Request) -> Response:
    web = services(request)
    token = request.path_params["token"]
    try:
        pending = await subscribers.subscriber_to_confirm(web.tokens, web.store, token)
    except InvalidLink as error:
        return invalid_link_page(request, error)
    form = await request.form()
    problem = check_csrf(request, form)
    if problem:
        log.warning("confirm refused: %s", problem)
        words = services(request).pages.words(request_language(request, pending.language))
        error = words.gettext(
            "This page had expired or did not come from this site. Press the button again."
        )
        return _confirm_view(request, pending, error=error, status=403)
    try:
        confirmed = await subscribers.confirm_subscription(
            web.settings, web.store, web.transport, web.tokens, web.clock, token
        )
    except InvalidLink as error:
        return invalid_link_page(request, error)
    if confirmed.newly:
        log.info("subscriber %s confirmed on the web", confirmed.subscriber.id)
    return _subscribed_page(request, confirmed.subscriber)


def _confirm_view(
    request: Request, subscriber: Subscriber, *, error: str | None = None, status: int = 200
) -> Response:
    web = services(request)
    language = request_language(request, subscriber.language)
    context = {
        "title": web.pages.words(language).gettext("Confirm your subscription"),
        "subscriber": public(subscriber),
        # The button posts back to this very link, on the host the page came from (in the
        # language chosen with the switch, if it was).
        "action": same_language(
            language,
            web.pages.link(request.url.path, f"/confirm/{request.path_params['token']}"),
        ),
        "csrf_token": csrf_token(request),
        "error": error,
    }
    return web.pages.render(
        CONFIRM_PAGE,
        context,
        path=request.url.path,
        language=language,
        status=status,
        headers=PRIVATE,
    )


def _subscribed_page(request: Request, subscriber: Subscriber) -> Response:
    web = services(request)
    language = request_language(request, subscriber.language)
    words = web.pages.words(language)
    response = web.pages.message(
        words.gettext("You are subscribed"),
        words.gettext("Thank you for confirming. The next %(site)s digest will come to %(email)s.")
        % {"site": web.settings.site.title, "email": subscriber.email},
        path=request.url.path,
        language=language,
        link=(
            site_link(request, "preferences", subscriber),
            words.gettext("Choose your categories"),
        ),
    )
    response.headers.update(PRIVATE)
    return response


def subscribe_limiter(clock: Clock) -> RateLimiter:
    """POST /subscribe's rate limit (WebServices.subscribe_limiter, which app.py builds)."""
    return RateLimiter(limit=SUBSCRIBE_LIMIT, window=SUBSCRIBE_WINDOW, clock=clock)


def _client(request: Request) -> str:
    # The peer address as uvicorn reports it; behind a reverse proxy, uvicorn's
    # --proxy-headers / forwarded_allow_ips make it the visitor's rather than the proxy's.
    return request.client.host if request.client else "unknown"


async def _form_page(
    request: Request, values: dict[str, Any], *, error: str | None = None, status: int = 200
) -> Response:
    web = services(request)
    language = request_language(request)
    context = {
        "title": web.pages.words(language).gettext("Subscribe"),
        "csrf_token": csrf_token(request),
        "categories": await offered_categories(web),
        "form": {**values, "error": error} if values or error else {},
    }
    return web.pages.render(
        SUBSCRIBE_PAGE,
        context,
        path=request.url.path,
        language=language,
        # The form page anyone may link to; the one a sent form comes back on is not.
        alternates=request.method == "GET",
        status=status,
    )
