"""A contract server for the few Discourse API endpoints syndicate uses. It is NOT Discourse.

It was written from Discourse's API documentation (docs.discourse.org) and the behaviour its
own request specs pin down, on top of the real HTTP server in tests/httpserver.py:

    POST /posts.json                  create a topic: title, raw, category, embed_url,
                                      external_id (JSON or form-encoded). 200 with
                                      {"id", "topic_id", "topic_slug", ...}; 422 with
                                      {"errors": [...]} when a field is missing or too short,
                                      the title is used already, or the external_id or
                                      embed_url has already been taken
    GET /t/external_id/{id}.json      301 to /t/{slug}/{id}.json
    GET /t/{id}.json                  the topic: {"id", "slug", "posts_count", ...}
    GET /t/{slug}/{id}.json           the same

Every request needs the headers Api-Key and Api-Username (403 {"errors": [...]} otherwise).
Discourse's defaults apply: titles of at least 15 characters, first posts of at least 20, no
two topics with the same title (each a knob).

Knobs for tests: ``fail_next(status, times, headers)`` answers the next requests with an
error (429 with Retry-After, 500, 502, ...), ``add_reply(topic_id)`` adds a reply, and
``topics`` lists the topics created, in order.

How the variable paths are routed: HttpServer matches exact paths only, so each topic's three
GET paths are registered with ``server.route`` when the topic is created. Paths of topics that
do not exist are therefore not routed at all and get HttpServer's own plain-text 404 (Discourse
answers a JSON 404), without any Api-Key check.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from httpserver import HttpServer, Request, Response

API_KEY = "contract-test-key-0123456789abcdef"
API_USERNAME = "system"
EXTERNAL_ID = re.compile(r"[\w-]+", re.ASCII)  # Ruby's \w: ASCII only

REFUSED = (
    "You are not permitted to view the requested resource. The API username or key is invalid."
)


@dataclass
class ContractTopic:
    id: int
    title: str
    slug: str
    raw: str
    category: int | None
    external_id: str | None
    embed_url: str | None
    username: str
    posts_count: int = 1

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "fancy_title": self.title,
            "slug": self.slug,
            "posts_count": self.posts_count,
            "category_id": self.category,
            "external_id": self.external_id,
            "archetype": "regular",
        }


@dataclass
class _Failure:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class DiscourseContract:
    """Discourse's topic endpoints on ``server``; see the module docstring."""

    def __init__(
        self,
        server: HttpServer,
        *,
        api_key: str = API_KEY,
        api_username: str = API_USERNAME,
        min_title_length: int = 15,
        min_post_length: int = 20,
        unique_titles: bool = True,
    ) -> None:
        self.server = server
        self.api_key = api_key
        self.api_username = api_username
        self.min_title_length = min_title_length
        self.min_post_length = min_post_length
        self.unique_titles = unique_titles
        self.topics: list[ContractTopic] = []
        self._failures: list[_Failure] = []
        # Requests arrive on the server's threads, one per connection.
        self._lock = threading.Lock()
        server.route("/posts.json", self._posts)

    @property
    def url(self) -> str:
        return self.server.url

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (a 429 also says how long to wait
        in its body, as Discourse does, from a Retry-After given in ``headers``)."""
        with self._lock:
            self._failures.extend(_Failure(status, dict(headers or {})) for _ in range(times))

    def add_reply(self, topic_id: int) -> None:
        with self._lock:
            self._topic(topic_id).posts_count += 1

    def topic(self, topic_id: int) -> ContractTopic:
        with self._lock:
            return self._topic(topic_id)

    def _topic(self, topic_id: int) -> ContractTopic:
        for topic in self.topics:
            if topic.id == topic_id:
                return topic
        raise KeyError(f"no topic {topic_id}")

    def _posts(self, request: Request) -> Response:
        if request.method != "POST":
            return _json(404, {"errors": ["The requested URL or resource could not be found."]})
        refused = self._check(request)
        if refused:
            return refused
        fields = _fields(request)
        title = str(fields.get("title") or "").strip()
        raw = str(fields.get("raw") or "").strip()
        external_id = fields.get("external_id") or None
        embed_url = fields.get("embed_url") or None
        category = fields.get("category")
        with self._lock:
            errors = self._problems(title, raw, external_id, embed_url)
            if errors:
                return _json(422, {"action": "create_post", "errors": errors})
            topic = ContractTopic(
                id=len(self.topics) + 1,
                title=title,
                slug=_slug(title),
                raw=raw,
                category=int(category) if category not in (None, "") else None,
                external_id=str(external_id) if external_id else None,
                embed_url=str(embed_url) if embed_url else None,
                username=request.headers["Api-Username"],
            )
            self.topics.append(topic)
            self._route(topic)
        return _json(
            200,
            {
                "id": 1000 + topic.id,
                "post_number": 1,
                "topic_id": topic.id,
                "topic_slug": topic.slug,
                "username": topic.username,
                "raw": topic.raw,
            },
        )

    def _problems(self, title: str, raw: str, external_id: object, embed_url: object) -> list[str]:
        errors = []
        if not title:
            errors.append("Title can't be blank")
        elif len(title) < self.min_title_length:
            errors.append(f"Title is too short (minimum is {self.min_title_length} characters)")
        elif self.unique_titles and any(t.title.lower() == title.lower() for t in self.topics):
            errors.append("Title has already been used")
        if not raw:
            errors.append("Body can't be blank")
        elif len(raw) < self.min_post_length:
            errors.append(f"Body is too short (minimum is {self.min_post_length} characters)")
        if external_id is not None:
            text = str(external_id)
            if len(text) > 50:
                errors.append("External is too long (maximum is 50 characters)")
            elif not EXTERNAL_ID.fullmatch(text):
                errors.append("External is invalid")
            # Discourse's uniqueness check on external_id ignores case.
            elif any((t.external_id or "").lower() == text.lower() for t in self.topics):
                errors.append("External has already been taken")
        if embed_url is not None and any(t.embed_url == embed_url for t in self.topics):
            errors.append("Embed url has already been taken")
        return errors

    def _route(self, topic: ContractTopic) -> None:
        # Registered as topics come to be: HttpServer routes exact paths only.
        show = self._guarded(lambda: _json(200, self._topic(topic.id).as_json()))
        self.server.route(f"/t/{topic.id}.json", show)
        self.server.route(f"/t/{topic.slug}/{topic.id}.json", show)
        if topic.external_id:
            # Discourse answers a lookup by external_id with a permanent redirect.
            moved = Response.redirect(f"/t/{topic.slug}/{topic.id}.json", status=301)
            self.server.route(f"/t/external_id/{topic.external_id}.json", self._guarded(moved))

    def _guarded(self, answer: Response | Callable[[], Response]) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            refused = self._check(request)
            if refused:
                return refused
            if request.method not in ("GET", "HEAD"):
                return _json(404, {"errors": ["The requested URL or resource could not be found."]})
            if isinstance(answer, Response):
                return answer
            with self._lock:
                return answer()

        return handle

    def _check(self, request: Request) -> Response | None:
        """An injected failure, or the 403 for a missing or wrong key; None to go on."""
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return _failure(failure)
        key = request.headers.get("Api-Key")
        username = request.headers.get("Api-Username")
        if key != self.api_key or username != self.api_username:
            return _json(403, {"errors": [REFUSED], "error_type": "invalid_access"})
        return None


def _failure(failure: _Failure) -> Response:
    if failure.status == 429:
        wait = failure.headers.get("Retry-After", "")
        seconds = int(wait) if wait.isdigit() else 10
        body = {
            "errors": [
                "You’ve performed this action too many times. "
                f"Please wait {seconds} seconds before trying again."
            ],
            "error_type": "rate_limit",
            "extras": {"wait_seconds": seconds, "time_left": f"{seconds} seconds"},
        }
        return _json(429, body, failure.headers)
    if failure.status >= 500:
        # Proxies in front of Discourse (nginx) answer 502/503 with an HTML page.
        page = f"<html><body><h1>{failure.status}</h1></body></html>".encode()
        return Response(failure.status, page, {"Content-Type": "text/html", **failure.headers})
    return _json(failure.status, {"errors": [f"HTTP {failure.status}"]}, failure.headers)


def _fields(request: Request) -> dict[str, object]:
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith("application/json"):
        data = json.loads(request.body or b"{}")
        return data if isinstance(data, dict) else {}
    form = parse_qs(request.body.decode(), keep_blank_values=True)
    return {name: values[-1] for name, values in form.items()}


def _slug(title: str) -> str:
    # Discourse's default "ascii" slugs: lower case, runs of anything else become one "-".
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug or "topic"


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status,
        json.dumps(body).encode(),
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )
