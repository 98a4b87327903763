"""What a message that came back to us is: a bounce, a complaint, an auto-reply or a person.

`read_report(raw)` is a pure function of the message's bytes: no database, no network, no
configuration. It never raises, and its work is bounded whatever the input (see `mime`).

The order of the questions it asks, and why:

1. A complaint (RFC 5965 ARF: a multipart/report of report-type feedback-report, or any
   message/feedback-report part). Asked before the DSN question: a complaint quotes our
   message and must never count as a mere bounce.
2. A delivery status notification (RFC 3464: a message/delivery-status part). A DSN always
   carries "Auto-Submitted: auto-replied" too, so the report structure is looked at before
   any auto-reply header.
3. A bounce in no standard format (Exim's text, qmail, old Exchange): the message looks like
   one (X-Failed-Recipients, a MAILER-DAEMON or postmaster sender, a bounce subject, a bounce
   phrase in its text) and flufl.bounce's detectors name the failed recipients. Exim's text
   bounces carry Auto-Submitted as well, which is why this too comes before the auto-reply
   question. flufl.bounce is not run on other mail: some of its detectors are heuristics that
   find an "address" in an ordinary sentence.
4. An auto-reply (RFC 3834 Auto-Submitted other than "no", X-Autoreply, X-Autorespond,
   Precedence: auto_reply, Microsoft's X-Auto-Response-Suppress with an "Automatic reply:"
   subject), or a read receipt (a disposition-notification report).
5. Otherwise a message from a person.

Action against Status, decided here: when a recipient block has one of RFC 3464's actions,
the action decides. "failed" is final whatever the status says (a "failed" with 4.x.x is an
MTA that gave up retrying: permanent), "delayed" will be retried (temporary even with a 5.x.x
status), and "delivered", "relayed" and "expanded" are successes. Only a block without a
standard action is judged by its status class (5 permanent, 4 temporary, 2 success); the
non-standard "Action: error" of OpenSMTPD counts as "failed".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from enum import StrEnum

from syndicate.bounces import mime


class ReportKind(StrEnum):
    HARD = "hard"  # a permanent failure: Action failed / Status 5.x.x, or flufl permanent
    SOFT = "soft"  # a temporary one: Action delayed / 4.x.x, or flufl temporary
    COMPLAINT = "complaint"  # RFC 5965 ARF feedback report (abuse, fraud, ...)
    AUTO_REPLY = "auto-reply"  # RFC 3834 auto-reply, out of office, read receipt: ignored
    MESSAGE = "message"  # an ordinary message from a person
    DELIVERED = "delivered"  # a DSN whose recipients were all delivered/relayed/expanded
    UNREADABLE = "unreadable"  # looks like a report, but nothing usable could be read


@dataclass(frozen=True, slots=True)
class Failure:
    """One recipient a report names."""

    address: str  # lower-cased addr-spec, "" if the report does not say
    permanent: bool
    status: str  # enhanced status code "5.1.1", "" if none
    action: str  # "failed" | "delayed" | "complaint" | ""
    diagnostic: str  # one line, at most 500 characters


@dataclass(frozen=True, slots=True)
class Report:
    kind: ReportKind
    failures: tuple[Failure, ...]
    message_ids: tuple[str, ...]  # Message-IDs ("<...>") of our messages the report quotes
    delivered_to: tuple[str, ...]  # addresses it was delivered to, where a VERP token is found
    sender: str  # the From addr-spec, lower-cased
    subject: str  # decoded, one line, at most 200 characters
    problem: str = ""  # for UNREADABLE: why, one short line


SUBJECT_LIMIT = 200
DIAGNOSTIC_LIMIT = 500
MAX_IDS = 20

_DELIVERED_TO_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to")
_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_SMTP_REPLY = re.compile(r"(?<!\d)([245])\d\d(?=[ -])")
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,995}>")
_DAEMONS = frozenset({"mailer-daemon", "mailer_daemon", "maildaemon", "mail-daemon", "postmaster"})
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification|delivery (?:has )?fail|failure notice"
    r"|returned mail|mail delivery (?:failed|failure|system|subsystem|problem)|non-?delivery"
    r"|could not be delivered|delivery (?:notification|failure)|delayed mail"
    r"|warning: (?:message|could not send)|message not delivered",
    re.IGNORECASE,
)
_BOUNCE_TEXT = re.compile(
    r"this message was created automatically by mail delivery software"
    r"|this is the mail system at host|i'm afraid i wasn't able to deliver"
    r"|delivery to the following recipients? (?:failed|has been delayed)"
    r"|could not be delivered to one or more|the following addresses had permanent",
    re.IGNORECASE,
)
# A person replying to or forwarding a bounce ("Fwd: Undelivered Mail ..."), in a few languages.
_REPLY_SUBJECT = re.compile(r"\s*(?:re|fwd?|aw|wg|tr|sv|vs|rv|enc)\s*:", re.IGNORECASE)
# Where the returned original starts in a text bounce: status codes below it are not ours.
# Looked for line by line (a regular expression of "dashes, anything, phrase" took minutes
# on a line of 60,000 dashes).
_ORIGINAL_PHRASES = (
    "copy of the message",
    "original message",
    "returned message",
    "message follows",
    "message headers follow",
    "below this line",
)


def read_report(raw: bytes) -> Report:
    """Read one message that came back to us; never raises, whatever `raw` holds."""
    try:
        return _read(raw)
    except Exception as error:  # a last guard: a bug here must not stop a mailbox's processing
        return Report(
            ReportKind.UNREADABLE,
            (),
            (),
            (),
            "",
            "",
            problem=mime.one_line(f"reading failed: {type(error).__name__}", 100),
        )


def _read(raw: bytes) -> Report:
    msg = mime.parse(raw)
    if msg is None:
        return Report(ReportKind.UNREADABLE, (), (), (), "", "", "MIME parts nested too deep")
    senders = mime.addresses(mime.raw_values(msg, "from"), limit=1)
    base = _Common(
        sender=senders[0] if senders else "",
        subject=mime.decoded(mime.raw_value(msg, "subject"), SUBJECT_LIMIT),
        delivered_to=tuple(_delivered_to(msg)),
    )
    if not msg.keys():
        return base.report(ReportKind.UNREADABLE, problem="no header fields")
    parts = list(mime.walk(msg))
    types = [mime.content_type(part) for part, _depth in parts]
    top_type = types[0]
    report_type = mime.param(msg, "report-type").lower() if top_type == "multipart/report" else ""

    if report_type == "feedback-report" or "message/feedback-report" in types:
        return _complaint(base, parts, types)
    if any(t in {"message/delivery-status", "message/global-delivery-status"} for t in types):
        return _dsn(base, msg, parts, types)
    if report_type == "disposition-notification" or "message/disposition-notification" in types:
        return base.report(ReportKind.AUTO_REPLY, message_ids=_quoted_ids(parts, types))
    if top_type == "multipart/report" and not isinstance(msg.get_payload(), list):
        return base.report(
            ReportKind.UNREADABLE, problem="multipart/report whose MIME parts cannot be found"
        )
    if top_type == "multipart/report":
        if report_type in {"delivery-status", ""}:
            problem = "multipart/report without a delivery-status part"
        else:
            problem = f"multipart/report of an unknown report-type ({report_type[:40]})"
        return _text_bounce(base, msg, parts, types, problem)
    if _looks_like_bounce(msg, base, parts, types):
        problem = "a bounce without a failed recipient that could be read"
        return _text_bounce(base, msg, parts, types, problem)
    if _is_auto_reply(msg, base.subject):
        return base.report(ReportKind.AUTO_REPLY, message_ids=_reply_ids(msg))
    return base.report(ReportKind.MESSAGE, message_ids=_reply_ids(msg))


@dataclass(frozen=True, slots=True)
class _Common:
    """What every kind of report carries, read once from the top-level headers."""

    sender: str
    subject: str
    delivered_to: tuple[str, ...]

    def report(
        self,
        kind: ReportKind,
        failures: tuple[Failure, ...] = (),
        message_ids: tuple[str, ...] = (),
        problem: str = "",
    ) -> Report:
        return Report(
            kind, failures, message_ids, self.delivered_to, self.sender, self.subject, problem
        )


def _delivered_to(msg: Message) -> list[str]:
    values: list[str] = []
    for name in (*_DELIVERED_TO_HEADERS, "to", "cc"):
        values.extend(mime.raw_values(msg, name))
    return mime.addresses(values)


# -- complaints (RFC 5965) ---------------------------------------------------------------------


def _complaint(base: _Common, parts: list[tuple[Message, int]], types: list[str]) -> Report:
    fields: Message | None = None
    for (part, _depth), ctype in zip(parts, types, strict=True):
        if ctype == "message/feedback-report":
            fields = _first_block(part)
            break
    ids = _quoted_ids(parts, types)
    if fields is None:
        return base.report(
            ReportKind.UNREADABLE,
            message_ids=ids,
            problem="feedback report without a message/feedback-report part",
        )
    recipients = mime.addresses(mime.raw_values(fields, "original-rcpt-to"), limit=1)
    if not recipients:
        enclosed = _enclosed_headers(parts, types)
        recipients = mime.addresses(mime.raw_values(enclosed, "to"), limit=1) if enclosed else []
    feedback_type = mime.one_line(mime.raw_value(fields, "feedback-type"), 50).lower()
    user_agent = mime.one_line(mime.raw_value(fields, "user-agent"), 200)
    failure = Failure(
        address=recipients[0] if recipients else "",
        permanent=True,
        status="",
        action="complaint",
        diagnostic=mime.one_line("; ".join(v for v in (feedback_type, user_agent) if v), 500),
    )
    return base.report(ReportKind.COMPLAINT, (failure,), ids)


def _enclosed_headers(parts: list[tuple[Message, int]], types: list[str]) -> Message | None:
    """The header fields of the first returned original (message/rfc822 or rfc822-headers)."""
    for (part, _depth), ctype in zip(parts, types, strict=True):
        if ctype in {"message/rfc822", "message/global"}:
            block = _first_block(part)
            if block is not None:
                return block
        elif ctype in {"text/rfc822-headers", "text/global-headers"}:
            return mime.header_block(mime.text_of(part))
    return None


def _first_block(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    if isinstance(payload, str):
        return mime.header_block(payload)
    return None


def _quoted_ids(parts: list[tuple[Message, int]], types: list[str]) -> tuple[str, ...]:
    """Message-IDs of the originals a report returns (whole, or their headers only)."""
    ids: list[str] = []
    for (part, _depth), ctype in zip(parts, types, strict=True):
        headers: Message | None = None
        if ctype in {"message/rfc822", "message/global"}:
            headers = _first_block(part)
        elif ctype in {"text/rfc822-headers", "text/global-headers"}:
            headers = mime.header_block(mime.text_of(part))
        if headers is not None:
            _add_ids(ids, mime.raw_values(headers, "message-id")[:1])
    return tuple(ids)


def _reply_ids(msg: Message) -> tuple[str, ...]:
    ids: list[str] = []
    _add_ids(ids, mime.raw_values(msg, "in-reply-to") + mime.raw_values(msg, "references"))
    return tuple(ids)


def _add_ids(ids: list[str], values: list[str]) -> None:
    for value in values:
        for found in _MESSAGE_ID.findall(value):
            if found not in ids and len(ids) < MAX_IDS and found.isprintable():
                ids.append(found)


# -- delivery status notifications (RFC 3464) --------------------------------------------------


def _dsn(base: _Common, msg: Message, parts: list[tuple[Message, int]], types: list[str]) -> Report:
    failures: list[Failure] = []
    successes = 0
    for (part, _depth), ctype in zip(parts, types, strict=True):
        if ctype not in {"message/delivery-status", "message/global-delivery-status"}:
            continue
        # The per-message block (Reporting-MTA, Arrival-Date) names no recipient, action or
        # status, so it reads as None like any other block without them; not skipping the
        # first block by position keeps a report whose MTA left that block out.
        for block in _status_blocks(part):
            outcome = _recipient(block)
            if outcome is True:
                successes += 1
            elif isinstance(outcome, Failure):
                failures.append(outcome)
    ids = _quoted_ids(parts, types)
    if failures:
        kind = ReportKind.HARD if any(f.permanent for f in failures) else ReportKind.SOFT
        return base.report(kind, tuple(failures), ids)
    if successes:
        return base.report(ReportKind.DELIVERED, (), ids)
    # A delivery-status part with no recipient block that could be read: flufl.bounce may
    # still find the recipients in the human-readable part.
    problem = "delivery-status report without a recipient that could be read"
    return _text_bounce(base, msg, parts, types, problem)


def _status_blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status part.

    The email package parses message/delivery-status into one Message per block. It parses
    message/global-delivery-status (RFC 6533) as a single message instead: its first block
    becomes the headers and the rest the body, which is split here by blank lines.
    """
    payload = part.get_payload()
    if isinstance(payload, str):
        payload = [mime.header_block(payload)] if payload.strip() else []
    blocks: list[Message] = []
    for item in payload[: mime.MAX_PARTS]:
        if not isinstance(item, Message):
            continue
        blocks.append(item)
        rest = item.get_payload()
        if isinstance(rest, str) and rest.strip():
            chunks = re.split(r"\r?\n[ \t]*\r?\n", rest[: mime.MAX_TEXT])
            blocks.extend(mime.header_block(chunk) for chunk in chunks if chunk.strip())
    return blocks


