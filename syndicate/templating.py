"""The one home of rendering the admins' Jinja2 templates: web pages, digests, one-off emails.

Every renderer gets its Jinja environment here (page_environment for the web pages,
email_environment for the digest and the confirmation and welcome emails), renders through
render_template(), and inlines the emails' stylesheet with inline_css(). What each renderer
adds is its own: the digest's personal markers (syndicate.digest.render), the pages' context
(syndicate.publish.pages), the confirmation's variables (syndicate.mail.confirm). How a body
goes on the wire (998-byte lines, CRLF, dot-stuffing) is mail's business: syndicate.mail.wire.

One module rather than a package: the environments, rendering and inlining are about a
hundred lines on top of the problem reporting below, and every caller wants the same handful
of names. The text filters' implementations (`wrap`, `plaintext`) are plain string functions
with no Jinja in them, so they live beside this module in syndicate.plaintext.

Admins edit these templates, and they make mistakes. A mistake must reach them as one line,
"templates/web/archive.html.j2:12: 'post' is undefined", never as a traceback through
Jinja's internals: `template_problem()` turns Jinja's exceptions into that TemplateProblem.
`FieldUndefined` words a misspelt field the way the template sees it ("a post has no field
"titel""), not as Jinja would, by Python class. The `date` and `isodate` filters live here
too, so a web page and an email show the same post on the same day.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from zoneinfo import ZoneInfo

import css_inline
from jinja2 import (
    BaseLoader,
    FileSystemLoader,
    FunctionLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateRuntimeError,
    TemplateSyntaxError,
    Undefined,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing
from markupsafe import Markup

from syndicate.errors import TemplateError as SyndicateTemplateError
from syndicate.i18n import Translator, translator
from syndicate.languages import language_name, language_tag, primary
from syndicate.linebreak import display_width
from syndicate.plaintext import plaintext, wrap

# Jinja's filename for a template compiled from a string (Environment.from_string).
_STRING_TEMPLATE = "<template>"


class TemplateProblem(SyndicateTemplateError, ValueError):
    """A template cannot be loaded or rendered. The message reads "file:line: reason".

    `template` is the file as admins know it ("templates/web/archive.html.j2"); `line` is
    None when the problem has no line (a template that does not exist).
    """

    def __init__(self, template: str, line: int | None, reason: str) -> None:
        self.template = template
        self.line = line
        self.reason = reason
        where = f"{template}:{line}" if line is not None else template
        super().__init__(f"{where}: {reason}")


# Leading words of context classes that say which renderer they belong to, not what they
# are: a DigestPost and a ConfirmSite are "a post" and "a site" to a template.
_RENDERER_PREFIXES = ("Digest", "Confirm")
_MAX_LISTED = 30
_PLAIN_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a true/false value"),
    (str, "a text"),
    (int | float, "a number"),
    (datetime | date, "a date"),
    (list | tuple, "a list"),
)


class FieldUndefined(StrictUndefined):
    """StrictUndefined whose message for a missing field names the object as the template
    sees it and what it does have: `a post has no field "titel"; did you mean "title"?
    (a post has title, url, ...)`, rather than Jinja's `'syndicate.digest.context.DigestPost
    object' has no attribute 'titel'`. Other messages (an undefined variable, a sandbox
    refusal) are Jinja's own."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        owner, name = self._undefined_obj, self._undefined_name
        if self._undefined_hint or owner is missing:
            return str(super()._undefined_message)
        return missing_field(owner, name)


def missing_field(owner: object, name: object) -> str:
    """Why `owner.<name>` (or `owner[name]`) is undefined, in the template's terms."""
    kind, has = _kind(owner)
    if not isinstance(name, str):  # posts[3] of a shorter list
        return f"{kind} {has} no element {name!r}"
    names = _field_names(owner)
    if names is None:
        return f'{kind} {has} no field "{name}"'
    close = difflib.get_close_matches(name, names, n=1)
    hint = f'; did you mean "{close[0]}"?' if close else ""
    shown = names[:_MAX_LISTED]
    listed = ", ".join(shown) if names else "no fields"
    if len(names) > len(shown):  # a mapping of every source, say: the line stays readable
        listed += f" and {len(names) - len(shown)} more"
    return f'{kind} {has} no field "{name}"{hint} ({kind} {has} {listed})'


