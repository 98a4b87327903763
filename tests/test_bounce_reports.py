"""read_report (syndicate.bounces.reports): what a message that came back to us is.

The fixtures in tests/fixtures/bounces/ were written for these tests, after the mail that
Postfix, Exim, Office 365, Gmail and Yahoo send; every header that matters is as those servers
write it. Messages built here are the edges: several recipients, disagreeing Action and Status,
encoded line breaks, big attachments, broken MIME and random bytes.
"""

from __future__ import annotations

import base64
import os
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicate.bounces.reports import Failure, Report, ReportKind, read_report

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
NAMES = sorted(path.name for path in FIXTURES.glob("*.eml"))


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def read(name: str) -> Report:
    return read_report(fixture(name))


# -- the fixtures ------------------------------------------------------------------------------


def test_postfix_user_unknown_is_hard() -> None:
    report = read("postfix-550-user-unknown.eml")
    assert report == Report(
        kind=ReportKind.HARD,
        failures=(
            Failure(
                address="jane.doe@example.net",
                permanent=True,
                status="5.1.1",
                action="failed",
                diagnostic="smtp; 550 5.1.1 <Jane.Doe@example.net>: Recipient address rejected:"
                " User unknown in virtual mailbox table",
            ),
        ),
        message_ids=("<digest-7-42@example.org>",),
        delivered_to=("bounces+7-42-abcdefghijklmnop@example.org",),
        sender="mailer-daemon@mx2.example.net",
        subject="Undelivered Mail Returned to Sender",
    )


def test_postfix_mailbox_full_warning_is_soft() -> None:
    report = read("postfix-mailbox-full-452.eml")
    assert report.kind is ReportKind.SOFT
    assert report.failures == (
        Failure(
            "kim@example.net",
            permanent=False,
            status="4.2.2",
            action="delayed",
            diagnostic="smtp; 452 4.2.2 <kim@example.net>: Mailbox full",
        ),
    )
    assert report.message_ids == ("<digest-7-43@example.org>",)
    assert report.delivered_to == ("bounces+7-43-qrstuvwxyzabcdef@example.org",)
    assert report.subject == "Delayed Mail (still being retried)"
    assert report.problem == ""


def test_exim_text_bounce_is_read_by_flufl() -> None:
    # No MIME report at all: flufl.bounce's Exim detector (X-Failed-Recipients) names the
    # address; the status and the reply come from the notice, not from the returned message.
    report = read("exim-plaintext.eml")
    assert report.kind is ReportKind.HARD
    assert report.failures == (
        Failure(
            "old.address@isp.example.com",
            permanent=True,
            status="5.1.1",
            action="",
            diagnostic="550 5.1.1 <old.address@isp.example.com>: Recipient address rejected:"
            " User unknown in local recipient table",
        ),
    )
    # The returned original is inline text: its Message-ID, not the bounce's own.
    assert report.message_ids == ("<digest-7-44@example.org>",)
    assert report.delivered_to == ("bounces+7-44-mnopqrstuvwxyzab@example.org",)
    assert report.sender == "mailer-daemon@mail.isp.example.com"


def test_exim_text_bounce_without_x_failed_recipients_still_found() -> None:
    # Another detector (the "created automatically by mail delivery software" pattern)
    # must find the address when the header that made it easy is gone.
    raw = fixture("exim-plaintext.eml").replace(
        b"X-Failed-Recipients: old.address@isp.example.com\n", b""
    )
    raw = raw.replace(
        b"  old.address@isp.example.com\n    host",
        b"  old.address@isp.example.com\n    RCPT TO:<old.address@isp.example.com>\n    host",
    )
    report = read_report(raw)
    assert report.kind is ReportKind.HARD
    assert [f.address for f in report.failures] == ["old.address@isp.example.com"]
    assert report.failures[0].status == "5.1.1"


def test_exchange_ndr_with_html_first_part() -> None:
    report = read("exchange-ndr.eml")
    assert report.kind is ReportKind.HARD
    assert report.failures == (
        Failure(
            "sam.smith@contoso.example",
            permanent=True,
            status="5.1.10",
            action="failed",
            diagnostic="smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by"
            " SMTP address lookup",
        ),
    )
    assert report.message_ids == ("<digest-7-45@example.org>",)
    assert report.delivered_to == ("bounces+7-45-bcdefghijklmnopq@example.org",)
    assert report.sender == "postmaster@contoso.example"
    assert report.subject == "Undeliverable: Example News: the December digest"


def test_gmail_no_such_user_folded_diagnostic_is_one_line() -> None:
    report = read("gmail-550-nosuchuser.eml")
    assert report.kind is ReportKind.HARD
    (failure,) = report.failures
    assert failure.address == "no.such.user@gmail.com"
    assert failure.permanent is True
    assert failure.status == "5.1.1"
    assert failure.action == "failed"
    assert failure.diagnostic.startswith(
        "smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try"
        " 550-5.1.1 double-checking"
    )
    assert failure.diagnostic.endswith("- gsmtp")
    assert "\n" not in failure.diagnostic and "  " not in failure.diagnostic
    # message/rfc822 (the whole original), not text/rfc822-headers
    assert report.message_ids == ("<digest-7-46@example.org>",)
    assert report.sender == "mailer-daemon@googlemail.com"
    assert report.subject == "Delivery Status Notification (Failure)"
    assert report.delivered_to == ("bounces+7-46-cdefghijklmnopqr@example.org",)


def test_greylisting_delay_is_soft() -> None:
    report = read("greylist-451.eml")
    assert report.kind is ReportKind.SOFT
    (failure,) = report.failures
    assert failure == Failure(
        "lee@greylisting.example",
        permanent=False,
        status="4.7.1",
        action="delayed",
        diagnostic="smtp; 451 4.7.1 <lee@greylisting.example>: Recipient address rejected:"
        " Greylisted, see https://postgrey.schweikert.ch/help/greylisting.example.html",
    )
    assert report.message_ids == ("<digest-7-47@example.org>",)
    assert report.delivered_to == ("bounces+7-47-defghijklmnopqrs@example.org",)


def test_arf_complaint() -> None:
    report = read("arf-complaint.eml")
    assert report == Report(
        kind=ReportKind.COMPLAINT,
        failures=(
            Failure(
                "carol.reader@yahoo.example",
                permanent=True,
                status="",
                action="complaint",
                diagnostic="abuse; Yahoo!-Mail-Feedback/2.0",
            ),
        ),
        message_ids=("<digest-7-48@example.org>",),
        delivered_to=("fbl@example.org",),
        sender="feedback@arf.mail.yahoo.example",
        subject="FW: Example News: the December digest",
    )


def test_arf_complaint_without_original_rcpt_to_names_the_enclosed_to() -> None:
    raw = fixture("arf-complaint.eml").replace(
        b"Original-Rcpt-To: <Carol.Reader@yahoo.example>\n", b""
    )
    raw = raw.replace(b"To: carol.reader@yahoo.example", b"To: Carol <Carol.R@yahoo.example>")
    (failure,) = read_report(raw).failures
    assert failure.address == "carol.r@yahoo.example"
    assert failure.action == "complaint"


def test_arf_complaint_naming_nobody() -> None:
    # Some providers redact both: the complaint still counts, matched by Message-ID or VERP.
    raw = fixture("arf-complaint.eml").replace(
        b"Original-Rcpt-To: <Carol.Reader@yahoo.example>\n", b""
    )
    raw = raw.replace(b"To: carol.reader@yahoo.example\n", b"To: redacted\n")
    report = read_report(raw)
    assert report.kind is ReportKind.COMPLAINT
    assert report.failures[0].address == ""
    assert report.message_ids == ("<digest-7-48@example.org>",)


def test_out_of_office_is_an_auto_reply() -> None:
    report = read("out-of-office.eml")
    assert report == Report(
        kind=ReportKind.AUTO_REPLY,
        failures=(),
        message_ids=("<digest-7-49@example.org>",),
        delivered_to=("bounces+7-49-fghijklmnopqrstu@example.org",),
        sender="alex.martin@fabrikam.example",
        subject="Automatic reply: Example News: the December digest",
    )


def test_delivered_notice() -> None:
    report = read("delivered-notice.eml")
    assert report.kind is ReportKind.DELIVERED
    assert report.failures == ()
    assert report.message_ids == ("<digest-7-50@example.org>",)
    assert report.delivered_to == ("bounces+7-50-ghijklmnopqrstuv@example.org",)


def test_person_asking_to_unsubscribe() -> None:
    report = read("person-unsubscribe.eml")
    assert report == Report(
        kind=ReportKind.MESSAGE,
        failures=(),
        message_ids=(),
        delivered_to=("unsubscribe+abcdefghijklmnop@example.org",),
        sender="pat@example.net",
        subject="unsubscribe",
    )


def test_broken_mime_report_is_unreadable() -> None:
    report = read("broken-mime.eml")
    assert report.kind is ReportKind.UNREADABLE
    assert report.problem == "multipart/report whose MIME parts cannot be found"
    assert report.failures == ()
    # What could be read is still there, for whoever looks at the kept copy.
    assert report.sender == "mailer-daemon@mx9.broken.example"
    assert report.delivered_to == ("bounces+7-51-hijklmnopqrstuvw@example.org",)


@pytest.mark.parametrize("name", NAMES)
def test_crlf_line_endings_read_the_same(name: str) -> None:
    # Mail fetched over IMAP arrives with CRLF; files on disk have LF.
    raw = fixture(name)
    assert read_report(raw.replace(b"\n", b"\r\n")) == read_report(raw)


# -- DSN rules: several recipients, Action against Status --------------------------------------

DSN_HEAD = b"""\
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: bounces+7-60-aaaaaaaaaaaaaaaa@example.org
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Notification.
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
"""
DSN_TAIL = b"""
--B
Content-Type: text/rfc822-headers

From: News <newsletter@example.org>
Message-ID: <digest-7-60@example.org>

--B--
"""


def dsn(*blocks: bytes, part_type: bytes = b"message/delivery-status") -> bytes:
    head = DSN_HEAD.replace(b"message/delivery-status", part_type)
    return head + b"".join(b"\n" + block for block in blocks) + DSN_TAIL


def block(address: str, action: str = "", status: str = "", diagnostic: str = "") -> bytes:
    lines = [f"Final-Recipient: rfc822; {address}"]
    lines += [f"Action: {action}"] if action else []
    lines += [f"Status: {status}"] if status else []
    lines += [f"Diagnostic-Code: {diagnostic}"] if diagnostic else []
    return "\n".join(lines).encode() + b"\n"


def test_several_recipients_mixed_delayed_and_failed_is_hard() -> None:
    report = read_report(
        dsn(
            block("a@example.net", "delayed", "4.4.1"),
            block("B@example.net", "failed", "5.1.1"),
            block("c@example.net", "delivered", "2.0.0"),
        )
    )
    assert report.kind is ReportKind.HARD
    assert [(f.address, f.permanent, f.action, f.status) for f in report.failures] == [
        ("a@example.net", False, "delayed", "4.4.1"),
        ("b@example.net", True, "failed", "5.1.1"),
    ]
    assert report.message_ids == ("<digest-7-60@example.org>",)


def test_several_recipients_all_delayed_is_soft() -> None:
    report = read_report(
        dsn(block("a@example.net", "delayed", "4.4.1"), block("b@example.net", "delayed", "4.2.2"))
    )
    assert report.kind is ReportKind.SOFT
    assert len(report.failures) == 2