def _recipient(block: Message) -> Failure | bool | None:
    """A failure, True for a success, or None for a block that says nothing usable."""
    address = _dsn_address(block, "final-recipient") or _dsn_address(block, "original-recipient")
    action = mime.one_line(mime.raw_value(block, "action"), 40).lower()
    action = action.split("(")[0].strip()  # some MTAs add a comment
    diagnostic = mime.one_line(mime.raw_value(block, "diagnostic-code"), DIAGNOSTIC_LIMIT)
    status = _status_code(mime.raw_value(block, "status")) or _status_code(diagnostic)
    if action in {"delivered", "relayed", "expanded"}:
        return True
    if action.startswith(("failed", "error")):
        return Failure(address, True, status, "failed", diagnostic)
    if action.startswith("delayed"):
        return Failure(address, False, status, "delayed", diagnostic)
    klass = status[:1] or _reply_class(diagnostic)
    if klass == "2":
        return True
    if klass in {"4", "5"}:
        return Failure(address, klass == "5", status, "", diagnostic)
    return None


def _dsn_address(block: Message, name: str) -> str:
    """The address of "Final-Recipient: rfc822; user@host" (or "utf-8;", RFC 6533).

    Some MTAs leave out the address type, or write an angle-addr alone: taken as rfc822.
    """
    value = mime.one_line(mime.raw_value(block, name), 400)
    kind, sep, address = value.partition(";")
    if not sep:
        address = kind
    elif kind.strip().lower() not in {"rfc822", "utf-8"}:
        return ""
    return mime.clean_address(address)


