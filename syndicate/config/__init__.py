"""config.toml -> typed Settings, or a ConfigError with one line per problem.

Every problem names the file and the key path (``config.toml: sources[1].url: ...``) so an
admin can fix it without reading a traceback.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
import types
import typing
from pathlib import Path

from pydantic import BaseModel, ValidationError

from syndicate.config.settings import (
    BounceSettings,
    DigestSettings,
    ForumSettings,
    ImapSettings,
    MailSettings,
    PublishSettings,
    Settings,
    SiteSettings,
    SourceSettings,
    local_path,
    secret,
)
from syndicate.errors import ConfigError
from syndicate.slugs import slugify

__all__ = [
    "BounceSettings",
    "DigestSettings",
    "ForumSettings",
    "ImapSettings",
    "MailSettings",
    "PublishSettings",
    "Settings",
    "SiteSettings",
    "SourceSettings",
    "config_path",
    "load_settings",
    "local_path",
    "missing_secrets",
    "secret",
]

DEFAULT_PATH = Path("config.toml")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def config_path(option: str | Path | None = None) -> Path:
    """--config wins, then $SYNDICATE_CONFIG, then ./config.toml."""
    if option:
        return Path(option)
    return Path(os.environ.get("SYNDICATE_CONFIG") or DEFAULT_PATH)


def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate the config file; raise ConfigError listing every problem."""
    path = config_path(path)
    label = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [f"{label}: file not found (pass --config PATH or set SYNDICATE_CONFIG)"]
        ) from None
    except OSError as error:
        raise ConfigError([f"{label}: cannot read: {error.strerror or error}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError([f"{label}:{line}: not valid UTF-8"]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{label}: TOML syntax error: {error}"]) from None
    except RecursionError:  # tomllib parses arrays and inline tables by recursion
        raise ConfigError(
            [f"{label}: TOML syntax error: arrays or tables nested too deeply"]
        ) from None

    problems: list[str] = []
    if "path" in data:
        problems.append(f"{label}: path: unknown key")
        del data["path"]
    try:
        settings = Settings.model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as error:
        problems.extend(f"{label}: {line}" for line in _describe(error))
        raise ConfigError(problems) from None
    settings = settings.model_copy(update={"path": path})
    problems.extend(f"{label}: {line}" for line in _cross_checks(settings))
    if problems:
        raise ConfigError(problems)
    return settings


def missing_secrets(settings: Settings) -> list[str]:
    """Env vars the config names for features in use that are not set (warnings, not errors)."""
    wanted: list[tuple[str, str]] = [(settings.web.secret_env, "web.secret_env")]
    if settings.mail.transport == "smtp" and settings.mail.smtp.password_env:
        wanted.append((settings.mail.smtp.password_env, "mail.smtp.password_env"))
    if settings.mail.dkim:
        wanted.append((settings.mail.dkim.private_key_env, "mail.dkim.private_key_env"))
    if _uses_strategy(settings, "discourse") and settings.forum.discourse:
        wanted.append((settings.forum.discourse.api_key_env, "forum.discourse.api_key_env"))
    if settings.web.metrics_token_env:
        wanted.append((settings.web.metrics_token_env, "web.metrics_token_env"))
    if settings.web.admin_password_env:
        wanted.append((settings.web.admin_password_env, "web.admin_password_env"))
    if settings.bounces.imap:
        wanted.append((settings.bounces.imap.password_env, "bounces.imap.password_env"))
    return [
        f"{key}: environment variable {name} is not set"
        for name, key in wanted
        if secret(name) is None
    ]


def _cross_checks(settings: Settings) -> list[str]:
    """Rules that span keys, which per-field validation cannot see."""
    problems = []
    seen: dict[str, int] = {}
    for index, source in enumerate(settings.sources):
        if source.name in seen:
            problems.append(
                f"sources[{index}].name: duplicate source name {source.name!r} "
                f"(also sources[{seen[source.name]}])"
            )
        seen.setdefault(source.name, index)
    problems.extend(_category_checks(settings))
    if _uses_strategy(settings, "template") and not settings.forum.url_template:
        problems.append('forum.url_template: required when a source uses strategy "template"')
    if _uses_strategy(settings, "discourse") and not settings.forum.discourse:
        problems.append('forum.discourse: required when a source uses strategy "discourse"')
    return problems