@pytest.mark.parametrize(
    ("action", "status", "diagnostic", "permanent", "kept_action", "kept_status"),
    [
        # "failed" is final (RFC 3464), whatever the status class says
        ("failed", "4.4.7", "", True, "failed", "4.4.7"),
        # "delayed" will be retried, even with a 5.x.x status
        ("delayed", "5.2.2", "", False, "delayed", "5.2.2"),
        ("Failed (permanent)", "5.1.1", "", True, "failed", "5.1.1"),
        ("error", "5.0.0", "", True, "failed", "5.0.0"),  # OpenSMTPD's non-standard action
        # no Action: the status class decides
        ("", "5.7.1", "", True, "", "5.7.1"),
        ("", "4.2.2", "", False, "", "4.2.2"),
        # no Status either: the enhanced code of the diagnostic, else its reply code
        ("", "", "smtp; 550-5.1.1 No such user", True, "", "5.1.1"),
        ("", "", "smtp; 452 try later", False, "", ""),
        (
            "failed",
            "",
            "smtp; 554 5.7.1 <a@example.net>: Relay access denied",
            True,
            "failed",
            "5.7.1",
        ),
    ],
)
def test_action_against_status(
    action: str,
    status: str,
    diagnostic: str,
    permanent: bool,
    kept_action: str,
    kept_status: str,
) -> None:
    report = read_report(dsn(block("a@example.net", action, status, diagnostic)))
    (failure,) = report.failures
    assert report.kind is (ReportKind.HARD if permanent else ReportKind.SOFT)
    assert (failure.permanent, failure.action, failure.status) == (
        permanent,
        kept_action,
        kept_status,
    )


def test_dsn_without_the_per_message_block() -> None:
    raw = DSN_HEAD.replace(b"Reporting-MTA: dns; mx.example.net\n", b"") + block(
        "a@example.net", "failed", "5.1.1"
    )
    raw += DSN_TAIL
    (failure,) = read_report(raw).failures
    assert (failure.address, failure.permanent) == ("a@example.net", True)


def test_success_without_action_is_delivered() -> None:
    assert read_report(dsn(block("a@example.net", "", "2.0.0"))).kind is ReportKind.DELIVERED


def test_original_recipient_when_final_recipient_is_missing() -> None:
    raw = dsn(b"Original-Recipient: rfc822;Orig@Example.NET\nAction: failed\nStatus: 5.1.1\n")
    assert read_report(raw).failures[0].address == "orig@example.net"


def test_final_recipient_of_another_address_type_is_no_address() -> None:
    raw = dsn(b"Final-Recipient: x400; /C=DE/ADMD=x/\nAction: failed\nStatus: 5.1.1\n")
    (failure,) = read_report(raw).failures
    assert failure.address == ""
    assert failure.permanent is True


def test_global_delivery_status_utf8_address() -> None:
    # RFC 6533: the email package does not split this part into blocks itself.
    raw = dsn(
        "Final-Recipient: utf-8; jörg@exämple.de\nAction: failed\nStatus: 5.1.1\n".encode(),
        block("b@example.net", "delayed", "4.2.2"),
        part_type=b"message/global-delivery-status",
    )
    report = read_report(raw)
    assert report.kind is ReportKind.HARD
    assert [f.address for f in report.failures][1:] == ["b@example.net"]
    assert report.failures[0].permanent is True


def test_dsn_without_a_usable_block_is_unreadable() -> None:
    report = read_report(dsn(b"X-Something: else\n"))
    assert report.kind is ReportKind.UNREADABLE
    assert report.problem == "delivery-status report without a recipient that could be read"
    assert report.message_ids == ("<digest-7-60@example.org>",)


def test_report_without_a_delivery_status_part_is_unreadable() -> None:
    raw = DSN_HEAD.split(b"--B\nContent-Type: message/delivery-status")[0] + b"--B--\n"
    report = read_report(raw)
    assert report.kind is ReportKind.UNREADABLE
    assert report.problem == "multipart/report without a delivery-status part"


def test_diagnostic_is_cut_to_500_characters() -> None:
    raw = dsn(block("a@example.net", "failed", "5.1.1", "smtp; 550 " + "x" * 2000))
    assert len(read_report(raw).failures[0].diagnostic) == 500


