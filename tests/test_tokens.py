"""Signed, expiring tokens for the links in emails."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from syndicate.config import load_settings
from syndicate.tokens import TokenError, Tokens, signing_secret


def test_a_token_round_trips_and_is_bound_to_its_purpose() -> None:
    tokens = Tokens("s3cret" * 6)
    token = tokens.sign("unsubscribe", 42)
    assert tokens.verify("unsubscribe", token) == 42
    with pytest.raises(TokenError, match="not valid"):
        tokens.verify("preferences", token)  # another purpose
    with pytest.raises(TokenError, match="not valid"):
        Tokens("another secret" * 3).verify("unsubscribe", token)  # forged
    with pytest.raises(TokenError, match="not valid"):
        tokens.verify("unsubscribe", token[:-2] + "xx")


def test_tokens_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = Tokens("s3cret" * 6)
    token = tokens.sign("confirm", 7)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 8 * 86400)  # confirm links last 7 days
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
