"""What an issue is made of, kept with it so that every copy of it is the issue.

    content = IssueContent(context, post_ids, left_out, group_by, templates, subject)
    row_value = content.to_json()                         # stored in digest_issues.content
    content = IssueContent.from_json(row_value, post_ids)  # at send time, days later
    chosen = content.for_categories(frozenset({"policy"}))  # a subscriber's copy

A subscriber who chose categories gets a copy of their own, rendered when the issue is sent.
It must be the issue, not a new digest of the period: the posts as they were when the issue
was built (a post edited or added since must not show), the editor's intro of that moment,
the templates of that moment, and a preheader and an "N more" line that count its own posts.
So the issue keeps the context it was rendered from, the categories of each post left out by
`max_posts`, and the email templates; the stored HTML and text stay the whole issue's copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from syndicate.digest.context import (
    DigestContext,
    DigestGroup,
    DigestPeriod,
    DigestPost,
    DigestSite,
    DigestSubscriber,
    DigestUrls,
)
from syndicate.digest.period import localised
from syndicate.i18n import Translator, translator
from syndicate.languages import primary

FORMAT = 1  # of the stored JSON; a later change of shape bumps it

NEUTRAL_SUBSCRIBER = DigestSubscriber(name="", email="", greeting="Hello,")
# Words for callers that name no language: the templates' own English.
ENGLISH = translator(None, None)
OTHER_LANGUAGES = ("include", "link", "omit")


@dataclass(frozen=True, slots=True)
class IssueContent:
    """An issue's content: what it was rendered from, and what its copies need besides."""

    context: DigestContext  # the whole issue's, as rendered into its stored copy
    post_ids: tuple[int, ...]  # the posts of `context.posts`, in the same order
    # The categories (site's and own) of each post over max_posts.
    left_out: tuple[tuple[str, ...], ...]
    group_by: str  # how `context.groups` were made
    # The email templates (path under the templates folder -> source) and the subject
    # setting the issue was rendered with; None: not kept (an issue built before they were).
    templates: Mapping[str, str] | None = None
    subject: str | None = None
    # The site's languages when it was built (the first is the default), and what a reader
    # gets of the posts in other languages than theirs: [digest] other_languages.
    languages: tuple[str, ...] = ()
    other_languages: str = "include"
    # The editor's intro in other languages than the default (primary tag -> sanitised
    # HTML, from digest/intro/<period>.<lang>.md); a reader of a language without one gets
    # the default's (context.intro_html).
    intros: Mapping[str, str] = field(default_factory=dict)

    @property
    def default_language(self) -> str:
        return self.languages[0] if self.languages else self.context.site.language

    def for_reader(
        self, categories: frozenset[str], words: Translator, other_languages: str | None = None
    ) -> DigestContext:
        """The copy for a reader of the language of `words` (one of the site's languages)
        who chose `categories`: the chrome's words, the period's name and the preheader in
        their language; the posts of their categories (for_categories), and of those, when
        the site has several languages, the ones in theirs (or of no known language) with
        the others included, listed by title, or left out as the reader's `other_languages`
        says, else the issue's. A post of no known language is the default language's."""
        chosen = self.for_categories(categories)
        posts, others = chosen.posts, ()
        mode = other_languages if other_languages in OTHER_LANGUAGES else self.other_languages
        if len(self.languages) > 1 and mode != "include":
            mine, default = primary(words.language), primary(self.default_language)
            posts = tuple(p for p in chosen.posts if _in_language(p, mine, default))
            if mode == "link":
                others = tuple(p for p in chosen.posts if not _in_language(p, mine, default))
        period = localised(chosen.period, words)
        urls = chosen.urls
        if primary(words.language) != primary(self.default_language):
            urls = replace(urls, view_in_browser=web_copy_url(urls.view_in_browser, words))
        return replace(
            chosen,
            period=period,
            posts=posts,
            groups=group(list(posts), self.group_by, words),
            preheader=preheader(list(posts), period, words),
            urls=urls,
            language=words.language,
            other_posts=others,
            intro_html=self.intros.get(primary(words.language), chosen.intro_html),
        )

    def for_categories(self, categories: frozenset[str]) -> DigestContext:
        """The issue for a subscriber who chose `categories` (any case): only its posts in
        them, grouped as the issue is, with a preheader and an "N more" count of their own.
        A post is in a category when it is one of its site categories or of its own (a
        choice made before the site listed its categories: syndicate/categories.py).
        No categories: the whole issue."""
        wanted = {category.casefold() for category in categories}
        if not wanted:
            return self.context
        posts = tuple(
            post
            for post in self.context.posts
            if _in((*post.site_categories, *post.categories), wanted)
        )
        return replace(
            self.context,
            posts=posts,
            groups=group(list(posts), self.group_by),
            more=sum(1 for left in self.left_out if _in(left, wanted)),
            preheader=preheader(list(posts), self.context.period),
        )

    def is_whole(self, chosen: DigestContext) -> bool:
        """Whether `chosen` (from for_categories) holds all of the issue: its stored copy."""
        return len(chosen.posts) == len(self.context.posts) and chosen.more == self.context.more

    def to_json(self) -> dict[str, Any]:
        context = self.context
        return {
            "format": FORMAT,
            "site": _fields(context.site),
            "period": {
                "key": context.period.key,
                "label": context.period.label,
                "start": context.period.start.isoformat(),
                "end": context.period.end.isoformat(),
            },
            "urls": {
                "view_in_browser": context.urls.view_in_browser,
                "archive": context.urls.archive,
                "feeds": context.urls.feeds,
            },
            "posts": [_post_json(post) for post in context.posts],
            "intro_html": context.intro_html,
            "more": context.more,
            "preheader": context.preheader,
            "left_out": [list(categories) for categories in self.left_out],
            "group_by": self.group_by,
            "templates": dict(self.templates) if self.templates is not None else None,
            "subject": self.subject,
            "languages": list(self.languages),
            "other_languages": self.other_languages,
            "intros": dict(self.intros),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], post_ids: tuple[int, ...]) -> IssueContent:
        """The content stored by to_json(); ValueError if it is not in a format known here."""
        if data.get("format") != FORMAT:
            raise ValueError(f"stored issue content in format {data.get('format')!r}")
        period = data["period"]
        posts = tuple(_post(item) for item in data["posts"])
        group_by = data["group_by"]
        context = DigestContext(
            site=DigestSite(**data["site"]),
            period=DigestPeriod(
                period["key"],
                period["label"],
                datetime.fromisoformat(period["start"]),
                datetime.fromisoformat(period["end"]),
            ),
            groups=group(list(posts), group_by),
            posts=posts,
            urls=DigestUrls(**data["urls"]),
            subscriber=NEUTRAL_SUBSCRIBER,
            intro_html=data["intro_html"],
            more=data["more"],
            preheader=data["preheader"],
        )
        return cls(
            context=context,
            post_ids=post_ids,
            left_out=tuple(tuple(categories) for categories in data["left_out"]),
            group_by=group_by,
            templates=data["templates"],
            subject=data["subject"],
            # Stored before sites had languages: one language, every post for every reader.
            languages=tuple(data.get("languages", ())),
            other_languages=data.get("other_languages", "include"),
            intros=data.get("intros", {}),
        )


