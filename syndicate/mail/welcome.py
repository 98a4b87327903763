"""The welcome email: sent once, when someone confirms their subscription.

    await send_welcome(settings, subscriber, transport, tokens, clock, latest_issue=url)

It says what they subscribed to, links to the latest issue already sent (its "view in
browser" copy, `latest_issue`, none before the first issue) and carries their preferences
and unsubscribe links (`[site] url`, signed like the digest's). `[digest] welcome = false`
turns it off (the caller, subscribers.confirm_subscription, checks that).

Templates: email/welcome.subject.j2, welcome.txt.j2 and welcome.html.j2, rendered exactly
as the confirmation's (confirm.py: sandboxed, StrictUndefined, HTML autoescaped, style.css
inlined, in the subscriber's language), with the same headers: written by
syndicate.mail.headers, the name as literal text, built and read back by
message.alternative_message, DKIM-signed when configured.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syndicate.mail.confirm import (
    ConfirmRenderer,
    ConfirmSite,
    ConfirmSubscriber,
    home_url,
    one_off_fields,
    one_off_variables,
    sender_address,
)
from syndicate.mail.dkim import dkim_signer_for
from syndicate.mail.message import alternative_message

if TYPE_CHECKING:
    from syndicate.clock import Clock
    from syndicate.config import Settings
    from syndicate.mail.transport import Transport
    from syndicate.models import Subscriber
    from syndicate.tokens import Tokens

SUBJECT_TEMPLATE = "email/welcome.subject.j2"
TEXT_TEMPLATE = "email/welcome.txt.j2"
HTML_TEMPLATE = "email/welcome.html.j2"
TEMPLATES = (SUBJECT_TEMPLATE, TEXT_TEMPLATE, HTML_TEMPLATE)


@dataclass(frozen=True, slots=True)
class WelcomeUrls:
    home: str
    preferences: str
    unsubscribe: str
    latest_issue: str | None  # the last issue sent, "view in browser"; None before the first


async def send_welcome(
    settings: Settings,
    subscriber: Subscriber,
    transport: Transport,
    tokens: Tokens,
    clock: Clock,
    *,
    latest_issue: str | None,
) -> None:
    """Build the welcome email for `subscriber` and hand it to `transport`.

    Raises what the transport raises (DeliveryError), TemplateProblem, ConfigError (DKIM),
    PermanentDeliveryError for an address it cannot write. The subscriber is not changed.
    """
    message = build_welcome(settings, subscriber, tokens, clock=clock, latest_issue=latest_issue)
    signer = dkim_signer_for(settings)
    if signer is not None:
        message = signer.sign(message)
    await transport.send(
        message, envelope_from=sender_address(settings), envelope_to=subscriber.email
    )


def build_welcome(
    settings: Settings,
    subscriber: Subscriber,
    tokens: Tokens,
    *,
    clock: Clock,
    latest_issue: str | None,
) -> bytes:
    """The welcome message as bytes (CRLF): multipart/alternative, text then HTML."""
    site = settings.site
    urls = WelcomeUrls(
        home=home_url(settings),
        preferences=tokens.link(site.url, "preferences", subscriber),
        unsubscribe=tokens.link(site.url, "unsubscribe", subscriber),
        latest_issue=latest_issue,
    )
    rendered = renderer(settings.templates_dir, settings.locales_dir).render(
        variables(settings, subscriber, urls)
    )
    fields = one_off_fields(settings, subscriber, rendered.subject, "welcome", clock=clock)
    return alternative_message(fields, rendered.text, rendered.html)


def variables(settings: Settings, subscriber: Subscriber, urls: WelcomeUrls) -> dict[str, Any]:
    """What the welcome templates see."""
    return {**one_off_variables(settings, subscriber), "urls": urls}


@functools.cache
def renderer(templates_dir: Path, locales_dir: Path | None = None) -> WelcomeRenderer:
    """One renderer per templates and catalogs folder, as confirm.renderer."""
    return WelcomeRenderer(templates_dir, locales_dir)


class WelcomeRenderer(ConfirmRenderer):
    """Renders the welcome email from `<templates_dir>/email/welcome.*.j2`."""

    templates = TEMPLATES

    def samples(self) -> list[dict[str, Any]]:
        """Both branches: a named subscriber with categories after an issue was sent, and
        an anonymous one before the first."""
        site = ConfirmSite("Example News", "https://news.example", "News from the example", "en")
        common: dict[str, Any] = {
            "site": site,
            "frequency": "monthly",
            "timezone": "UTC",
            "language": "en",
        }

        def urls(latest: str | None) -> WelcomeUrls:
            return WelcomeUrls(
                "https://news.example/",
                "https://news.example/preferences/sample-token",
                "https://news.example/unsubscribe/sample-token",
                latest,
            )

        named = ConfirmSubscriber("Ann", "ann@example.org", ("News", "Projects"), "web")
        anonymous = ConfirmSubscriber("", "bob@example.org", (), "cli")
        latest = "https://news.example/feeds/digest/2015-12.html"
        return [
            {**common, "subscriber": named, "urls": urls(latest)},
            {**common, "subscriber": anonymous, "urls": urls(None)},
        ]