def _status_code(text: str) -> str:
    found = _ENHANCED.search(text)
    return ".".join(found.groups()) if found else ""


def _reply_class(text: str) -> str:
    found = _SMTP_REPLY.search(text)
    return found.group(1) if found else ""


# -- bounces in no standard format (flufl.bounce) ----------------------------------------------


def _looks_like_bounce(
    msg: Message, base: _Common, parts: list[tuple[Message, int]], types: list[str]
) -> bool:
    if mime.raw_values(msg, "x-failed-recipients"):
        return True
    if base.sender.split("@")[0] in _DAEMONS:
        return True
    if _BOUNCE_SUBJECT.search(base.subject) and not _REPLY_SUBJECT.match(base.subject):
        return True
    text = _first_text(parts, types)
    return bool(_BOUNCE_TEXT.search(text[:8192]))


def _text_bounce(
    base: _Common,
    msg: Message,
    parts: list[tuple[Message, int]],
    types: list[str],
    problem: str,
) -> Report:
    """A report flufl.bounce reads, or UNREADABLE for `problem`."""
    text = _notification_text(parts, types)
    ids = _quoted_ids(parts, types) or _inline_ids(parts, types)
    mime.slim(msg)  # after the reading above, which needs no more than what slim leaves
    temporary, permanent = _flufl_failures(msg)
    failures = [
        _text_failure(address, address in permanent, text)
        for address in sorted(permanent | temporary)
    ]
    if failures:
        kind = ReportKind.HARD if permanent else ReportKind.SOFT
        return base.report(kind, tuple(failures), ids)
    return base.report(ReportKind.UNREADABLE, message_ids=ids, problem=mime.one_line(problem, 100))