def _kind(owner: object) -> tuple[str, str]:
    """The object as a template author would call it, and the verb that goes with it:
    ("a post", "has") for a DigestPost, ("an archive page", "has") for an ArchivePage,
    ("the urls", "have") for DigestUrls, ("a text", "has") for a str."""
    if isinstance(owner, Mapping):
        return "a mapping", "has"
    for types, kind in _PLAIN_KINDS:
        if isinstance(owner, types):
            return kind, "has"
    words = re.findall(r"[A-Z]+[a-z0-9]*|[a-z0-9]+", type(owner).__name__)
    if len(words) > 1 and words[0] in _RENDERER_PREFIXES:
        words = words[1:]
    noun = " ".join(word.lower() for word in words) or "value"
    if noun.endswith("s") and not noun.endswith("ss"):
        return f"the {noun}", "have"
    return ("an " if noun[0] in "aeiou" else "a ") + noun, "has"


def _field_names(owner: object) -> list[str] | None:
    """What a template can read on `owner`: a dataclass's fields and properties, a mapping's
    keys; None for anything else (its attributes are Python's, not ours to list)."""
    if isinstance(owner, Mapping):
        return [str(key) for key in owner if not str(key).startswith("_")]
    if not is_dataclass(owner) or isinstance(owner, type):
        return None
    names = [f.name for f in fields(owner)]
    names += [
        attribute
        for attribute, value in vars(type(owner)).items()
        if isinstance(value, property) and attribute not in names
    ]
    return [n for n in names if not n.startswith("_")]


def template_problem(exc: Exception, templates_dir: Path, name: str) -> TemplateProblem | None:
    """`exc`, raised loading or rendering template `name` (relative to the absolute folder
    `templates_dir`), as the problem admins should see; None when no template caused it.

        try:
            text = env.get_template(name).render(context)
        except Exception as exc:
            if (problem := template_problem(exc, folder, name)) is None:
                raise
            raise problem from exc
    """
    if isinstance(exc, TemplateSyntaxError):
        # Raised while compiling: it knows its file and line, the traceback does not.
        path = exc.filename or exc.name or name
        return TemplateProblem(display_path(path, templates_dir), exc.lineno, exc.message or "")
    where = _template_frame(exc.__traceback__, lambda f: Path(f).is_relative_to(templates_dir))
    if isinstance(exc, TemplateNotFound):
        # Either `name` itself is missing, or a template extends/includes a missing one.
        if where is None:
            path = str(templates_dir / name)
            return TemplateProblem(display_path(path, templates_dir), None, "template not found")
        return TemplateProblem(
            display_path(where[0], templates_dir), where[1], f"template {exc.name!r} not found"
        )
    # UndefinedError, SecurityError from the sandbox, or a plain TypeError from an expression
    # like `1 + "a"`: all mistakes in a template when raised from one. Jinja rewrites the
    # traceback so template frames carry the template's filename and line
    # (jinja2.debug.rewrite_traceback_stack); the innermost one is the culprit.
    if where is None:
        return None
    return TemplateProblem(display_path(where[0], templates_dir), where[1], _reason(exc))


def string_template_problem(exc: Exception, label: str) -> TemplateProblem | None:
    """Like template_problem() for a template compiled from a config string
    (Environment.from_string); `label` names the setting ("[digest] subject")."""
    if isinstance(exc, TemplateSyntaxError):
        return TemplateProblem(label, exc.lineno, exc.message or "")
    where = _template_frame(exc.__traceback__, lambda f: f == _STRING_TEMPLATE)
    if where is None:
        return None
    return TemplateProblem(label, where[1], _reason(exc))


def _reason(exc: Exception) -> str:
    return (exc.message if isinstance(exc, TemplateError) else None) or str(exc)


def _template_frame(
    tb: TracebackType | None, is_template: Callable[[str], bool]
) -> tuple[str, int] | None:
    """The innermost traceback frame inside a template, as (filename, line)."""
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if is_template(filename):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def display_path(filename: str, templates_dir: Path) -> str:
    """The template's path as admins see it, from the config dir: "templates/web/x.j2"."""
    path = Path(filename)
    try:
        return path.relative_to(templates_dir.parent).as_posix()
    except ValueError:
        return path.as_posix()


