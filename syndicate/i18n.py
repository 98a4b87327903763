"""The chrome in the reader's language: gettext catalogs, and dates and numbers by Babel.

    words = translator("th", settings.locales_dir)
    words.gettext("Unsubscribe")                 -> "ยกเลิกการรับ"
    words.ngettext("%(num)s post", "%(num)s posts", 3) % {"num": words.number(3)}
    words.month_label("2015-12")                 -> "ธันวาคม 2015"
    words.date(moment)                           -> "8 ธันวาคม 2015"

Catalogs live beside the templates, in `<config dir>/locales/<language>/LC_MESSAGES/
syndicate.po`, because they translate the templates' words and admins edit both (the
README's "Translating" section has the pybabel workflow). The compiled `.mo` files are not
in git: `pip install` builds them (setup.py), and a catalog whose `.mo` is missing or older
than its `.po` (an admin's edit, a `git pull`) is compiled here in memory instead, so a
translation never silently lags its source. Fuzzy entries are left out, as msgfmt does: a
string a translator has not confirmed reads in English rather than wrong.

English needs no catalog (the templates are written in it; an English one may reword
them), and its dates keep the site's own form ("8 December 2015", syndicate.months): an
English reader's digest is the same bytes as before languages existed. Other languages take
Babel's CLDR forms for their locale, which never depend on the process locale.
"""

from __future__ import annotations

import gettext
import io
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from syndicate.languages import language_tag, primary
from syndicate.months import MONTH_NAMES

DOMAIN = "syndicate"
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class Translator:
    """The words, dates and numbers of one language (a tag such as "th" or "en-GB")."""

    language: str
    catalog: gettext.NullTranslations

    @property
    def english(self) -> bool:
        return primary(self.language) == DEFAULT_LANGUAGE

    def gettext(self, message: str) -> str:
        return self.catalog.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self.catalog.ngettext(singular, plural, count)

    def pgettext(self, context: str, message: str) -> str:
        return self.catalog.pgettext(context, message)

    def npgettext(self, context: str, singular: str, plural: str, count: int) -> str:
        return self.catalog.npgettext(context, singular, plural, count)

    def date(self, moment: datetime) -> str:
        """A day as this language writes it: "8 December 2015", "8 ธันวาคม 2015"."""
        if self.english:
            return f"{moment.day} {MONTH_NAMES[moment.month - 1]} {moment.year}"
        return format_skeleton("yMMMMd", moment, locale=self._locale())

    def month(self, year: int, month: int) -> str:
        """A month as this language names it: "December 2015", "ธันวาคม 2015"."""
        if self.english:
            return f"{MONTH_NAMES[month - 1]} {year}"
        return format_skeleton("yMMMM", datetime(year, month, 1), locale=self._locale())

    def month_label(self, key: str) -> str:
        """ "2015-12" named in this language."""
        year, month = key.split("-")
        return self.month(int(year), int(month))

    def number(self, value: int) -> str:
        """An integer as this language writes it: "1,234" in Thai; English keeps plain
        digits ("1234"), as the templates always printed them."""
        if self.english:
            return str(value)
        return format_decimal(value, locale=self._locale())

    def _locale(self) -> Locale:
        return _babel_locale(self.language)


def translator(language: str | None, locales_dir: Path | None) -> Translator:
    """The translator for `language` (a tag; None or unknown: English) from the catalogs in
    `locales_dir` (None: none, so English words with the language's dates and numbers).

    Templates ask for it at every `_()`, a few hundred times a digest, so it is cached: the
    catalog's files are looked at again at most once a second (an edited catalog is read
    again, and is what the next render uses a second later)."""
    return _translator(language, locales_dir, int(time.monotonic()))


@lru_cache(maxsize=256)
def _translator(language: str | None, locales_dir: Path | None, _second: int) -> Translator:
    tag = language_tag(language) or DEFAULT_LANGUAGE
    found = catalog_file(locales_dir, tag) if locales_dir is not None else None
    if found is None:
        return Translator(tag, gettext.NullTranslations())
    return Translator(tag, _load(found, found.stat().st_mtime_ns, _compiled_mtime(found)))


def reload_catalogs() -> None:
    """Look at the catalogs' files again at the next translator() (a tool that has just
    written one, a test), rather than within the second."""
    _translator.cache_clear()


def catalog_file(locales_dir: Path, tag: str) -> Path | None:
    """The `.po` of the most specific catalog for `tag` ("pt-BR": pt_BR, then pt)."""
    for name in _catalog_names(tag):
        path = locales_dir / name / "LC_MESSAGES" / f"{DOMAIN}.po"
        if path.is_file():
            return path
    return None


def catalog_languages(locales_dir: Path) -> list[str]:
    """The languages with a catalog in `locales_dir`, as tags ("th", "pt-BR")."""
    if not locales_dir.is_dir():
        return []
    found = []
    for folder in sorted(locales_dir.iterdir()):
        if (folder / "LC_MESSAGES" / f"{DOMAIN}.po").is_file():
            tag = language_tag(folder.name)
            if tag is not None:
                found.append(tag)
    return found


def _catalog_names(tag: str) -> list[str]:
    parts = tag.split("-")
    names = []
    for end in range(len(parts), 0, -1):
        names.append("_".join(parts[:end]))
    return names


def _compiled_mtime(po: Path) -> int | None:
    mo = po.with_suffix(".mo")
    try:
        return mo.stat().st_mtime_ns
    except OSError:
        return None


@lru_cache(maxsize=64)
def _load(po: Path, po_mtime: int, mo_mtime: int | None) -> gettext.GNUTranslations:
    """The catalog: its `.mo` when that is at least as new as the `.po`, else the `.po`
    compiled in memory. The modification times are in the key so an edit is seen."""
    if mo_mtime is not None and mo_mtime >= po_mtime:
        with po.with_suffix(".mo").open("rb") as compiled:
            return gettext.GNUTranslations(compiled)
    return gettext.GNUTranslations(io.BytesIO(_mo_bytes(po)))


def _mo_bytes(po: Path) -> bytes:
    with po.open("rb") as source:
        catalog = read_po(source, locale=po.parent.parent.name, domain=DOMAIN)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


@lru_cache(maxsize=64)
def _babel_locale(tag: str) -> Locale:
    for name in _catalog_names(tag):
        try:
            return Locale.parse(name)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse(DEFAULT_LANGUAGE)
