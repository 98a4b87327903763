"""The forum job: give every post its discussion link, by its source's strategy.

feed      the comments link the source feed gave (RSS <comments>, Atom rel="replies")
template  [forum] url_template filled in from the post
discourse a topic created through the Discourse API (found again, never duplicated)
none      no link

A post is linked once per strategy and template (its `discussion_key`): changing either in
the config relinks the posts concerned on the next run, and `syndicate forum relink` relinks
everything. A forum that is down costs nothing but time: those posts stay unlinked and are
tried again on the next run; ingesting and publishing go on.
"""

from __future__ import annotations

import hashlib
import logging
import re
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from syndicate.clock import Clock
from syndicate.config import Settings, secret
from syndicate.forum.discourse import DiscourseClient, ForumError
from syndicate.forum.template import post_id, template_url
from syndicate.links import ONLY_PUBLIC, public_url, shown
from syndicate.models import Post
from syndicate.store import Store
from syndicate.store.forum import Discussion

log = logging.getLogger(__name__)

REPLY_REFRESH_AGE = timedelta(hours=1)
REPLY_REFRESH_LIMIT = 50  # topics per run: reply counts are nice to have, not worth a flood
LINK_BATCH = 500  # posts read, linked and saved at a time (memory stays flat)


@dataclass(slots=True)
class ForumReport:
    linked: int = 0
    without_link: int = 0  # the strategy gave none (feed without comments, "none")
    failed: int = 0
    refreshed: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        line = (
            f"discussion links: {self.linked} linked, {self.without_link} without a "
            f"thread, {self.failed} failed (retried next run)"
        )
        if self.refreshed:
            line += f", {self.refreshed} reply counts refreshed"
        return line


def strategy_key(settings: Settings, strategy: str) -> str:
    """What a resolved link depends on, so that a change of it relinks."""
    forum = settings.forum
    if strategy == "template":
        digest = hashlib.sha256((forum.url_template or "").encode()).hexdigest()[:16]
        return f"template:{digest}"
    if strategy == "discourse" and forum.discourse:
        return f"discourse:{forum.discourse.url}"
    return strategy


def external_id(post: Post) -> str:
    """Discourse's external_id: at most 50 characters of [\\w-], stable for the post."""
    return f"{re.sub(r'[^A-Za-z0-9_-]', '-', post.source)[:30]}-{post_id(post)}"


async def link_discussions(
    settings: Settings,
    store: Store,
    clock: Clock,
    *,
    everything: bool = False,
    client: DiscourseClient | None = None,
) -> ForumReport:
    strategies = {s.name: s.forum or settings.forum.strategy for s in settings.sources}
    keys = {name: strategy_key(settings, strategy) for name, strategy in strategies.items()}
    report = ForumReport()
    now = clock.now()
    discourse_posts: list[Post] = []
    # Batch by batch: saving one batch's links while the next is read keeps memory flat
    # however many posts there are.
    async with aclosing(
        store.posts_to_link(keys, everything=everything, batch=LINK_BATCH)
    ) as batches:
        async for batch in batches:
            found = _resolve(settings, batch, strategies, keys, now, report)
            discourse_posts.extend(post for post in batch if strategies[post.source] == "discourse")
            await store.save_discussions(found)
    if discourse_posts or (settings.forum.discourse and settings.forum.discourse.refresh_replies):
        await _discourse(settings, store, clock, discourse_posts, keys, report, client)
    return report


def _resolve(
    settings: Settings,
    batch: list[Post],
    strategies: dict[str, str],
    keys: dict[str, str],
    now: datetime,
    report: ForumReport,
) -> list[Discussion]:
    """The links of the batch's posts whose strategy needs no forum API (all but discourse)."""
    found = []
    for post in batch:
        strategy = strategies[post.source]
        if strategy == "discourse":
            continue
        url = None
        if strategy == "feed":
            url = post.comments_url
        elif strategy == "template" and settings.forum.url_template:
            url = template_url(settings.forum.url_template, post, settings.site.tz)
        url = _checked(url, post, strategy)
        found.append(Discussion(post.id or 0, url, keys[post.source], now))
        if url:
            report.linked += 1
        else:
            report.without_link += 1
    return found


async def _discourse(
    settings: Settings,
    store: Store,
    clock: Clock,
    todo: list[Post],
    keys: dict[str, str],
    report: ForumReport,
    client: DiscourseClient | None,
) -> None:
    config = settings.forum.discourse
    if config is None:
        return
    if client is None:
        api_key = secret(config.api_key_env)
        if api_key is None:
            if todo:
                message = (
                    f"forum.discourse.api_key_env: environment variable "
                    f"{config.api_key_env} is not set; {len(todo)} posts left unlinked"
                )
                log.error("%s", message)
                report.errors.append(message)
                report.failed += len(todo)
            return
        client = DiscourseClient(
            config.url, api_key=api_key, api_username=config.api_username, category=config.category
        )
    async with client:
        for post in todo:
            try:
                topic = await client.topic_for(
                    external_id=external_id(post),
                    title=post.title,
                    raw=_raw(post),
                    embed_url=public_url(post.url),
                )
            except ForumError as error:
                # Left unlinked: the next run tries again. One message, not one per post.
                report.failed += 1
                if not report.errors:
                    log.warning(
                        "Discourse: %s (posts left unlinked are retried next run)",
                        error,
                        extra={"source": post.source},
                    )
                report.errors.append(f"{post.source}: {post.title}: {error}")
                if error.retry_after is not None:
                    break  # rate-limited for longer than we wait: stop asking for now
                continue
            await store.save_discussions(
                [
                    Discussion(
                        post.id or 0,
                        _checked(topic.url, post, "discourse"),
                        keys[post.source],
                        clock.now(),
                        topic.id,
                        topic.reply_count,
                    )
                ]
            )
            report.linked += 1
        if config.refresh_replies:
            await _refresh_replies(store, clock, client, report)


async def _refresh_replies(
    store: Store, clock: Clock, client: DiscourseClient, report: ForumReport
) -> None:
    now = clock.now()
    counts = {}
    for post in await store.topics_to_refresh(now - REPLY_REFRESH_AGE, REPLY_REFRESH_LIMIT):
        try:
            counts[post.id or 0] = await client.reply_count(post.forum_topic_id or 0)
        except ForumError as error:
            log.warning("Discourse: reply counts not refreshed: %s", error)
            break
    await store.save_reply_counts(counts, now)
    report.refreshed = len(counts)


def _raw(post: Post) -> str:
    """The topic's first post: the excerpt and a link to the original, if it has one."""
    link = public_url(post.url)
    return f"{post.excerpt}\n\nRead the full post: {link}".strip() if link else post.excerpt


def _checked(url: str | None, post: Post, strategy: str) -> str | None:
    """The discussion URL if it may be published (syndicate.links), else None and a
    warning: a stored comments link from before that check, a template that a post's
    values turned into something else, a forum answering with an odd topic URL."""
    if not url:
        return None
    if (public := public_url(url)) is None:
        log.warning(
            "post %s: discussion URL %s (strategy %s) dropped: %s",
            shown(post.guid),
            shown(url),
            strategy,
            ONLY_PUBLIC,
            extra={"source": post.source},
        )
    return public