def _in_site_zone(context: Context, value: object, filter_name: str) -> datetime:
    if isinstance(value, Undefined):
        # StrictUndefined raises on use with a message naming the missing variable, which is
        # clearer than "expected a datetime".
        str(value)
    if not isinstance(value, datetime):
        raise TemplateRuntimeError(
            f"the {filter_name} filter needs a datetime, not {type(value).__name__}"
        )
    if value.tzinfo is None:
        # Posts carry aware UTC times; a naive one would be shown in an unknown zone.
        raise TemplateRuntimeError(f"the {filter_name} filter needs an aware datetime")
    zone = context.get("timezone") or "UTC"
    return value.astimezone(ZoneInfo(str(zone)))


@pass_context
def date_filter(context: Context, value: object) -> str:
    """`{{ post.published|date }}` -> "8 December 2015", in the site time zone and the
    reader's language ("8 ธันวาคม 2015").

    The zone is the template variable `timezone` (an IANA name); UTC when there is none.
    The language is the template variable `language`; English when there is none.
    """
    moment = _in_site_zone(context, value, "date")
    return _words(context).date(moment)


@pass_context
def number_filter(context: Context, value: object) -> str:
    """`{{ more|number }}` -> "1,234" as the reader's language writes numbers."""
    if isinstance(value, Undefined):
        str(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TemplateRuntimeError(f"the number filter needs a whole number, not {value!r}")
    return _words(context).number(value)


def _words(context: Context) -> Translator:
    """The translator of the language the template renders in (`language`), from the
    catalogs its environment was made with (install_translations)."""
    locales_dir = getattr(context.environment, _LOCALES_ATTRIBUTE, None)
    return translator(
        str(context.get("language") or ""), locales_dir if isinstance(locales_dir, Path) else None
    )


# Where an environment keeps its catalogs' folder: an attribute of the environment object,
# not a global, so templates cannot read the path.
_LOCALES_ATTRIBUTE = "syndicate_locales_dir"


def install_translations(env: SandboxedEnvironment, locales_dir: Path | None) -> None:
    """Jinja's i18n extension on `env`, translating into the template variable `language`
    from the catalogs in `locales_dir`: `{{ _("Unsubscribe") }}`, `{% trans %}...{% endtrans
    %}`, with newstyle gettext (autoescaped, `%(name)s` filled by keyword). One environment
    serves every language: the callables read the language from the render's context."""
    env.add_extension("jinja2.ext.i18n")
    setattr(env, _LOCALES_ATTRIBUTE, locales_dir)

    @pass_context
    def gettext(context: Context, message: str) -> str:
        return _words(context).gettext(message)

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, count: int) -> str:
        return _words(context).ngettext(singular, plural, count)

    @pass_context
    def pgettext(context: Context, msgctxt: str, message: str) -> str:
        return _words(context).pgettext(msgctxt, message)

    @pass_context
    def npgettext(context: Context, msgctxt: str, singular: str, plural: str, count: int) -> str:
        return _words(context).npgettext(msgctxt, singular, plural, count)

    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=True, pgettext=pgettext, npgettext=npgettext
    )


@pass_context
def isodate_filter(context: Context, value: object) -> str:
    """`{{ post.published|isodate }}` -> "2015-12-08T10:30:00+01:00", for <time datetime>."""
    return _in_site_zone(context, value, "isodate").isoformat()


# --- environments and rendering ---------------------------------------------------------------

# The stylesheet every email shares, relative to the templates folder.
STYLESHEET = "email/style.css"


def default_locales_dir(templates_dir: Path) -> Path:
    """The catalogs beside the templates (Settings.locales_dir: <config dir>/locales)."""
    return templates_dir.parent / "locales"


def page_environment(templates_dir: Path, locales_dir: Path | None = None) -> SandboxedEnvironment:
    """The sandboxed Jinja environment the web pages render in (archives, feeds, the
    subscription pages), loading from `templates_dir`, translating with the catalogs in
    `locales_dir` (default: beside the templates)."""
    env = SandboxedEnvironment(
        loader=FileSystemLoader(templates_dir, encoding="utf-8"),
        # Every template this renderer loads is an HTML page; escaping by default means a
        # template with an unexpected extension fails safe rather than open.
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2", "xml.j2"),
            default_for_string=True,
            default=True,
        ),
        # A misspelt variable must be an error an admin sees, not a silently empty line.
        undefined=FieldUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Files end with a newline like any other text file.
        keep_trailing_newline=True,
    )
    env.filters["date"] = date_filter
    env.filters["isodate"] = isodate_filter
    env.filters["number"] = number_filter
    env.filters["lang_attr"] = lang_attr
    env.filters["language_name"] = language_name_filter
    install_translations(env, locales_dir or default_locales_dir(templates_dir))
    return env


