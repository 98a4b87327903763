"""Signed, expiring tokens for the links in emails."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syndicate.clock import FrozenClock
from syndicate.config import load_settings
from syndicate.models import Subscriber
from syndicate.tokens import TokenError, Tokens, clocked_serializer, signing_secret

SECRET = "s3cret" * 6
SIGNED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)  # when the links below are signed


def person(
    subscriber_id: int = 42, email: str = "ann@example.org", created: datetime | None = None
) -> Subscriber:
    created = created or SIGNED - timedelta(days=30)
    return Subscriber(subscriber_id, email, "", "active", (), "web", created, created_at=created)


def id_only(purpose: str, subscriber_id: object, clock: FrozenClock) -> str:
    """A token as links were signed before they named their owner's address."""
    return clocked_serializer(SECRET, f"syndicate-{purpose}", clock).dumps(subscriber_id)


def test_a_token_round_trips_and_is_bound_to_its_purpose() -> None:
    clock = FrozenClock(SIGNED)
    tokens = Tokens(SECRET, clock)
    ann = person()
    token = tokens.sign("unsubscribe", ann)
    claim = tokens.verify("unsubscribe", token)
    assert claim.subscriber_id == 42 and tokens.belongs_to(claim, ann)
    with pytest.raises(TokenError, match="not valid"):
        tokens.verify("preferences", token)  # another purpose
    with pytest.raises(TokenError, match="not valid"):
        Tokens("another secret" * 3, clock).verify("unsubscribe", token)  # forged
    with pytest.raises(TokenError, match="not valid"):
        tokens.verify("unsubscribe", token[:-2] + "xx")


def test_a_link_belongs_to_one_address_not_to_whoever_has_the_id_now() -> None:
    tokens = Tokens(SECRET, FrozenClock(SIGNED))
    claim = tokens.verify("preferences", tokens.sign("preferences", person(7, "ann@example.org")))
    assert tokens.belongs_to(claim, person(7, "ann@example.org"))
    assert not tokens.belongs_to(claim, person(7, "bob@example.org"))  # the id taken over
    assert not tokens.belongs_to(claim, person(8, "ann@example.org"))  # another row


def test_the_address_tag_needs_the_secret() -> None:
    # A token's payload is readable (base64 JSON): someone holding a link from a log must
    # not be able to test guessed addresses against it.
    ann = person()
    clock = FrozenClock(SIGNED)
    tokens = Tokens(SECRET, clock)
    payload = tokens.sign("unsubscribe", ann).split(".")[0]
    subscriber_id, tag = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert subscriber_id == 42
    unkeyed = hashlib.sha256(b"ann@example.org").digest()
    assert base64.urlsafe_b64decode(tag) not in unkeyed
    other = Tokens("another secret" * 3, clock).sign("unsubscribe", ann).split(".")[0]
    assert other != payload  # the same person's tag under another secret differs


def test_an_id_only_link_counts_for_a_row_created_no_later_than_it_was_signed() -> None:
    clock = FrozenClock(SIGNED + timedelta(milliseconds=700))
    tokens = Tokens(SECRET, clock)
    claim = tokens.verify("unsubscribe", id_only("unsubscribe", 42, clock))
    assert (claim.subscriber_id, claim.address_tag, claim.signed_at) == (42, None, SIGNED)

    def created(moment: datetime) -> bool:
        return tokens.belongs_to(claim, person(42, created=moment))

    assert created(SIGNED - timedelta(days=90))  # the person it was sent to
    # Tokens carry whole seconds: a row created in the second the link was signed counts.
    assert created(SIGNED + timedelta(milliseconds=300))
    # A row created after it (one that took over a forgotten person's id) never does.
    assert not created(SIGNED + timedelta(seconds=1))
    assert not created(SIGNED + timedelta(days=2))
    assert not tokens.belongs_to(claim, person(43))
    never_stored = Subscriber(42, "ann@example.org", "", "active", (), "web", SIGNED)
    assert not tokens.belongs_to(claim, never_stored)


@pytest.mark.parametrize(
    "payload", [True, "42", 4.2, None, [42], [42, "tag", "more"], ["42", "tag"], [42, 7], {}]
)
def test_a_signed_payload_of_another_shape_is_not_valid(payload: object) -> None:
    with pytest.raises(TokenError, match="not valid"):
        clock = FrozenClock(SIGNED)
        Tokens(SECRET, clock).verify("unsubscribe", id_only("unsubscribe", payload, clock))


def test_tokens_expire() -> None:
    clock = FrozenClock(SIGNED)
    tokens = Tokens(SECRET, clock)
    token = tokens.sign("confirm", person())
    clock.set(SIGNED + timedelta(days=7))  # confirm links last 7 days
    tokens.verify("confirm", token)
    clock.set(SIGNED + timedelta(days=7, seconds=1))
    with pytest.raises(TokenError) as caught:
        tokens.verify("confirm", token)
    assert caught.value.expired


def test_the_secret_comes_from_the_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(project / "config.toml")
    monkeypatch.setenv("SYNDICATE_SECRET", "from-the-environment")
    assert signing_secret(settings) == "from-the-environment"
    assert not (project / "var" / "secret").exists()


def test_without_one_a_private_secret_is_generated_once(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(project / "config.toml")
    monkeypatch.delenv("SYNDICATE_SECRET", raising=False)
    first = signing_secret(settings)
    path = project / "var" / "secret"
    assert len(first) >= 32 and signing_secret(settings) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_tokens_take_their_time_from_the_clock_not_the_process() -> None:
    # Dated ten years from now, by the clock alone: the process's time never enters.
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3650)
    clock = FrozenClock(later)
    tokens = Tokens(SECRET, clock)
    token = tokens.sign("confirm", person(created=later))
    assert tokens.verify("confirm", token).signed_at == later
    clock.advance(timedelta(days=7, seconds=1))
    with pytest.raises(TokenError) as caught:
        tokens.verify("confirm", token)
    assert caught.value.expired
    assert Tokens(SECRET, FrozenClock(later)).verify("confirm", token).signed_at == later