def _flufl_failures(msg: Message) -> tuple[set[str], set[str]]:
    """flufl.bounce's (temporary, permanent) recipients as clean lower-case strings.

    Imported here, not at the top: only mail that looks like a bounce in no standard format
    needs its seventeen detectors. Any exception of a detector means "nothing found".
    """
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector failing on hostile input
        return set(), set()

    def clean(found: frozenset[bytes]) -> set[str]:
        texts = {mime.clean_address(item.decode("ascii", "replace")) for item in found}
        return {text for text in texts if text}

    hard = clean(permanent)
    return clean(temporary) - hard, hard


def _first_text(parts: list[tuple[Message, int]], types: list[str]) -> str:
    for (part, depth), ctype in zip(parts, types, strict=True):
        if ctype == "text/plain" and depth <= 2:
            return mime.text_of(part)
    return ""


def _original_start(text: str) -> tuple[int, int]:
    """Where the line that announces the returned original starts and ends, or (-1, -1).

    Exim: "------ This is a copy of the message, including all the headers. ------"
    """
    offset = 0
    for line in text.splitlines(keepends=True):
        head = line[:200].strip().lower()
        if head.startswith("--") and any(phrase in head for phrase in _ORIGINAL_PHRASES):
            return offset, offset + len(line)
        offset += len(line)
    return -1, -1