def test_read_receipt_is_an_auto_reply() -> None:
    raw = b"""\
From: reader@example.net
To: bounces+7-61-bbbbbbbbbbbbbbbb@example.org
Subject: Read: Example News
Content-Type: multipart/report; report-type=disposition-notification; boundary="R"

--R
Content-Type: text/plain

Your message was read.
--R
Content-Type: message/disposition-notification

Final-Recipient: rfc822; reader@example.net
Original-Message-ID: <digest-7-61@example.org>
Disposition: manual-action/MDN-sent-manually; displayed

--R
Content-Type: text/rfc822-headers

Message-ID: <digest-7-61@example.org>

--R--
"""
    report = read_report(raw)
    assert report.kind is ReportKind.AUTO_REPLY
    assert report.message_ids == ("<digest-7-61@example.org>",)


# -- auto-replies against people -------------------------------------------------------------

PERSON = b"""\
From: Pat <pat@example.net>
To: unsubscribe+abcdefghijklmnop@example.org
Cc: Other <Other@Example.net>, pat@example.net
Subject: %s
In-Reply-To: <digest-7-62@example.org>
References: <older@example.org>
 <digest-7-62@example.org>
%s
Hello, pat@example.net, please stop sending.
"""


@pytest.mark.parametrize(
    ("subject", "headers", "kind"),
    [
        (b"Re: Example News", b"", ReportKind.MESSAGE),
        (b"Re: Example News", b"Auto-Submitted: no\n", ReportKind.MESSAGE),
        (b"Re: Example News", b"Auto-Submitted: auto-generated\n", ReportKind.AUTO_REPLY),
        (b"Re: Example News", b"Auto-Submitted: Auto-Replied (vacation)\n", ReportKind.AUTO_REPLY),
        (b"Away", b"X-Autoreply: yes\n", ReportKind.AUTO_REPLY),
        (b"Away", b"X-Autorespond: Away\n", ReportKind.AUTO_REPLY),
        (b"Away", b"Precedence: auto_reply\n", ReportKind.AUTO_REPLY),
        (b"Automatic reply: News", b"X-Auto-Response-Suppress: All\n", ReportKind.AUTO_REPLY),
        # Outlook puts X-Auto-Response-Suppress on mail people write, too.
        (b"unsubscribe", b"X-Auto-Response-Suppress: All\n", ReportKind.MESSAGE),
        (b"Precedence", b"Precedence: bulk\n", ReportKind.MESSAGE),
    ],
)
def test_auto_reply_headers(subject: bytes, headers: bytes, kind: ReportKind) -> None:
    report = read_report(PERSON % (subject, headers))
    assert report.kind is kind
    assert report.failures == ()
    # In-Reply-To first, then References, each once
    assert report.message_ids == ("<digest-7-62@example.org>", "<older@example.org>")
    assert report.delivered_to == (
        "unsubscribe+abcdefghijklmnop@example.org",
        "other@example.net",
        "pat@example.net",
    )


def test_a_person_mentioning_addresses_is_not_a_bounce() -> None:
    # flufl.bounce's LLNL detector would call "Hello, pat@example.net," a failed address.
    report = read_report(PERSON % (b"Re: Example News", b""))
    assert report.kind is ReportKind.MESSAGE


def test_delivered_to_headers_in_order_without_duplicates() -> None:
    raw = b"""\
X-Envelope-To: <Five@example.org>
Delivered-To: One@example.org
Delivered-To: two@example.org
Envelope-To: four@example.org
X-Original-To: three@example.org, one@example.org
To: "Six, Seven" <six@example.org>
Cc: undisclosed-recipients:;
From: a@example.net
Subject: hello

hi
"""
    assert read_report(raw).delivered_to == (
        "one@example.org",
        "two@example.org",
        "three@example.org",
        "four@example.org",
        "five@example.org",
        "six@example.org",
    )


# -- hostile headers ---------------------------------------------------------------------------


def test_encoded_line_breaks_in_subject_and_diagnostic_come_out_as_one_line() -> None:
    encoded = base64.b64encode(
        b"Undelivered\r\nBcc: victim@example.net\r\n\x00\x1b[31mred"
    ).decode()
    raw = dsn(
        block(
            "a@example.net",
            "failed",
            "5.1.1",
            "smtp; 550 =?utf-8?q?line_one=0D=0Aline_two=0Athree=E2=80=A8four?=",
        )
    ).replace(
        b"Subject: Undelivered Mail Returned to Sender",
        f"Subject: =?utf-8?b?{encoded}?=".encode(),
    )
    report = read_report(raw)
    assert report.subject == "Undelivered Bcc: victim@example.net [31mred"
    (failure,) = report.failures
    assert "\r" not in failure.diagnostic and "\n" not in failure.diagnostic
    assert "\u2028" not in failure.diagnostic
    assert failure.diagnostic.isprintable()


