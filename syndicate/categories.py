"""The site's categories: the ones a subscriber can choose, and which of them a post is in.

    site = SiteCategories.of(settings)
    site.of_post("field-notes", ("drought", "Mill Weir"))  # -> ("Rivers", "Field notes")
    site.offered(post_categories)                          # the form's checkboxes
    site.pick(["rivers"], offered)                         # -> ("Rivers",), or UnknownCategory

With `[site] categories` set, those are the choices, in that order. A post is in one when one
of its own categories (a feed's tags) or its source's `category` is that name, or is one of
the tags its `[categories.<name>] tags` table lists; names and tags match ignoring case.

Without the key (configs written before it existed), a post's categories are its own ones
plus its source's `category`, and the choices are every category a source names or a post
has, so nothing offered before disappears.

A subscriber's choice stays matched against a post's own categories too (the digest does
both), so someone who chose a feed tag before the site listed its categories keeps getting
those posts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from syndicate.config import Settings
from syndicate.errors import UsageError

if TYPE_CHECKING:
    from syndicate.store import Store


class UnknownCategory(UsageError):
    """A category that the site does not offer; the message names the choices."""


@dataclass(frozen=True, slots=True)
class SiteCategories:
    names: tuple[str, ...] | None  # [site] categories; None: not set (see the docstring)
    tags: dict[str, tuple[str, ...]]  # a tag or name, casefolded -> the site categories
    sources: dict[str, str]  # source name -> its `category`

    @classmethod
    def of(cls, settings: Settings) -> SiteCategories:
        sources = {s.name: s.category for s in settings.sources if s.category}
        listed = settings.site.categories
        if listed is None:
            return cls(None, {}, sources)
        canonical = {name.casefold(): name for name in listed}
        tags: dict[str, list[str]] = {name.casefold(): [name] for name in listed}
        for table_name, table in settings.categories.items():
            name = canonical.get(table_name.strip().casefold())
            if name is None:  # not listed: load_settings refuses that, a model_copy may not
                continue
            for tag in table.tags:
                into = tags.setdefault(tag.casefold(), [])
                if name not in into:
                    into.append(name)
        return cls(tuple(listed), {tag: tuple(names) for tag, names in tags.items()}, sources)

    def of_post(self, source: str, categories: Sequence[str]) -> tuple[str, ...]:
        """The site categories a post from `source` with its own `categories` is in: those
        its own categories lead to first, in their order, then its source's."""
        own = [*categories, self.sources.get(source, "")]
        if self.names is None:
            return unique(name.strip() for name in own)
        return unique(name for tag in own for name in self.tags.get(tag.strip().casefold(), ()))

    def offered(self, post_categories: Iterable[str] = ()) -> list[str]:
        """The categories a subscriber can choose. `post_categories` (every category a stored
        post has) only counts when [site] categories is not set."""
        if self.names is not None:
            return list(self.names)
        names: dict[str, str] = {}
        for name in (*self.sources.values(), *post_categories):
            name = name.strip()
            folded = name.casefold()
            # One choice per name whatever its case; "Wildlife" shown rather than "wildlife".
            if name and (folded not in names or name < names[folded]):
                names[folded] = name
        return [names[folded] for folded in sorted(names)]

    @property
    def needs_posts(self) -> bool:
        """Whether offered() depends on the stored posts' categories."""
        return self.names is None


async def offered_categories(settings: Settings, store: Store) -> list[str]:
    """The categories a subscriber can choose now (the stored posts' count without
    [site] categories)."""
    site = SiteCategories.of(settings)
    if not site.needs_posts:
        return site.offered()
    return site.offered(await store.post_categories())


def pick(chosen: Iterable[str], offered: Sequence[str]) -> tuple[str, ...]:
    """`chosen` spelled as `offered` spells them, once each; UnknownCategory names the first
    one that is not offered, and the choices."""
    canonical = {name.casefold(): name for name in offered}
    picked = []
    for name in chosen:
        name = name.strip()
        if not name:
            continue
        if name.casefold() not in canonical:
            raise UnknownCategory(unknown_message(name, offered))
        picked.append(canonical[name.casefold()])
    return unique(picked)


def unknown_message(name: str, offered: Sequence[str]) -> str:
    if not offered:
        return (
            f"unknown category {name!r}: this site offers no categories "
            "(list them in [site] categories in the config)"
        )
    return f"unknown category {name!r}; choose from: {', '.join(offered)}"


def unique(names: Iterable[str]) -> tuple[str, ...]:
    """Names once each, ignoring case, the first spelling kept; empty ones dropped."""
    seen: set[str] = set()
    kept = []
    for name in names:
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            kept.append(name)
    return tuple(kept)