def group(
    items: list[DigestPost], group_by: str, words: Translator | None = None
) -> tuple[DigestGroup, ...]:
    """Groups in the order their first post appears; posts keep their order inside."""
    if group_by == "none":
        return (DigestGroup("", tuple(items)),) if items else ()
    other = (words or ENGLISH).gettext("Other")
    groups: dict[str, list[DigestPost]] = {}
    for item in items:
        key = (item.category or other) if group_by == "category" else item.source
        groups.setdefault(key, []).append(item)
    return tuple(DigestGroup(title, tuple(posts)) for title, posts in groups.items())


def preheader(
    items: list[DigestPost], period: DigestPeriod, words: Translator | None = None
) -> str:
    """The hidden preview text: how many posts, and the first titles."""
    words = words or ENGLISH
    if not items:
        return words.gettext("No new posts in %(period)s.") % {"period": period.label}
    titles = "; ".join(item.title for item in items[:3])
    line = words.ngettext(
        "%(num)s post from %(period)s: %(titles)s",
        "%(num)s posts from %(period)s: %(titles)s",
        len(items),
    )
    return (line % {"num": words.number(len(items)), "period": period.label, "titles": titles})[
        :150
    ]


def web_copy_url(url: str, words: Translator) -> str:
    """The web copy in the language of `words`: <period>.<language>.html beside the default
    language's <period>.html (syndicate.digest.build writes one per site language)."""
    stem, dot, suffix = url.rpartition(".")
    if not dot or suffix != "html":
        return url
    return f"{stem}.{primary(words.language)}.html"


def _in_language(post: DigestPost, language: str, default: str) -> bool:
    """Whether a reader of `language` (a primary subtag) reads `post` as theirs: it is in
    that language, or its language is not known and theirs is the site's `default` (a feed
    that says nothing and is not in a script of its own is taken to be the site's)."""
    if post.language is None:
        return language == default
    return primary(post.language) == language


def _in(categories: tuple[str, ...], wanted: set[str]) -> bool:
    return any(category.casefold() in wanted for category in categories)


def _fields(site: DigestSite) -> dict[str, str]:
    return {
        "title": site.title,
        "url": site.url,
        "description": site.description,
        "language": site.language,
        "timezone": site.timezone,
    }


def _post_json(post: DigestPost) -> dict[str, Any]:
    return {
        "title": post.title,
        "url": post.url,
        "excerpt": post.excerpt,
        "image": post.image,
        "author": post.author,
        "category": post.category,
        "source": post.source,
        "date": post.date.isoformat(),
        "discussion_url": post.discussion_url,
        "reply_count": post.reply_count,
        "categories": list(post.categories),
        "site_categories": list(post.site_categories),
        "image_alt": post.image_alt,
        "image_width": post.image_width,
        "image_height": post.image_height,
        "language": post.language,
    }


def _post(item: Mapping[str, Any]) -> DigestPost:
    return DigestPost(
        title=item["title"],
        url=item["url"],
        excerpt=item["excerpt"],
        image=item["image"],
        author=item["author"],
        category=item["category"],
        source=item["source"],
        date=datetime.fromisoformat(item["date"]),
        discussion_url=item["discussion_url"],
        reply_count=item["reply_count"],
        categories=tuple(item["categories"]),
        # Absent from issues stored before sites listed their categories: their own match.
        site_categories=tuple(item.get("site_categories", ())),
        # Stored before issues kept image details: no alt text or size known.
        image_alt=item.get("image_alt", ""),
        image_width=item.get("image_width"),
        image_height=item.get("image_height"),
        # Stored before issues kept the posts' languages: unknown.
        language=item.get("language"),
    )