def _notification_text(parts: list[tuple[Message, int]], types: list[str]) -> str:
    """The human-readable notice of a bounce, without the original message it returns."""
    text = _first_text(parts, types)
    start, _end = _original_start(text)
    return text[:start] if start >= 0 else text


def _inline_ids(parts: list[tuple[Message, int]], types: list[str]) -> tuple[str, ...]:
    """Message-IDs of an original returned as plain text below the notice (Exim, qmail).

    The first Message-ID field there is the returned message's own; later ones would be
    quoted deeper, or in its body.
    """
    text = _first_text(parts, types)
    _start, end = _original_start(text)
    if end < 0:
        return ()
    lines = text[end:].splitlines()
    for index, line in enumerate(lines):
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() == "message-id":
            ids: list[str] = []
            _add_ids(ids, [value, *lines[index + 1 : index + 2]])  # the ID may be folded
            return tuple(ids[:1])
    return ()


def _text_failure(address: str, permanent: bool, text: str) -> Failure:
    """A failure flufl.bounce found, with the status and reply the notice gives near it."""
    where = text.lower().find(address)
    window = text[where : where + 1500] if where >= 0 else text[:1500]
    reply = re.search(r"(?<!\d)[245]\d\d[ -].*(?:\n[ \t]+\S.*)*", window)
    diagnostic = mime.one_line(reply.group(0), DIAGNOSTIC_LIMIT) if reply else ""
    status = _status_code(diagnostic) or _status_code(window)
    return Failure(address, permanent, status, "", diagnostic)


# -- auto-replies (RFC 3834) -------------------------------------------------------------------


def _is_auto_reply(msg: Message, subject: str) -> bool:
    submitted = mime.one_line(mime.raw_value(msg, "auto-submitted"), 100).lower()
    if submitted and submitted.split(";")[0].strip() != "no":
        return True
    if mime.raw_values(msg, "x-autoreply") or mime.raw_values(msg, "x-autorespond"):
        return True
    precedence = mime.one_line(mime.raw_value(msg, "precedence"), 100).lower()
    if precedence == "auto_reply":
        return True
    lowered = subject.lower()
    return bool(mime.raw_values(msg, "x-auto-response-suppress")) and lowered.startswith(
        ("automatic reply:", "auto reply:", "autoreply:", "out of office")
    )
