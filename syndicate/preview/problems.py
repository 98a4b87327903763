"""What is wrong with the upcoming digest issue, for the live preview to list.

    problems = await find_problems(html, message)      # links, images, size, spam
    problem = template_problem(error, settings.templates_dir)   # when rendering failed

Each check gives Problems (syndicate.preview.problem): a template error as file:line, links
that do not lead anywhere (links.py), images without ``alt``, a message Gmail clips, and
SpamAssassin's score (spam.py). The page shows them; nothing here renders or sends.

Gmail clips a message over 102 KB: it shows the start and hides the rest behind "View
entire message", and with it the unsubscribe link and the footer. The size counted is the
message as sent (headers, MIME parts and their transfer encoding), so pass the bytes a
transport would send, not the HTML alone.
"""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser
from pathlib import Path

from jinja2 import TemplateError as JinjaTemplateError
from jinja2 import TemplateNotFound

from syndicate.errors import ConfigError, SyndicateError
from syndicate.preview.links import check_links, links_in
from syndicate.preview.problem import Problem, url_shown
from syndicate.preview.spam import spam_score
from syndicate.templating import TemplateProblem, display_path
from syndicate.templating import template_problem as located_problem

__all__ = [
    "CLIPPING_SIZE",
    "Problem",
    "check_links",
    "clipping",
    "find_problems",
    "images_without_alt",
    "links_in",
    "spam_score",
    "template_problem",
]

CLIPPING_SIZE = 102 * 1024  # bytes: Gmail clips a message larger than this
CLIPPING_WARNING = 0.9  # of CLIPPING_SIZE: close enough that one more post may tip it
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def template_problem(error: BaseException, templates_dir: Path) -> Problem:
    """The Problem for ``error``, raised loading or rendering the issue's templates.

    Jinja's syntax errors know their file and line; errors raised while rendering
    (UndefinedError, a TypeError in an expression) are placed at the innermost template
    frame of their traceback, which Jinja maps to the template's file and line; syndicate's
    TemplateProblem already says both. ``where`` is "templates/email/x.j2:LINE", relative
    to the config folder (``templates_dir.parent``) when the file is inside it.
    """
    if isinstance(error, TemplateProblem):
        where = error.template if error.line is None else f"{error.template}:{error.line}"
        return Problem("template", where, _sentence(error.reason))
    if isinstance(error, ConfigError):
        return _config_problem(error, templates_dir)
    if isinstance(error, Exception):
        located = _located(error, templates_dir)
        if located is not None:
            return template_problem(located, templates_dir)
    where = display_path(str(templates_dir), templates_dir)
    if isinstance(error, SyndicateError | JinjaTemplateError):
        return Problem("template", where, _sentence(str(error) or type(error).__name__))
    # Not raised from a template: still the reason nothing can be shown.
    return Problem(
        "template", where, _sentence(f"Rendering failed: {type(error).__name__}: {error}")
    )


def _located(error: Exception, templates_dir: Path) -> TemplateProblem | None:
    """syndicate.templating's reading of ``error``: file and line from the error or from its
    traceback's template frames (the templates' filenames are absolute paths)."""
    name = (error.name or "") if isinstance(error, TemplateNotFound) else ""
    folders = [templates_dir]
    if not templates_dir.is_absolute():
        folders.append(templates_dir.absolute())
    for folder in folders:
        problem = located_problem(error, folder, name)
        if problem is not None and (name or problem.line is not None):
            return problem
    return None


def _config_problem(error: ConfigError, templates_dir: Path) -> Problem:
    # Each line reads "<config file>: <key>: <reason>"; the file is named once, as
    # admins know it.
    label, _, _ = (error.problems[0] if error.problems else "").partition(": ")
    reasons = [line.removeprefix(f"{label}: ") for line in error.problems] or [str(error)]
    where = display_path(label, templates_dir) if label else "config"
    return Problem("template", where, _sentence("; ".join(reasons)))


