"""DKIM signing (syndicate.mail.dkim): a real digest message, signed and verified with dkimpy.

DNS cannot run here, so verification gets the public key from a `dnsfunc` that answers every
TXT query with the record an admin would publish at <selector>._domainkey.<domain>: the same
bytes a resolver would hand dkimpy, minus the network.

The keys are generated with the openssl command line (the `cryptography` package is not a
dependency, and dkimpy does RSA itself), once per module: a 2048-bit key takes a moment.
"""

from __future__ import annotations

import base64
import mailbox
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest

from syndicate.clock import FrozenClock
from syndicate.config import Settings, load_settings
from syndicate.errors import ConfigError
from syndicate.mail import MessageFactory, OutboxTransport, message_id_for
from syndicate.mail.dkim import DkimSigner, dkim_signer_for
from syndicate.models import Subscriber

DOMAIN = "news.example.org"
SELECTOR = "syndicate"
UNSUBSCRIBE = "https://news.example.org/unsubscribe/eyJzIjo3fQ.Zk1a2b.sig"


@pytest.fixture(scope="module")
def key_pem(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(path), "2048"], check=True, capture_output=True
    )
    return path.read_bytes()


@pytest.fixture(scope="module")
def txt_record(key_pem: bytes) -> bytes:
    der = subprocess.run(
        ["openssl", "pkey", "-pubout", "-outform", "DER"],
        input=key_pem,
        check=True,
        capture_output=True,
    ).stdout
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def verify(message: bytes, txt: bytes) -> bool:
    queried: list[bytes] = []

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        # Stand-in for DNS: the TXT record of our selector, and nothing else.
        queried.append(name)
        return txt if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else b""

    ok = dkim.verify(message, dnsfunc=dnsfunc)
    assert queried == [f"{SELECTOR}._domainkey.{DOMAIN}.".encode()]
    return bool(ok)


def digest_message(reply_to: str | None = "Help <help@example.org>") -> bytes:
    made = MessageFactory(
        site_title="Acme News",
        site_url=f"https://{DOMAIN}",
        sender="Acme News <newsletter@news.example.org>",
        subject="Acme News: December 2015 — ünïcode",
        archive_url=f"https://{DOMAIN}/feeds/archive/index.html",
        reply_to=reply_to,
        clock=FrozenClock(datetime(2015, 12, 1, 9, 0, tzinfo=UTC)),
    )
    zoe = Subscriber(7, "zoe@example.org", "Zoë", "active", (), "web", datetime(2015, 1, 1))
    html = "<p>Bonjour Zoë</p>\n" * 200
    text = "Bonjour Zoë\n" * 200
    return made.build(zoe, html, text, UNSUBSCRIBE, message_id_for(3, 7, made.domain))


def signature_tags(signed: bytes) -> dict[str, str]:
    header = signed.split(b"\r\n\r\n", 1)[0].decode()
    value = re.search(r"^DKIM-Signature: (.*?)\r\n(?=\S)", header, re.DOTALL | re.MULTILINE)
    assert value is not None
    tags = (tag.strip() for tag in re.sub(r"\s+", "", value.group(1)).split(";") if tag.strip())
    return dict(tag.split("=", 1) for tag in tags)


def test_a_signed_digest_verifies_and_signs_both_list_unsubscribe_headers(
    key_pem: bytes, txt_record: bytes
) -> None:
    message = digest_message()
    signed = DkimSigner(DOMAIN, SELECTOR, key_pem).sign(message)

    assert signed.startswith(b"DKIM-Signature: ")
    assert signed.endswith(message)  # prepended, the message itself untouched
    assert b"\n" not in signed.replace(b"\r\n", b"")  # CRLF throughout, like the input
    assert verify(signed, txt_record)

    tags = signature_tags(signed)
    assert (tags["a"], tags["c"], tags["d"], tags["s"]) == (
        "rsa-sha256",
        "relaxed/relaxed",
        DOMAIN,
        SELECTOR,
    )
    signed_headers = tags["h"].split(":")
    for name in (
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "mime-version",
        "content-type",
        "reply-to",
    ):
        assert name in signed_headers, name
    # Over-signed: one more than present, so adding a second one breaks the signature.
    assert signed_headers.count("list-unsubscribe") == 2
    assert signed_headers.count("from") == 2


def test_tampering_breaks_the_signature(key_pem: bytes, txt_record: bytes) -> None:
    signed = DkimSigner(DOMAIN, SELECTOR, key_pem).sign(digest_message())
    evil = b"https://evil.example/u"
    assert UNSUBSCRIBE.encode() in signed

    assert not verify(signed.replace(UNSUBSCRIBE.encode(), evil), txt_record)
    assert not verify(
        signed.replace(b"List-Unsubscribe=One-Click", b"List-Unsubscribe=No"), txt_record
    )
    # A List-Unsubscribe added by someone on the way is caught by the over-signing.
    head, body = signed.split(b"\r\n\r\n", 1)
    added = head + b"\r\nList-Unsubscribe: <" + evil + b">\r\n\r\n" + body
    assert not verify(added, txt_record)
    assert not verify(signed.replace(b"Bonjour", b"Bonsoir", 1), txt_record)


def test_relaxed_canonicalisation_survives_refolding(key_pem: bytes, txt_record: bytes) -> None:
    signed = DkimSigner(DOMAIN, SELECTOR, key_pem).sign(digest_message())
    # A relay that rewraps a header or pads whitespace does not break a relaxed signature.
    refolded = signed.replace(b"MIME-Version: 1.0", b"MIME-Version:   1.0 ")
    assert refolded != signed
    assert verify(refolded, txt_record)