def email_environment(
    templates_dir: Path,
    *,
    autoescape: bool,
    sources: Mapping[str, str] | None = None,
    locales_dir: Path | None = None,
) -> SandboxedEnvironment:
    """The sandboxed Jinja environment every email template renders in (digest, confirm);
    with `sources` (path -> text), templates come from there rather than the folder.
    Translations come from `locales_dir` (default: beside the templates)."""
    loader: BaseLoader = FileSystemLoader(templates_dir, encoding="utf-8")
    if sources is not None:
        kept = dict(sources)

        def load(name: str) -> tuple[str, str, Callable[[], bool]] | None:
            # The file's path as the filename: problems are named as for the files.
            return (kept[name], str(templates_dir / name), lambda: True) if name in kept else None

        loader = FunctionLoader(load)
    env = SandboxedEnvironment(
        loader=loader,
        autoescape=autoescape,
        # A misspelt variable must be an error an admin sees, not a silently empty line.
        undefined=FieldUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["date"] = date_filter
    env.filters["number"] = number_filter
    env.filters["wrap"] = wrap
    env.filters["columns"] = display_width
    env.filters["plaintext"] = plaintext
    env.filters["lang_attr"] = lang_attr
    env.filters["language_name"] = language_name_filter
    install_translations(env, locales_dir or default_locales_dir(templates_dir))
    return env


def language_name_filter(language: object) -> str:
    """`{{ post.language|language_name }}` -> "ไทย": a language named in itself ("en-GB" is
    "English": readers choose by language, not country); "" when `language` is not a tag."""
    tag = language_tag(language)
    return language_name(primary(tag)) if tag is not None else ""


def lang_attr(language: object, page_language: object) -> Markup:
    """`<p{{ post.language|lang_attr(site.language) }}>`: ` lang="th"` when the text's
    language differs from the page's, so readers and screen readers switch voice and fonts
    (WCAG 3.1.2); nothing when they agree or the text's language is unknown."""
    tag = language_tag(language)
    page = language_tag(page_language)
    if tag is None or (page is not None and primary(tag) == primary(page)):
        return Markup("")
    return Markup(' lang="{}"').format(tag)


def render_template(
    env: SandboxedEnvironment, templates_dir: Path, name: str, variables: Mapping[str, object]
) -> str:
    """Template `name` rendered; a mistake in it comes out as a TemplateProblem (file:line)."""
    try:
        return env.get_template(name).render(variables)
    except Exception as exc:
        problem = template_problem(exc, templates_dir, name)
        if problem is None:
            raise
        raise problem from exc


def inline_css(templates_dir: Path, html: str, sources: Mapping[str, str] | None = None) -> str:
    """`html` with <templates>/email/style.css inlined (every email shares the stylesheet),
    read from `sources` (DigestRenderer.read_sources) when given."""
    path = templates_dir / STYLESHEET
    shown = display_path(str(path), templates_dir)
    try:
        if sources is None:
            css = path.read_text(encoding="utf-8")
        elif STYLESHEET in sources:
            css = sources[STYLESHEET]
        else:
            raise FileNotFoundError(STYLESHEET)
    except FileNotFoundError:
        raise TemplateProblem(shown, None, "stylesheet not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateProblem(shown, None, f"cannot read the stylesheet: {exc}") from exc
    inliner = css_inline.CSSInliner(
        # @media rules (dark mode, phones) cannot be inlined: keep them in a <style>.
        keep_at_rules=True,
        # A template must not make rendering fetch from the network.
        load_remote_stylesheets=False,
        extra_css=css,
    )
    try:
        return inliner.inline(html)
    except css_inline.InlineError as exc:
        raise TemplateProblem(shown, None, f"cannot inline the stylesheet: {exc}") from exc