def images_without_alt(html: str) -> list[Problem]:
    """An "image" problem for each image of ``html`` without ``alt`` text, once per address.

    No ``alt`` at all is an error: a screen reader reads out the file name, and a mail
    client that blocks images shows nothing in its place. ``alt=""`` says the image is
    decorative, which is right for a spacer or a tracking pixel (1 pixel wide or high) or an
    image marked ``role="presentation"``/``"none"`` or ``aria-hidden="true"``; on any other
    image it is a warning, since the reader learns nothing of it.
    """
    parser = _ImageParser()
    parser.feed(html)
    parser.close()
    problems = []
    for (src, kind), count in parser.found.items():
        times = f" ({count} times)" if count > 1 else ""
        where = f'<img src="{url_shown(src)}">'
        if kind == "missing":
            problems.append(
                Problem(
                    "image",
                    where,
                    f'An image has no alt text{times}: add alt="..." saying what it shows, '
                    'or alt="" if it is only decoration.',
                )
            )
        else:
            problems.append(
                Problem(
                    "image",
                    where,
                    f"An image has empty alt text{times}, so readers who cannot see it learn "
                    "nothing of it; describe it unless it is only decoration.",
                    "warning",
                )
            )
    return problems


class _ImageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[tuple[str, str], int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "img":
            return
        values = {name: (value or "") for name, value in attrs}
        alt = values.get("alt")
        if alt is not None and (alt.strip() or _decorative(values)):
            return
        key = (values.get("src", "").strip(), "missing" if alt is None else "empty")
        self.found[key] = self.found.get(key, 0) + 1


def _decorative(attrs: dict[str, str]) -> bool:
    role = attrs.get("role", "").strip().lower()
    if role in ("presentation", "none") or attrs.get("aria-hidden", "").strip() == "true":
        return True
    return any(_pixels(attrs.get(side, "")) in (0, 1) for side in ("width", "height"))


def _pixels(value: str) -> int | None:
    number = value.strip().lower().removesuffix("px").strip()
    return int(number) if number.isascii() and number.isdigit() else None


def clipping(message: bytes) -> Problem | None:
    """A "size" problem when ``message`` (as sent) is over Gmail's 102 KB clipping size (an
    error) or over 90% of it (a warning); None when it is well under."""
    size = len(message)
    if size > CLIPPING_SIZE:
        return Problem(
            "size",
            "the message as sent",
            f"The message is {_kb(size)}, {_kb(size - CLIPPING_SIZE)} over Gmail's 102 KB "
            "limit: Gmail will clip it, hiding the rest and the unsubscribe link behind "
            '"View entire message". Fewer posts or shorter summaries bring it under.',
        )
    if size > CLIPPING_WARNING * CLIPPING_SIZE:
        return Problem(
            "size",
            "the message as sent",
            f"The message is {_kb(size)}, {_kb(CLIPPING_SIZE - size)} under Gmail's 102 KB "
            "clipping limit: a few more posts will make Gmail clip it.",
            "warning",
        )
    return None


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


async def find_problems(
    html: str,
    message: bytes,
    *,
    check_link_urls: bool = True,
    allow_private_links: bool = False,
    link_timeout: float = 5.0,
    link_total: float = 20.0,
) -> list[Problem]:
    """Every problem of a rendered issue: its images and links (from ``html``), and its
    size and spam score (from ``message``, the bytes as sent), errors first.

    Links are requested only with ``check_link_urls`` (see links.check_links for the bounds
    and the refusal of private addresses); SpamAssassin runs in a thread meanwhile.
    """
    spam = asyncio.create_task(asyncio.to_thread(spam_score, message))
    try:
        problems = images_without_alt(html)
        if (size := clipping(message)) is not None:
            problems.append(size)
        if check_link_urls:
            problems += await check_links(
                links_in(html),
                timeout=link_timeout,
                total=link_total,
                allow_private=allow_private_links,
            )
        scored = await spam
    except BaseException:
        # Cancelled (the page asked again) or failed: nobody waits for the score. The
        # thread ends by itself, within spam_score's own time limit.
        spam.cancel()
        raise
    if scored is not None:
        problems.append(scored)
    return sorted(problems, key=lambda problem: _SEVERITY_ORDER[problem.severity])


def _sentence(text: str) -> str:
    """``text`` as one sentence: one line, a capital first, a full stop last."""
    text = " ".join(text.split())
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else f"{text}."
