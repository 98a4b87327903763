"""Burmese written in Zawgyi -> Unicode, decided once per post.

Zawgyi is a font encoding that reuses the code points of Unicode's Myanmar block with other
meanings (U+1031 before the consonant, U+105A-U+1097 for stacked and alternative shapes).
It looks like Unicode to every tool, and many Myanmar sites still publish in it; a reader
whose font is a Unicode one sees it garbled, and search, sorting and excerpts break. So at
ingest a post in Zawgyi is converted to Unicode once, and `Post.zawgyi` remembers it was.

Detecting. Google's myanmartools gives the probability that a text is Zawgyi (a Markov model
trained on web text in Zawgyi, Unicode Burmese and Shan); a post is converted at 0.95 or
more, the threshold Google's README gives for converting automatically (fewer than 1% of
Unicode strings wrongly flagged). Converting Unicode would corrupt it, so the decision
is made once, on the post's whole Burmese text (title, summary and content together): a post
is never half-converted, and a short ambiguous title does not decide alone. Only text with a
character in U+1000-U+109F reaches the model, so feeds in other scripts pay one regex search
per field, and the model sees at most MAX_SAMPLE characters, so a huge post costs no more.

Converting. ICU's "Zawgyi-my" transliterator is the reference, but PyICU needs a compiler
and libicu-dev, and syndicate installs with nothing but Python. Of the converters on PyPI we
use paraencoder (pure Python, MIT, no dependencies), the only one that agrees with ICU on a
real Zawgyi text (3,500 characters of the UDHR in Zawgyi, identical output) — see
pyproject.toml for the others and why not. On 2,487 generated strings of valid syllables it
differed from ICU on 23, all one case (the vowel sign E left before a medial ha after
ya-pin); with `_REPAIRS`, which fixes that and two cases found while testing, on none.

HTML. Only text nodes are converted, never tags or attribute values: an href may hold
Burmese (an IRI slug in the site's own encoding) and must reach the reader byte for byte.
Conversion runs after nh3 has sanitised the HTML, because nh3's output is a known, simple
serialisation (attribute values always double-quoted, no comments, script and style gone),
which `_TAG` splits exactly; raw feed HTML would need a parser of its own. Converting then is
safe: it only rewrites characters of the Myanmar block (and drops a zero-width space or a
space before a dot below), never adds "<" or "&", so the sanitised HTML stays sanitised.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import cache

from myanmartools import ZawgyiDetector
from para.convert import zg_to_unicode

THRESHOLD = 0.95  # Google's threshold when conversion is automatic, as here
MAX_SAMPLE = 5_000  # Burmese characters the detector reads per post: plenty to decide

_MYANMAR = re.compile("[\u1000-\u109f]")
# A tag as nh3 writes it: attribute values are double-quoted and may contain ">".
_TAG = re.compile(r'<(?:[^>"]|"[^"]*")*>')
# Fixes to paraencoder's output, found by comparing it with ICU's Zawgyi-my.
_REPAIRS = (
    # Medials come before the vowel sign E in Unicode; after ya-pin + ha-htoe paraencoder
    # leaves E in front of the ha ("ချေှ" for "ချှေ"). A medial cannot start a syllable, so
    # one right after E always belongs before it.
    (re.compile("\u1031([\u103b-\u103e]+)"), "\\1\u1031"),
    # Zawgyi writers type "၎" or "၎င္း" for ၎င်း; paraencoder (like ICU) expands the
    # symbol in the second one too, giving "၎င်းင်း".
    (re.compile("\u104e\u1004\u103a\u1038\u1004\u103a\u1038"), "\u104e\u1004\u103a\u1038"),
    # Zawgyi writers type the digit zero for the letter wa. paraencoder turns it into wa
    # after a non-digit, so one that starts a text node ("၀န်ကြီး", minister) stays a digit;
    # a zero followed by a letter or a sign of a syllable is the letter.
    (re.compile("\\A\u1040(?=[\u1000-\u103f])"), "\u101d"),
)


@dataclass(frozen=True, slots=True)
class PostText:
    """A post's text as it should be stored: converted when `zawgyi` is True."""

    title: str
    summary_html: str
    content_html: str
    zawgyi: bool = False


def has_myanmar(text: str) -> bool:
    """True if the text has any character of the Myanmar block (U+1000-U+109F)."""
    return _MYANMAR.search(text) is not None


def zawgyi_probability(text: str) -> float:
    """myanmartools' probability that `text` is Zawgyi; -inf when it has no Burmese."""
    return _detector().get_zawgyi_probability(text)


def is_zawgyi(text: str) -> bool:
    """Whether a plain text is Zawgyi. Text without Myanmar characters never reaches the
    detector."""
    sample = _sample([text])
    return bool(sample) and zawgyi_probability(sample) >= THRESHOLD


def text_to_unicode(text: str) -> str:
    """Convert a plain text that is Zawgyi (the caller decided) to Unicode."""
    if not has_myanmar(text):
        return text
    converted = zg_to_unicode(text, normalize=False, force=True)
    for pattern, replacement in _REPAIRS:
        converted = pattern.sub(replacement, converted)
    return converted


def html_to_unicode(html: str) -> str:
    """Convert the text nodes of sanitised HTML (as sanitise_html writes it) to Unicode,
    leaving every tag and attribute value as it is."""
    if not has_myanmar(html):
        return html
    return "".join(part if part.startswith("<") else text_to_unicode(part) for part in _parts(html))


def post_text(title: str, summary_html: str, content_html: str) -> PostText:
    """Decide once whether the post is Zawgyi and, if it is, convert all three.

    The HTML must be sanitise_html's output (or our own escaped text in <p>s).
    """
    texts = [title, *_text_nodes(summary_html)]
    if content_html != summary_html:
        texts += _text_nodes(content_html)
    sample = _sample(texts)
    if not sample or zawgyi_probability(sample) < THRESHOLD:
        return PostText(title, summary_html, content_html)
    summary = html_to_unicode(summary_html)
    content = summary if content_html == summary_html else html_to_unicode(content_html)
    return PostText(text_to_unicode(title), summary, content, zawgyi=True)


def _parts(html: str) -> list[str]:
    """Tags and the text between them, in order; "".join() gives the HTML back."""
    parts: list[str] = []
    at = 0
    for tag in _TAG.finditer(html):
        if tag.start() > at:
            parts.append(html[at : tag.start()])
        parts.append(tag[0])
        at = tag.end()
    if at < len(html):
        parts.append(html[at:])
    return parts


def _text_nodes(html: str) -> list[str]:
    if not has_myanmar(html):
        return []
    return [part for part in _parts(html) if not part.startswith("<")]


def _sample(texts: list[str]) -> str:
    """The texts that have Burmese, joined by line breaks (the detector treats any
    non-Myanmar character as a boundary), cut at MAX_SAMPLE characters."""
    burmese = "\n".join(text for text in texts if has_myanmar(text))
    return burmese[:MAX_SAMPLE]


@cache
def _detector() -> ZawgyiDetector:
    # Built on first use (reading its model takes about 20 ms), so a process that never
    # sees Burmese never pays for it. myanmartools 1.2.1 reads the model with
    # importlib.resources.open_binary, which Python 3.11 and 3.12 call deprecated (3.13
    # un-deprecated it): the warning is theirs, and says nothing to an admin.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "open_binary is deprecated", DeprecationWarning)
        return ZawgyiDetector()