def _category_checks(settings: Settings) -> list[str]:
    """[site] categories, [categories.<name>] tables and sources' `category` agree."""
    listed = settings.site.categories
    problems = []
    if listed is None:
        problems.extend(
            f"categories.{_key_path((name,))}: a table for a category that [site] categories "
            "does not list (add the key `categories = [...]` to [site])"
            for name in settings.categories
        )
        return problems
    slugs: dict[str, str] = {}
    for index, name in enumerate(listed):
        # Two names with one slug would share a feed (/feeds/category/<slug>) and a choice.
        slug = slugify(name)
        if slug in slugs:
            problems.append(
                f"site.categories[{index}]: {name!r} is the same category as "
                f"{slugs[slug]!r} (names are compared ignoring case and punctuation)"
            )
        slugs.setdefault(slug, name)
    choices = _choices(listed)
    known = {name.casefold() for name in listed}
    for name in settings.categories:
        if name.strip().casefold() not in known:
            problems.append(
                f"categories.{_key_path((name,))}: {name!r} is not in [site] categories "
                f"({choices}){_close_to(name, listed)}"
            )
    tagged = {tag.casefold() for table in settings.categories.values() for tag in table.tags}
    for index, source in enumerate(settings.sources):
        category = source.category
        if category and category.casefold() not in known | tagged:
            problems.append(
                f"sources[{index}].category: {category!r} is not in [site] categories "
                f"({choices}) nor a tag of a [categories.<name>] table"
                f"{_close_to(category, listed)}"
            )
    return problems


def _choices(names: list[str]) -> str:
    return ", ".join(json.dumps(name, ensure_ascii=False) for name in names) or "none listed"


def _close_to(name: str, names: list[str]) -> str:
    """'; did you mean "Rivers"?' for a category name one typo (or a case) away."""
    by_fold = {choice.casefold(): choice for choice in names}
    close = difflib.get_close_matches(name.casefold(), list(by_fold), n=1)
    return f"; did you mean {json.dumps(by_fold[close[0]], ensure_ascii=False)}?" if close else ""


def _uses_strategy(settings: Settings, strategy: str) -> bool:
    return any((source.forum or settings.forum.strategy) == strategy for source in settings.sources)


def _describe(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        loc = item["loc"]
        key = _key_path(loc)
        kind = item["type"]
        if kind == "extra_forbidden":
            message = "unknown key" + _suggestion(loc)
        elif kind == "missing":
            message = "required key is missing"
        else:
            message = item["msg"].removeprefix("Value error, ")
            if kind != "value_error" and "input" in item and not isinstance(item["input"], dict):
                message += f" (got {item['input']!r})"
            if kind == "literal_error":
                message += _choice_suggestion(loc, item.get("input"))
        line = f"{key}: {message}" if key else message
        lines.append(line.replace("\r", "\\r").replace("\n", "\\n"))  # one problem, one line
    return lines


def _key_path(loc: tuple[int | str, ...]) -> str:
    """('sources', 1, 'url') -> 'sources[1].url'; odd keys quoted as TOML would quote them."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
        out += f".{name}" if out else name
    return out


def _suggestion(loc: tuple[int | str, ...]) -> str:
    """'; did you mean "schedule"?' for a key that is one typo away from a real one."""
    model = _model_at(loc[:-1])
    if model is None:
        return ""
    names = [f.alias or name for name, f in model.model_fields.items() if name != "path"]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f'; did you mean "{close[0]}"?' if close else ""


def _choice_suggestion(loc: tuple[int | str, ...], value: object) -> str:
    """'; did you mean "smtp"?' for a value one typo (or a letter's case) away from one of
    the choices of a key that takes a fixed set of words (mail.transport = "smpt")."""
    keys = [part for part in loc if isinstance(part, str)]
    model = _model_at(tuple(keys[:-1]))
    if model is None or not isinstance(value, str) or not keys:
        return ""
    field = next((f for name, f in model.model_fields.items() if keys[-1] in (name, f.alias)), None)
    choices = [str(choice) for choice in _literals_in(field.annotation)] if field else []
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(value.lower(), list(by_lower), n=1)
    return f'; did you mean "{by_lower[close[0]]}"?' if close else ""


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The settings model that holds the keys under `loc` (list indexes and the names of
    a table of tables skipped)."""
    model: type[BaseModel] | None = Settings
    keyed = False  # the previous part named a table of tables ([categories.<name>])
    for part in loc:
        if isinstance(part, int) or model is None or keyed:
            keyed = False
            continue
        field = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        model = _model_in(field.annotation) if field else None
        keyed = field is not None and typing.get_origin(field.annotation) is dict
    return model


def _literals_in(annotation: object) -> list[object]:
    """The choices of a Literal, also inside `X | None` or `list[X]`."""
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return [choice for arg in typing.get_args(annotation) for choice in _literals_in(arg)]
    return []


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            if found := _model_in(arg):
                return found
    return None