def test_bad_charsets_and_8bit_headers() -> None:
    raw = (
        b"From: =?x-no-such-charset?q?Pat?= <pat@example.net>\n"
        b"To: unsubscribe+tok@example.org, \xff\xfe@bad.example\n"
        b"Subject: =?x-no-such-charset?B?////?= caf\xc3\xa9 \xff\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\n"
        b"\n"
        b"body \xff\n"
    )
    report = read_report(raw)
    assert report.kind is ReportKind.MESSAGE
    assert report.sender == "pat@example.net"
    assert report.delivered_to == ("unsubscribe+tok@example.org",)
    assert report.subject.isprintable()
    assert "caf" in report.subject


def test_long_subject_is_cut_to_200_characters() -> None:
    report = read_report(b"From: a@example.net\nSubject: " + b"word " * 500 + b"\n\nhi\n")
    assert len(report.subject) <= 200
    assert report.subject.startswith("word word")


def test_bounce_looking_mail_with_nothing_readable_is_unreadable() -> None:
    raw = b"From: MAILER-DAEMON@mx.example.net\nSubject: Returned mail: see transcript\n\nsorry\n"
    report = read_report(raw)
    assert report.kind is ReportKind.UNREADABLE
    assert report.problem == "a bounce without a failed recipient that could be read"


def test_no_header_fields_is_unreadable() -> None:
    for raw in (b"", b"\n\n", b"\r\n"):
        report = read_report(raw)
        assert report.kind is ReportKind.UNREADABLE
        assert report.problem == "no header fields"


@pytest.mark.parametrize("depth", [100, 5000])
def test_nested_message_rfc822(depth: int) -> None:
    raw = (
        b"From: a@example.net\nSubject: nested\n"
        + b"Content-Type: message/rfc822\n\n" * depth
        + b"Message-ID: <deep@example.org>\n\nbody\n"
    )
    report = read_report(raw)
    assert report.kind in {ReportKind.MESSAGE, ReportKind.UNREADABLE}
    if depth == 5000:  # past the parser's recursion limit
        assert report.problem == "MIME parts nested too deep"


def test_nested_reports_100_deep() -> None:
    inner = fixture("postfix-550-user-unknown.eml")
    for level in range(100):
        boundary = b"level-%d" % level
        inner = (
            b"From: MAILER-DAEMON@relay.example\nSubject: Undelivered Mail Returned to Sender\n"
            b"Content-Type: multipart/report; report-type=delivery-status; boundary="
            + boundary
            + b"\n\n--"
            + boundary
            + b"\nContent-Type: message/rfc822\n\n"
            + inner
            + b"\n--"
            + boundary
            + b"--\n"
        )
    report = read_report(inner)
    # A report is read from the message's own parts, not from the messages it encloses: the
    # outer report has no delivery-status part, and flufl.bounce is given no enclosed report
    # past the depth limit.
    assert report.kind is ReportKind.UNREADABLE
    assert report.problem == "multipart/report without a delivery-status part"


def test_a_person_forwarding_a_bounce_is_a_message() -> None:
    raw = (
        b"From: Pat <pat@example.net>\nTo: unsubscribe+abcdefghijklmnop@example.org\n"
        b"Subject: Fwd: Undelivered Mail Returned to Sender\n"
        b"Content-Type: multipart/mixed; boundary=F\n\n--F\nContent-Type: text/plain\n\n"
        b"Please take my old address off your list.\n--F\nContent-Type: message/rfc822\n\n"
        + fixture("postfix-550-user-unknown.eml")
        + b"\n--F--\n"
    )
    report = read_report(raw)
    assert report.kind is ReportKind.MESSAGE
    assert report.failures == ()


# -- bounded work ------------------------------------------------------------------------------

BIG = base64.encodebytes(os.urandom(7_600_000))  # 10.3 MB once encoded


def with_big_attachment(raw: bytes, marker: bytes) -> bytes:
    attachment = (
        b'Content-Type: multipart/mixed; boundary="ATT"\n\n--ATT\nContent-Type: text/plain\n\n'
        b"Example News\n--ATT\nContent-Type: application/pdf; name=report.pdf\n"
        b"Content-Transfer-Encoding: base64\n\n" + BIG + b"--ATT--\n"
    )
    head, found, tail = raw.partition(marker)
    assert found
    return head + attachment + tail


def test_dsn_returning_a_10_mb_original() -> None:
    raw = with_big_attachment(
        fixture("gmail-550-nosuchuser.eml"),
        b'Content-Type: text/plain; charset="utf-8"\n\nExample News, December 2026\n',
    )
    assert len(raw) > 10_000_000
    report = read_report(raw)
    assert report.kind is ReportKind.HARD
    assert report.failures[0].address == "no.such.user@gmail.com"
    assert report.message_ids == ("<digest-7-46@example.org>",)


def test_text_bounce_returning_a_10_mb_original() -> None:
    raw = with_big_attachment(
        fixture("exim-plaintext.eml"),
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit\n",
    )
    report = read_report(raw)
    assert report.kind is ReportKind.HARD
    assert report.failures[0].address == "old.address@isp.example.com"


def test_complaint_enclosing_a_10_mb_message() -> None:
    raw = with_big_attachment(
        fixture("arf-complaint.eml"),
        b'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: 7bit\n',
    )
    report = read_report(raw)
    assert report.kind is ReportKind.COMPLAINT
    assert report.message_ids == ("<digest-7-48@example.org>",)


MANY_BLOCKS = (
    b"From: MAILER-DAEMON@mx.example\nSubject: Undelivered Mail Returned to Sender\n"
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
    b"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n"
    + b"\nFinal-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1\n" * 15000
    + b"--B--\n"
)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        # The compat32 parameter parser is quadratic in ";": parameters are cut first.
        (
            b"From: MAILER-DAEMON@mx.example\nContent-Type: multipart/report; "
            b"report-type=delivery-status; boundary=B" + b";a" * 500_000 + b"\n\n--B\n"
            b"Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
            b"Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1\n--B--\n",
            ReportKind.HARD,
        ),
        (b"From: a@example.net\n" + b"To: b@example.org\n" * 60_000 + b"\nx", ReportKind.MESSAGE),
        (b"From: a@example.net\nTo: " + b"b@example.org, " * 70_000 + b"\n\nx", ReportKind.MESSAGE),
        (MANY_BLOCKS, ReportKind.HARD),
        # 65,000 tiny parts in the first MiB, and flufl.bounce reading them once per pattern
        (
            b"From: MAILER-DAEMON@mx.example\nSubject: Returned mail\n"
            b"Content-Type: multipart/mixed; boundary=B\n\n"
            + b"--B\nContent-Type: text/plain\n\nx\n" * 100_000
            + b"--B--\n",
            ReportKind.UNREADABLE,
        ),
        # Where a text bounce's returned original starts was once a regular expression that
        # backtracked for minutes on a line of dashes.
        (
            b"From: MAILER-DAEMON@mx.example\nX-Failed-Recipients: a@example.net\n\n"
            + b"-" * 60_000
            + b"\n",
            ReportKind.HARD,
        ),
        (
            b"From: MAILER-DAEMON@mx.example\nSubject: Returned mail\n\n" + b", a@b" * 200_000,
            ReportKind.HARD,  # flufl.bounce's LLNL detector, on the first 64 KiB
        ),
    ],
    ids=[
        "500k-parameters",
        "60k-to-headers",
        "70k-addresses",
        "15k-dsn-blocks",
        "100k-parts",
        "60k-dashes",
        "1m-line",
    ],
)
def test_hostile_shapes_are_read(raw: bytes, kind: ReportKind) -> None:
    report = read_report(raw)
    assert report.kind is kind
    check(report)


