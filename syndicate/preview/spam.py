"""SpamAssassin's score of a message, when SpamAssassin is installed.

    problem = spam_score(message)   # kind "spam": "info" under the threshold, "error" at it

``spamassassin -t -L`` scores the message with its local rules only (no DNS blocklists, no
Razor or Pyzor: nothing leaves the machine, and the score does not depend on the network)
and appends its report to the message it prints. The score and the threshold are read from
the ``X-Spam-Status`` header it writes, the rules that hit from the report at the very end
of its output: the message itself could carry text that looks like a report, but not after
SpamAssassin's own. Bayes is off (``use_bayes 0``): a preview must not teach a filter, and
an empty database only adds noise. The run is bounded by ``timeout``; a run that fails or
says nothing readable is a warning, never an exception.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from syndicate.preview.problem import Problem

PROGRAM = "spamassassin"
COMMAND = (
    "-t",  # test mode: the message back, with the report appended
    "-L",  # local tests only: no network
    "-x",  # do not create ~/.spamassassin/user_prefs
    "--cf=use_bayes 0",
    "--cf=bayes_auto_learn 0",
)
NOT_INSTALLED = "SpamAssassin is not installed: `apt-get install spamassassin` to score the message"
WHERE = "the message"
TOP_RULES = 5

_NUMBER = r"-?\d+(?:\.\d+)?"
_STATUS = re.compile(rf"\bscore=({_NUMBER})\s+required=({_NUMBER})")
_DETAILS = "Content analysis details:"
_SUMMARY = re.compile(rf"\(\s*({_NUMBER}) points?,\s*({_NUMBER}) required\)")
_RULE = re.compile(rf"^\s*({_NUMBER})\s+([A-Z0-9_]+)\s+(.*)$")


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    points: float
    description: str


@dataclass(frozen=True, slots=True)
class Score:
    score: float
    required: float
    rules: tuple[Rule, ...]  # as listed in the report


def spam_score(message: bytes, *, timeout: float = 30.0) -> Problem | None:
    """SpamAssassin's verdict on ``message`` (the bytes as sent) as a Problem of kind "spam":
    "info" under its threshold, "error" at or over it, naming the rules that weighed most;
    "info" saying how to install it when it is not on PATH; "warning" when the run fails
    or takes longer than ``timeout`` seconds."""
    program = shutil.which(PROGRAM)
    if program is None:
        return Problem("spam", WHERE, NOT_INSTALLED, "info")
    try:
        run = subprocess.run(  # noqa: S603 (a fixed program and arguments; the message is stdin)
            [program, *COMMAND],
            input=message,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Problem(
            "spam",
            WHERE,
            f"SpamAssassin did not finish within {timeout:g} s, so the message is not scored.",
            "warning",
        )
    except OSError as error:
        return Problem(
            "spam", WHERE, f"SpamAssassin could not be run: {error.strerror or error}.", "warning"
        )
    if run.returncode != 0:
        said = _last_line(run.stderr)
        return Problem(
            "spam",
            WHERE,
            f"SpamAssassin failed with exit status {run.returncode}"
            + (f": {said}." if said else "."),
            "warning",
        )
    score = parse_output(run.stdout)
    if score is None:
        return Problem(
            "spam", WHERE, "SpamAssassin ran but its output has no score to read.", "warning"
        )
    return verdict(score)


def verdict(score: Score) -> Problem:
    """The Problem that says ``score``: an error at or over the threshold."""
    weighed = sorted((r for r in score.rules if r.points > 0), key=lambda r: -r.points)
    top = "; ".join(
        f"{rule.name} {rule.points:+.1f} ({rule.description})" for rule in weighed[:TOP_RULES]
    )
    rules = f" Rules that hit: {top}." if top else " No rule added to it."
    if score.score >= score.required:
        return Problem(
            "spam",
            WHERE,
            f"SpamAssassin scores the message {score.score:.1f}, at or over its spam threshold "
            f"of {score.required:.1f}.{rules}",
        )
    return Problem(
        "spam",
        WHERE,
        f"SpamAssassin scores the message {score.score:.1f}, under its spam threshold of "
        f"{score.required:.1f}.{rules}",
        "info",
    )


def parse_output(output: bytes) -> Score | None:
    """The score in ``spamassassin -t`` output: its X-Spam-Status header (the first header
    block, where SpamAssassin replaces any the message had) and its report's rules (the last
    report, after the message); None when there is no score."""
    text = output.decode("utf-8", errors="replace").replace("\r\n", "\n")
    head = text.split("\n\n", 1)[0]
    found = _STATUS.search(_unfolded_status(head))
    details = text.rfind(_DETAILS)
    report = text[details:] if details >= 0 else ""
    if found is None:
        found = _SUMMARY.search(report)
    if found is None:
        return None
    return Score(float(found.group(1)), float(found.group(2)), _rules(report))


def _unfolded_status(head: str) -> str:
    """The X-Spam-Status field of a header block, its folded lines joined."""
    unfolded = re.sub(r"\n[ \t]+", " ", head)
    for line in unfolded.split("\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "x-spam-status":
            return value
    return ""


def _rules(report: str) -> tuple[Rule, ...]:
    """The rows of the report's table: " 2.8 DRUG_ED_CAPS  BODY: Mentions an E.D. drug",
    a long description continued on lines of its own."""
    lines = report.split("\n")
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith("----")), None)
    if start is None:
        return ()
    rules: list[Rule] = []
    for line in lines[start:]:
        if not line.strip():
            break
        row = _RULE.match(line)
        if row is not None:
            rules.append(Rule(row.group(2), float(row.group(1)), row.group(3).strip()))
        elif rules:  # a description continued
            last = rules[-1]
            rules[-1] = Rule(last.name, last.points, f"{last.description} {line.strip()}")
    return tuple(rules)


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode("utf-8", errors="replace").splitlines()]
    return next((line for line in reversed(lines) if line), "")
