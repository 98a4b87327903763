"""The Discourse client against a real HTTP server on 127.0.0.1; no mocks.

The server is a contract server (tests/discourse_contract.py) written from Discourse's API
documentation, not Discourse: it checks that the client speaks the API as documented, not
that a given Discourse release still behaves that way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest
from discourse_contract import API_KEY, API_USERNAME, DiscourseContract
from httpserver import HttpServer, Response, unused_url

from syndicate.forum.discourse import DiscourseClient, ForumError, Topic
from syndicate.links import public_url

TITLE = "Our annual report is out"
RAW = "We published the annual report today. Read it on our blog."
EMBED_URL = "https://blog.example.org/2015/12/annual-report/"
EXTERNAL_ID = "blog-annual-report-2015"

MakeClient = Callable[..., DiscourseClient]


@pytest.fixture
def contract(http_server: HttpServer) -> DiscourseContract:
    return DiscourseContract(http_server)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
async def make_client(
    contract: DiscourseContract, sleeps: list[float]
) -> AsyncIterator[MakeClient]:
    """Clients on the contract server; their waits are recorded in ``sleeps``, not slept."""
    clients: list[DiscourseClient] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    def make(**options: object) -> DiscourseClient:
        settings: dict[str, object] = {
            "api_key": API_KEY,
            "api_username": API_USERNAME,
            "category": 7,
            "timeout": 2.0,
            "sleep": sleep,
            **options,
        }
        base_url = str(settings.pop("base_url", contract.url))
        client = DiscourseClient(base_url, **settings)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def client(make_client: MakeClient) -> DiscourseClient:
    return make_client()


def where(url: str) -> str:
    return urlsplit(url).netloc


async def create(client: DiscourseClient, **changes: str) -> Topic:
    post = {"external_id": EXTERNAL_ID, "title": TITLE, "raw": RAW, "embed_url": EMBED_URL}
    return await client.topic_for(**{**post, **changes})


async def test_creates_a_topic(client: DiscourseClient, contract: DiscourseContract):
    topic = await create(client)

    assert topic == Topic(1, f"{contract.url}/t/our-annual-report-is-out/1", reply_count=0)
    [created] = contract.topics
    assert (created.external_id, created.embed_url, created.category) == (EXTERNAL_ID, EMBED_URL, 7)
    assert (created.title, created.raw) == (TITLE, RAW)


async def test_sends_the_documented_fields_and_headers(
    client: DiscourseClient, http_server: HttpServer
):
    await create(client)

    [request] = http_server.requests_to("/posts.json")
    assert request.method == "POST"
    assert json.loads(request.body) == {
        "title": TITLE,
        "raw": RAW,
        "category": 7,
        "embed_url": EMBED_URL,
        "external_id": EXTERNAL_ID,
    }
    assert request.headers["Api-Key"] == API_KEY
    assert request.headers["Api-Username"] == API_USERNAME
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("syndicate/")


async def test_category_is_left_out_when_not_set(
    make_client: MakeClient, http_server: HttpServer, contract: DiscourseContract
):
    await create(make_client(category=None))

    assert "category" not in json.loads(http_server.requests_to("/posts.json")[0].body)
    assert contract.topics[0].category is None


async def test_every_request_carries_the_api_headers(
    client: DiscourseClient, http_server: HttpServer, contract: DiscourseContract
):
    await create(client)
    await create(client)  # 422, then the lookup and its redirect
    await client.reply_count(1)

    assert len(http_server.requests) == 5
    for request in http_server.requests:
        assert request.headers["Api-Key"] == API_KEY, request.path
        assert request.headers["Api-Username"] == API_USERNAME, request.path


async def test_the_same_external_id_again_finds_the_first_topic(
    client: DiscourseClient, contract: DiscourseContract, http_server: HttpServer
):
    first = await create(client)
    contract.add_reply(first.id)

    again = await create(client)

    assert len(contract.topics) == 1
    assert again == Topic(first.id, first.url, reply_count=1)
    paths = [urlsplit(request.path).path for request in http_server.requests]
    assert paths == [
        "/posts.json",
        "/posts.json",  # 422 "External has already been taken"
        f"/t/external_id/{EXTERNAL_ID}.json",  # 301
        "/t/our-annual-report-is-out/1.json",
    ]


async def test_a_second_worker_finds_the_topic_too(
    make_client: MakeClient, contract: DiscourseContract
):
    first = await create(make_client())
    other = await create(make_client(), title="Our annual report is out (edited)")

    assert other.id == first.id
    assert len(contract.topics) == 1


async def test_find_topic(client: DiscourseClient, contract: DiscourseContract):
    assert await client.find_topic(EXTERNAL_ID) is None

    created = await create(client)
    contract.add_reply(created.id)
    contract.add_reply(created.id)

    assert await client.find_topic(EXTERNAL_ID) == Topic(created.id, created.url, reply_count=2)
    assert await client.find_topic("someone-else") is None


async def test_reply_count(client: DiscourseClient, contract: DiscourseContract):
    topic = await create(client)
    assert await client.reply_count(topic.id) == 0

    contract.add_reply(topic.id)
    contract.add_reply(topic.id)

    assert await client.reply_count(topic.id) == 2


async def test_reply_count_of_a_missing_topic(client: DiscourseClient, contract: DiscourseContract):
    with pytest.raises(ForumError) as raised:
        await client.reply_count(41)

    assert raised.value.status == 404
    assert str(raised.value) == f"{where(contract.url)}: topic 41 not found (deleted?)"


async def test_waits_out_a_short_429_and_retries(
    client: DiscourseClient, contract: DiscourseContract, sleeps: list[float]
):
    contract.fail_next(429, headers={"Retry-After": "2"})

    topic = await create(client)

    assert topic.id == 1
    assert sleeps == [2.0]
    assert len(contract.server.requests_to("/posts.json")) == 2


async def test_429_without_retry_after_uses_discourses_wait_seconds(
    client: DiscourseClient, contract: DiscourseContract, sleeps: list[float]
):
    contract.fail_next(429)  # the body says {"extras": {"wait_seconds": 10}}

    await create(client)

    assert sleeps == [10.0]


async def test_a_long_429_is_left_to_the_caller(
    client: DiscourseClient, contract: DiscourseContract, sleeps: list[float]
):
    contract.fail_next(429, headers={"Retry-After": "3600"})

    with pytest.raises(ForumError) as raised:
        await create(client)

    assert raised.value.retry_after == 3600
    assert raised.value.status == 429
    assert (
        str(raised.value) == f"{where(contract.url)}: rate limited (HTTP 429), retry after 3600 s"
    )
    assert sleeps == []
    assert len(contract.server.requests) == 1
    assert contract.topics == []


async def test_gives_up_after_three_attempts(
    client: DiscourseClient, contract: DiscourseContract, sleeps: list[float]
):
    contract.fail_next(429, times=3, headers={"Retry-After": "1"})

    with pytest.raises(ForumError) as raised:
        await create(client)

    assert raised.value.retry_after == 1
    assert sleeps == [1.0, 1.0]
    assert len(contract.server.requests) == 3


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "Internal Server Error"), (502, "Bad Gateway"), (503, "Service Unavailable")],
)
async def test_server_errors(
    client: DiscourseClient, contract: DiscourseContract, status: int, reason: str
):
    contract.fail_next(status)

    with pytest.raises(ForumError) as raised:
        await create(client)

    assert str(raised.value) == f"{where(contract.url)}: HTTP {status} {reason}"
    assert raised.value.status == status
    assert len(contract.server.requests) == 1  # not retried: the next cycle will


async def test_server_error_while_looking_up(client: DiscourseClient, contract: DiscourseContract):
    await create(client)
    contract.fail_next(502)

    with pytest.raises(ForumError, match=r": HTTP 502 Bad Gateway$"):
        await client.find_topic(EXTERNAL_ID)


@pytest.mark.parametrize(
    "credentials",
    [
        {"api_key": "wrong-key-5f4dcc3b5aa765d61d8327deb882cf99"},
        {"api_username": "nobody"},
    ],
)
async def test_refused_credentials(
    make_client: MakeClient,
    contract: DiscourseContract,
    caplog: pytest.LogCaptureFixture,
    credentials: dict[str, str],
):
    caplog.set_level(logging.DEBUG)
    client = make_client(**credentials)

    with pytest.raises(ForumError) as raised:
        await create(client)

    message = str(raised.value)
    assert message.startswith(f"{where(contract.url)}: the API key or username ")
    assert "was refused (HTTP 403)" in message
    assert "\n" not in message
    assert raised.value.status == 403
    key = credentials.get("api_key", API_KEY)
    assert key not in message
    assert key not in repr(raised.value)
    assert key not in repr(client)
    assert key not in caplog.text
    assert contract.topics == []


async def test_api_key_stays_out_of_logs_and_reprs(
    client: DiscourseClient, contract: DiscourseContract, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    contract.fail_next(429, headers={"Retry-After": "1"})

    topic = await create(client)
    await create(client)
    await client.reply_count(topic.id)

    assert caplog.records  # the 429 wait, and httpx's own request lines
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(client)


async def test_connection_refused(make_client: MakeClient):
    base_url = unused_url("").rstrip("/")
    client = make_client(base_url=base_url)

    with pytest.raises(ForumError) as raised:
        await create(client)

    assert str(raised.value) == f"cannot connect to {where(base_url)}: connection refused"
    assert raised.value.status is None


async def test_timeout(make_client: MakeClient, http_server: HttpServer):
    http_server.route("/t/5.json", Response(200, b"{}", delay=2))
    client = make_client(timeout=0.2)

    with pytest.raises(ForumError) as raised:
        await client.reply_count(5)

    assert str(raised.value) == f"{where(http_server.url)}: no answer within 0.2 s (timeout)"


async def test_other_refusals_carry_discourses_text(
    client: DiscourseClient, contract: DiscourseContract
):
    with pytest.raises(ForumError) as raised:
        await create(client, title="Hello")

    assert str(raised.value) == (
        f"{where(contract.url)}: topic refused: Title is too short (minimum is 15 characters)"
    )
    assert raised.value.status == 422
    assert contract.topics == []


async def test_two_posts_with_one_title(client: DiscourseClient, contract: DiscourseContract):
    # Discourse refuses a second topic with the same title unless the forum allows it.
    await create(client)

    with pytest.raises(ForumError, match=r"topic refused: Title has already been used$"):
        await create(client, external_id="another-post", embed_url=EMBED_URL + "2/")

    assert len(contract.topics) == 1


async def test_embed_url_taken_by_a_topic_of_another_external_id(
    client: DiscourseClient, contract: DiscourseContract
):
    await create(client)

    with pytest.raises(ForumError, match=r"topic refused: Embed url has already been taken$"):
        await create(client, external_id="renamed-post", title="The annual report, renamed")

    assert len(contract.topics) == 1


async def test_redirect_to_another_host_is_not_followed(
    client: DiscourseClient, http_server: HttpServer
):
    with HttpServer() as elsewhere:
        http_server.route(
            f"/t/external_id/{EXTERNAL_ID}.json",
            Response.redirect(elsewhere.url_for("/t/x/1.json"), status=301),
        )

        with pytest.raises(ForumError, match="not sending the API key there"):
            await client.find_topic(EXTERNAL_ID)

        assert elsewhere.requests == []


async def test_answer_that_is_not_json(client: DiscourseClient, http_server: HttpServer):
    http_server.route("/t/3.json", Response(200, b"<html>maintenance</html>"))

    with pytest.raises(ForumError, match=r"unexpected answer to GET /t/3.json: not a JSON object$"):
        await client.reply_count(3)


@pytest.mark.parametrize(
    "external_id",
    ["", "a" * 51, "has space", "../../admin", "post/1", "caf\u00e9", "x\n", "emoji-\U0001f600"],
)
async def test_external_id_is_validated(
    client: DiscourseClient, http_server: HttpServer, external_id: str
):
    with pytest.raises(ValueError, match="external_id"):
        await create(client, external_id=external_id)
    with pytest.raises(ValueError, match="external_id"):
        await client.find_topic(external_id)

    assert http_server.requests == []


@pytest.mark.parametrize("external_id", ["a" * 50, "post-42_rev-3", "A-Z_0-9"])
async def test_valid_external_ids(
    client: DiscourseClient, contract: DiscourseContract, external_id: str
):
    topic = await create(client, external_id=external_id)

    assert await client.find_topic(external_id) == topic
    assert contract.topics[0].external_id == external_id


async def test_async_context_manager(contract: DiscourseContract):
    async with DiscourseClient(contract.url, api_key=API_KEY, api_username=API_USERNAME) as client:
        assert await client.find_topic(EXTERNAL_ID) is None


async def test_a_hostile_topic_slug_stays_one_path_segment(
    client: DiscourseClient, contract: DiscourseContract, http_server: HttpServer
):
    slug = 'x" onmouseover=alert(1) /../?#'
    answer = {"id": 9, "topic_id": 9, "topic_slug": slug}
    http_server.route("/posts.json", Response(body=json.dumps(answer).encode()))

    topic = await create(client)

    assert topic.url == f"{contract.url}/t/x%22%20onmouseover%3Dalert%281%29%20%2F..%2F%3F%23/9"
    assert public_url(topic.url) == topic.url


async def test_a_post_without_a_link_is_sent_without_embed_url(
    client: DiscourseClient, http_server: HttpServer
):
    await client.topic_for(external_id=EXTERNAL_ID, title=TITLE, raw=RAW, embed_url=None)

    assert "embed_url" not in json.loads(http_server.requests_to("/posts.json")[0].body)