def test_it_stays_valid_in_the_outbox(key_pem: bytes, txt_record: bytes, tmp_path: Path) -> None:
    # The outbox prepends Return-Path and X-Envelope-To, which are not signed.
    outbox = OutboxTransport(tmp_path / "outbox")
    signed = DkimSigner(DOMAIN, SELECTOR, key_pem).sign(digest_message(reply_to=None))
    key = outbox.write(signed, "zoe@example.org", "bounces@news.example.org")
    stored = mailbox.Maildir(tmp_path / "outbox", factory=None).get_bytes(key)
    assert stored.startswith(b"Return-Path: ")
    assert verify(stored, txt_record)


def test_lf_messages_get_an_lf_signature(key_pem: bytes, txt_record: bytes) -> None:
    message = digest_message().replace(b"\r\n", b"\n")
    signed = DkimSigner(DOMAIN, SELECTOR, key_pem).sign(message)
    assert b"\r" not in signed
    assert verify(signed, txt_record)


def test_a_message_without_from_is_refused(key_pem: bytes) -> None:
    with pytest.raises(ValueError, match="no From"):
        DkimSigner(DOMAIN, SELECTOR, key_pem).sign(b"To: a@example.org\r\n\r\nhi\r\n")


def test_a_bad_key_is_refused_without_showing_it(key_pem: bytes) -> None:
    lines = key_pem.decode().splitlines()
    # A damaged key: the PEM frame is fine, the DER inside is not.
    broken = "\n".join([lines[0], lines[1][:20] + "A" * 44, *lines[3:]]).encode()
    for bad in (
        broken,
        b"not a key",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
    ):
        with pytest.raises(ValueError, match="DKIM private key") as caught:
            DkimSigner(DOMAIN, SELECTOR, bad)
        message = str(caught.value)
        assert not any(len(line) > 8 and line[:16] in message for line in lines[1:-1])
    with pytest.raises(ValueError, match="selector"):
        DkimSigner(DOMAIN, "bad selector", key_pem)


def test_a_short_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "short.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(path), "512"], check=True, capture_output=True)
    with pytest.raises(ValueError, match="512 bits"):
        DkimSigner(DOMAIN, SELECTOR, path.read_bytes())


def test_a_pkcs1_key_with_crlf_or_escaped_newlines_works(key_pem: bytes, txt_record: bytes) -> None:
    pkcs1 = subprocess.run(
        ["openssl", "rsa", "-traditional"], input=key_pem, check=True, capture_output=True
    ).stdout
    assert pkcs1.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    # Env files and secret stores often hold the key on one line with literal "\n".
    for variant in (pkcs1, pkcs1.replace(b"\n", b"\r\n"), pkcs1.replace(b"\n", b"\\n")):
        signed = DkimSigner(DOMAIN, SELECTOR, variant).sign(digest_message())
        assert verify(signed, txt_record)


# --- from the config -----------------------------------------------------------------------


def settings_with_dkim(project: Path, env: str = "DKIM_TEST_KEY") -> Settings:
    config = project / "config.toml"
    config.write_text(
        config.read_text()
        + f'\n[mail.dkim]\ndomain = "{DOMAIN}"\nselector = "{SELECTOR}"\n'
        + f'private_key_env = "{env}"\n'
    )
    return load_settings(config)


def test_no_dkim_section_means_no_signer(project: Path) -> None:
    assert dkim_signer_for(load_settings(project / "config.toml")) is None


def test_a_missing_variable_is_a_config_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DKIM_TEST_KEY", raising=False)
    with pytest.raises(ConfigError) as caught:
        dkim_signer_for(settings_with_dkim(project))
    assert caught.value.problems == [
        "mail.dkim.private_key_env: environment variable DKIM_TEST_KEY is not set"
    ]


def test_the_variable_may_hold_the_key(
    project: Path, monkeypatch: pytest.MonkeyPatch, key_pem: bytes, txt_record: bytes
) -> None:
    monkeypatch.setenv("DKIM_TEST_KEY", key_pem.decode())
    signer = dkim_signer_for(settings_with_dkim(project))
    assert signer is not None
    assert (signer.domain, signer.selector) == (DOMAIN, SELECTOR)
    assert verify(signer.sign(digest_message()), txt_record)


def test_the_variable_may_name_a_key_file(
    project: Path, monkeypatch: pytest.MonkeyPatch, key_pem: bytes, txt_record: bytes
) -> None:
    (project / "secrets").mkdir()
    (project / "secrets" / "dkim.pem").write_bytes(key_pem)
    settings = settings_with_dkim(project)
    # Relative to the config file's folder, like every path in the config.
    monkeypatch.setenv("DKIM_TEST_KEY", "secrets/dkim.pem")
    signer = dkim_signer_for(settings)
    assert signer is not None
    assert verify(signer.sign(digest_message()), txt_record)

    monkeypatch.setenv("DKIM_TEST_KEY", str(project / "secrets" / "dkim.pem"))
    assert dkim_signer_for(settings) is not None

    monkeypatch.setenv("DKIM_TEST_KEY", "secrets/missing.pem")
    with pytest.raises(ConfigError, match=r"mail.dkim.private_key_env: .*missing.pem"):
        dkim_signer_for(settings)


def test_a_bad_key_in_the_variable_is_a_config_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DKIM_TEST_KEY", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END")
    with pytest.raises(ConfigError) as caught:
        dkim_signer_for(settings_with_dkim(project))
    [line] = caught.value.problems
    assert line.startswith("mail.dkim: DKIM private key: ")
    assert "c2VjcmV0" not in line
