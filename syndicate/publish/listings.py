"""What the two list pages show: every published feed (/feeds/) and every past digest issue
(/feeds/digest/). Pure: built from the plan and the issues' summaries, no I/O.

Their links are relative to the page (the feeds list is /feeds/index.html, the issues list
/feeds/digest/index.html), so the pages work on whatever host serves them: 127.0.0.1 on a
trial as well as `[site] url`.
"""

from __future__ import annotations

from collections.abc import Iterable

from syndicate.i18n import Translator, translator
from syndicate.models import IssueSummary
from syndicate.publish.document import FeedEntry, FeedGroup, IssueLink, feed_type
from syndicate.publish.plan import FeedPlan

FEEDS_PAGE = "index.html"
ISSUES_PAGE = "digest/index.html"


def _group_titles(words: Translator) -> dict[str, str]:
    """Group titles, in the order the page shows them; a feed's group is its path's first
    part. Each a literal gettext call, so `pybabel extract` finds it."""
    return {
        "index": words.gettext("The whole site"),
        "lang": words.gettext("By language"),
        "category": words.gettext("By category"),
        "source": words.gettext("By source"),
    }


def feed_groups(
    feeds: Iterable[FeedPlan], site_title: str, words: Translator | None = None
) -> tuple[FeedGroup, ...]:
    """The subscription feeds (not the monthly archives) by group, in the plan's order, the
    page's words in `words`' language (default English)."""
    words = words or translator(None, None)
    titles = _group_titles(words)
    grouped: dict[str, list[FeedEntry]] = {key: [] for key in titles}
    for feed in feeds:
        kind = feed.path.split("/", 1)[0]
        if kind not in grouped:
            continue  # archive/...: listed on the archive pages
        if kind == "index":
            label = words.gettext("Every post")
        elif kind == "lang":  # "Site (ไทย)": the language's name in itself
            label = feed.title.removeprefix(f"{site_title} (").removesuffix(")")
        else:
            label = feed.title.removeprefix(f"{site_title}: ")
        links = tuple(feed_type(ext, f"{feed.path}.{ext}") for ext in feed.formats)
        grouped[kind].append(
            FeedEntry(label, _described(kind, label, feed, words), links, feed.language)
        )
    return tuple(FeedGroup(titles[key], tuple(items)) for key, items in grouped.items() if items)


def _described(kind: str, label: str, feed: FeedPlan, words: Translator) -> str:
    """A feed's line on the feeds page, in the page's language (the feed document itself
    keeps the plan's description): the site's own for the whole site's feed."""
    if kind == "source":
        return words.gettext("Posts from %(name)s.") % {"name": label}
    if kind in ("category", "lang"):
        return words.gettext("Posts in %(name)s.") % {"name": label}
    return feed.description


def issue_links(issues: Iterable[IssueSummary]) -> tuple[IssueLink, ...]:
    """Issues as given (newest first), each linked to its web copy beside the list."""
    return tuple(
        IssueLink(issue.period, issue.subject, f"{issue.period}.html", issue.created_at)
        for issue in issues
    )
