"""What the subscription pages share: the linked subscriber, the page for a bad link, form
values, and the categories offered.

The routes live in subscription.py (subscribe, confirm) and preferences.py (unsubscribe,
preferences); this module has no routes.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from syndicate import categories, subscribers
from syndicate.i18n import Translator
from syndicate.models import Subscriber
from syndicate.subscribers import InvalidLink, InvalidName
from syndicate.web.language import PageLanguage, request_language
from syndicate.web.services import WebServices, services

# For every page reached through a signed link: the token in the URL is the key to someone's
# subscription and must not leak to another site (Referer) or a shared cache.
# "same-origin", not "no-referrer": the URL goes only with requests to this very site (which
# has the token anyway), never to another; and the page's own forms then post with a real
# Origin header, which "no-referrer" would turn into "null" (see csrf.py).
PRIVATE = {"Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


# What a form that sent a category (a language) the site does not offer gets back (400).
def unknown_category(words: Translator) -> str:
    return words.gettext("Please choose among the categories listed.")


def unknown_language(words: Translator) -> str:
    return words.gettext("Please choose among the languages listed.")


def unknown_choice(words: Translator) -> str:
    return words.gettext("Please choose among the options listed.")


def invalid_name(words: Translator, error: InvalidName) -> str:
    """Why a name was refused: the check's own English reason for an English page, the
    catalog's sentence for the others."""
    if words.english:
        return sentence(str(error))
    return words.gettext("Please give a name of at most %(max)s characters, on one line.") % {
        "max": words.number(subscribers.NAME_MAX_LENGTH)
    }


def same_language(language: PageLanguage, url: str) -> str:
    """`url` (a form's action) in the language the reader chose with the switch on this
    request: a page reached through a signed link is otherwise in the subscriber's stored
    language, and the answer to its form must not switch back."""
    return f"{url}?lang={language.tag}" if language.explicit else url


async def offered_categories(web: WebServices) -> list[str]:
    """The categories a subscriber can choose: the site's (syndicate/categories.py), the
    same on the home page, /subscribe and /preferences."""
    site = categories.SiteCategories.of(web.settings)
    if not site.needs_posts:
        return site.offered()
    # Every stored post's categories count: worked out once per change of the posts.
    names = await web.post_categories.get(
        web.settings, web.settings.templates_dir, web.store.post_categories
    )
    return site.offered(names)


async def linked_subscriber(request: Request, purpose: str) -> Subscriber:
    web = services(request)
    return await subscribers.subscriber_for_link(
        web.tokens, web.store, purpose, request.path_params["token"]
    )


def site_link(request: Request, purpose: str, subscriber: Subscriber) -> str:
    """A freshly signed /<purpose>/<token> link, relative to the page being answered: the
    visitor stays on the host they came on (emails carry the `[site] url` ones)."""
    web = services(request)
    return web.pages.link(request.url.path, f"/{purpose}/{web.tokens.sign(purpose, subscriber)}")


def invalid_link_page(request: Request, error: InvalidLink) -> Response:
    """400 for a forged or outdated link, 410 for an expired one; nothing was changed."""
    pages = services(request).pages
    language = request_language(request)
    words = pages.words(language)
    if error.expired:
        title = words.gettext("This link has expired")
        text = words.gettext(
            "Links in our emails work for a limited time. You can subscribe again to get a new one."
        )
    else:
        title = words.gettext("This link is not valid")
        text = words.gettext(
            "It may have been cut short when it was copied, or it is no longer in use. "
            "Nothing has been changed. You can subscribe again from the form."
        )
    response = pages.message(
        title,
        text,
        path=request.url.path,
        language=language,
        status=410 if error.expired else 400,
        link=("/subscribe", words.gettext("Subscribe again")),
    )
    response.headers.update(PRIVATE)
    return response


def form_values(form: FormData) -> dict[str, Any]:
    def text(key: str) -> str:
        value = form.get(key)
        return value if isinstance(value, str) else ""

    categories = [value for value in form.getlist("categories") if isinstance(value, str)]
    return {
        "email": text("email"),
        "name": text("name"),
        "categories": categories,
        "language": text("language"),
        "other_languages": text("other_languages"),
    }


def public(subscriber: Subscriber) -> dict[str, Any]:
    """What templates may show of a subscriber."""
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "categories": list(subscriber.categories),
    }


def sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