def test_an_unexpected_exception_is_an_unreadable_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from syndicate.bounces import mime

    def broken(_msg: object, _name: str, limit: int = 100) -> list[str]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(mime, "raw_values", broken)
    report = read_report(fixture("postfix-550-user-unknown.eml"))
    assert report.kind is ReportKind.UNREADABLE
    assert report.problem == "reading failed: RuntimeError"


# -- fuzzing: every input gives a Report --------------------------------------------------------

ADDRESS = re.compile(r"[^\s@]+@[^\s@]+")


def one_line(text: str) -> bool:
    """No control character, surrogate or line separator (format characters may stay)."""
    return not any(unicodedata.category(ch) in {"Cc", "Cs", "Zl", "Zp"} for ch in text)


def check(report: Report) -> None:
    assert isinstance(report, Report)
    assert isinstance(report.kind, ReportKind)
    assert len(report.subject) <= 200 and one_line(report.subject)
    assert one_line(report.problem)
    # read_report's last guard turns an exception into "reading failed: ..."; the fuzzing
    # is there to show that no input needs it.
    assert not report.problem.startswith("reading failed")
    assert report.sender == "" or ADDRESS.fullmatch(report.sender)
    assert report.sender == report.sender.lower()
    for address in report.delivered_to:
        assert ADDRESS.fullmatch(address) and address == address.lower()
    assert len(set(report.delivered_to)) == len(report.delivered_to)
    for message_id in report.message_ids:
        assert message_id.startswith("<") and message_id.endswith(">")
    for failure in report.failures:
        assert failure.address == "" or ADDRESS.fullmatch(failure.address)
        assert failure.address == failure.address.lower()
        assert len(failure.diagnostic) <= 500 and one_line(failure.diagnostic)
        assert failure.action in {"failed", "delayed", "complaint", ""}
    if report.kind in {ReportKind.HARD, ReportKind.SOFT, ReportKind.COMPLAINT}:
        assert report.failures
    else:
        assert not report.failures


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=4000))
def test_random_bytes(raw: bytes) -> None:
    check(read_report(raw))


@FUZZ
@given(st.sampled_from(NAMES), st.floats(0, 1))
def test_truncated_fixtures(name: str, where: float) -> None:
    raw = fixture(name)
    check(read_report(raw[: int(len(raw) * where)]))


@FUZZ
@given(
    st.sampled_from(NAMES),
    st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=0, max_size=12)), max_size=8),
)
def test_mutated_fixtures(name: str, edits: list[tuple[float, bytes]]) -> None:
    raw = bytearray(fixture(name))
    for where, replacement in edits:
        at = int(len(raw) * where)
        raw[at : at + len(replacement)] = replacement
    check(read_report(bytes(raw)))


HEADER_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80
) | st.sampled_from(
    [
        "=?utf-8?q?a=0D=0Ab?=",
        "=?utf-8?b?////?=",
        "=?x-bogus?q?x?=",
        '"unterminated <a@b',
        "<>",
        ';;;;;"";;',
        "rfc822;",
        "boundary=",
    ]
)


@FUZZ
@given(
    st.sampled_from(NAMES),
    st.sampled_from(
        [b"Subject", b"From", b"To", b"Content-Type", b"Final-Recipient", b"Action", b"Status"]
    ),
    HEADER_TEXT,
)
def test_hostile_header_values(name: str, header: bytes, value: str) -> None:
    raw = fixture(name)
    pattern = re.compile(rb"^(" + header + rb":)[^\n]*$", re.MULTILINE | re.IGNORECASE)
    encoded = value.encode("utf-8")
    check(read_report(pattern.sub(lambda m: m.group(1) + b" " + encoded, raw)))


@FUZZ
@given(st.text(alphabet='-=B\n\r \t;:"abc', max_size=300))
def test_broken_boundaries(body: str) -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example\nContent-Type: multipart/report; "
        b'report-type=delivery-status; boundary="B"\n\n' + body.encode()
    )
    check(read_report(raw))
