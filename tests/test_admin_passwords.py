"""The dashboard's password hash: the formats recognised (argon2, werkzeug's scrypt), a plain
password refused, `syndicate admin hash-password`, and `syndicate check` naming a plain
password in the variable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from adminsite import VARIABLE, admin_config
from click.testing import CliRunner

from syndicate.cli import cli
from syndicate.passwords import NotAHash, check_hash, verify_password

PASSWORD = "a long enough dashboard password"


def scrypt_hash(password: str, salt: str = "Wq8xZ3pL", n: int = 2**14) -> str:
    """werkzeug's `scrypt:N:r:p$salt$hex`, made as the README says, with Python alone."""
    digest = hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=8, p=1, dklen=64)
    return f"scrypt:{n}:8:1${salt}${digest.hex()}"


def test_argon2_and_scrypt_hashes_are_recognised_and_checked() -> None:
    from argon2 import PasswordHasher

    argon2 = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    for hashed in (argon2, scrypt_hash(PASSWORD)):
        assert check_hash(f" {hashed}\n") == hashed
        assert verify_password(hashed, PASSWORD)
        assert not verify_password(hashed, PASSWORD + " ")
        assert not verify_password(hashed, "")


@pytest.mark.parametrize(
    "value",
    [
        PASSWORD,
        "$argon2id$v=19$m=65536,t=3,p=4$cut-short",
        "scrypt:3:8:1$salt$" + "ab" * 32,  # N not a power of two
        "scrypt:2097152:8:1$salt$" + "ab" * 32,  # 2^21: more than the 2^20 allowed
        "scrypt:16384:8:1$salt$not-hex",
        "pbkdf2:sha256:600000$salt$" + "ab" * 32,
    ],
)
def test_anything_else_is_not_a_hash(value: str) -> None:
    with pytest.raises(NotAHash) as refused:
        check_hash(value)
    assert value not in str(refused.value)
    assert not verify_password(value, PASSWORD)


def test_hash_password_prints_an_argon2_hash_of_the_password_typed_twice() -> None:
    result = CliRunner().invoke(cli, ["admin", "hash-password"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    # CliRunner puts the prompts on stdout too; the hash is the line of its own.
    hashed = next(line for line in result.stdout.splitlines() if line.startswith("$argon2id$"))
    assert verify_password(hashed, PASSWORD)
    assert PASSWORD not in result.stdout  # hidden input: the password is not echoed
    assert "export SYNDICATE_ADMIN_PASSWORD='$argon2id$" in result.stderr


def test_hash_password_refuses_a_mismatch_or_a_short_password() -> None:
    mismatch = CliRunner().invoke(
        cli, ["admin", "hash-password"], input=f"{PASSWORD}\nsomething else\n"
    )
    assert "$argon2" not in mismatch.stdout
    short = CliRunner().invoke(cli, ["admin", "hash-password", "--password", "short"])
    assert short.exit_code == 2 and "at least 12 characters" in short.output


def test_check_names_a_plain_password_in_the_variable(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = admin_config(project)
    monkeypatch.setenv("SYNDICATE_SECRET", "check-secret")
    monkeypatch.setenv(VARIABLE, PASSWORD)
    plain = CliRunner().invoke(cli, ["--config", str(config), "check"])
    assert plain.exit_code == 2
    assert f"web.admin_password_env: {VARIABLE} holds not an argon2" in plain.output
    assert PASSWORD not in plain.output
    monkeypatch.setenv(VARIABLE, scrypt_hash(PASSWORD))
    hashed = CliRunner().invoke(cli, ["--config", str(config), "check"])
    assert hashed.exit_code == 0, hashed.output
    monkeypatch.delenv(VARIABLE)
    unset = CliRunner().invoke(cli, ["--config", str(config), "check"])
    assert unset.exit_code == 0
    assert f"web.admin_password_env: environment variable {VARIABLE} is not set" in unset.output


def test_check_names_the_dashboards_templates_when_they_are_missing(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = admin_config(project)
    monkeypatch.setenv("SYNDICATE_SECRET", "check-secret")
    monkeypatch.setenv(VARIABLE, scrypt_hash(PASSWORD))
    (project / "templates" / "web" / "admin" / "dashboard.html.j2").unlink()
    result = CliRunner().invoke(cli, ["--config", str(config), "check"])
    assert result.exit_code == 2
    assert "templates/web/admin/dashboard.html.j2: missing" in result.output
