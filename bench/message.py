"""Benchmark: the CPU cost of building one digest copy (MessageFactory.build) and its To line.

    python bench/message.py [--count 4000]

One 30-post issue rendered as bench/digest.py does, 8bit bodies (what bench/send.py sends).
Prints, for a plain name, no name, a non-ASCII name and a hostile encoded-word, the CPU time
of one build() and of its To line alone (time.process_time, best of 7 runs: the figures hold
on a busy machine), then the one-off cost of MessageFactory() per issue (it builds a sample
copy and reads it back with the `email` parser).
"""

from __future__ import annotations

import argparse
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from digest import REPO_CONFIG, make_context

import syndicate.mail.headers as headers
from syndicate.config import load_settings
from syndicate.digest.build import renderer_for
from syndicate.digest.context import DigestSubscriber
from syndicate.mail.message import MessageFactory
from syndicate.mail.wire import MailCopy
from syndicate.models import Subscriber

NAMES = {
    "plain": "Subscriber 54321",
    "no name": "",
    "non-ASCII": "Zoë Ångström-Łukasiewicz",
    "encoded-word": "=?utf-8?q?Eve=0D=0ABcc:_x@evil.org?=",
}


def best(call: Callable[[], object], number: int) -> float:
    """CPU seconds of one call, the best of 7 runs of `number`."""
    timer = timeit.Timer(call, timer=time.process_time)
    return min(timer.repeat(number=number, repeat=7)) / number


def to_line(name: str, address: str) -> bytes:
    """The To line as MessageFactory.build writes it."""
    return headers.mailbox_line("To", headers.printable(name), address)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=4000, help="builds per run")
    args = parser.parse_args()

    settings = load_settings(REPO_CONFIG)
    rendered = renderer_for(settings).render(make_context(30))

    def factory() -> MessageFactory:
        return MessageFactory(
            site_title=settings.site.title,
            site_url=settings.site.url,
            sender=settings.digest.sender,
            subject=rendered.subject,
            archive_url=f"{settings.site.url}/feeds/archive/index.html",
            eight_bit=True,
        )

    made = factory()
    copy = MailCopy(rendered)  # the wire-ready pieces, worked out once as a send does
    link = f"{settings.site.url}/unsubscribe/{'x' * 40}"
    print(f"{'name':<14} {'build':>10} {'To line':>10}")
    for label, name in NAMES.items():
        person = Subscriber(
            id=54321,
            email="subscriber54321@example.org",
            name=name,
            status="active",
            categories=(),
            consent_source="bench",
            consented_at=datetime(2015, 1, 1, tzinfo=UTC),
        )
        html, text = copy.bodies(DigestSubscriber.of(person.name, person.email), link, link)
        message_id = made.message_id(1, person.id)
        build = best(partial(made.build, person, html, text, link, message_id), args.count)
        to = best(partial(to_line, name, person.email), args.count * 5)
        print(f"{label:<14} {build * 1e6:>7.1f} µs {to * 1e6:>7.1f} µs")
    print(f"MessageFactory() per issue: {best(factory, 20) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
