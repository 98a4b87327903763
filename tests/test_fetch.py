"""Fetching against a real HTTP server on 127.0.0.1 and real files; no mocks."""

from __future__ import annotations

import gzip
import logging
import os
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import brotli
import pytest
from httpserver import (
    Connection,
    HttpServer,
    Raw,
    Request,
    Response,
    never_ending,
    unused_url,
)

from syndicate.errors import FetchError, SourceError
from syndicate.ingest.fetch import Fetcher, FetchResult, Validators

# The fixture, until tests/conftest.py imports it for every module.

USER_AGENT = "syndicate-tests/1.0 (+https://example.org/)"
FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(
        user_agent=USER_AGENT, connect_timeout=1, read_timeout=1, total_timeout=1.5
    ) as opened:
        yield opened


async def fetch_error(
    fetcher: Fetcher, url: str, validators: Validators | None = None
) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch("blog", url, validators or Validators())
    error = caught.value
    assert isinstance(error, SourceError)
    assert error.source == "blog"
    assert "\n" not in str(error)
    return error


# Conditional GET


async def test_etag_then_304_with_if_none_match(http_server: HttpServer, fetcher: Fetcher):
    def feed(request: Request) -> Response:
        if request.headers["If-None-Match"] == '"v1"':
            return Response(304, headers={"ETag": '"v1"'})
        return Response(body=FEED, headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    http_server.route("/feed", feed)
    url = http_server.url_for("/feed")

    first = await fetcher.fetch("blog", url, Validators())
    assert (first.status, first.body, first.etag) == (200, FEED, '"v1"')
    assert first.content_type == "application/rss+xml"
    assert not first.not_modified
    assert first.url == url
    assert first.permanent_url is None
    assert "If-None-Match" not in http_server.requests[0].headers

    second = await fetcher.fetch("blog", url, first.validators)
    assert second.status == 304
    assert second.body is None
    assert second.not_modified
    assert second.etag == '"v1"'
    assert second.content_hash == first.content_hash
    assert http_server.requests[1].headers["If-None-Match"] == '"v1"'


async def test_last_modified_then_304_keeps_validators(http_server: HttpServer, fetcher: Fetcher):
    stamp = "Wed, 16 Dec 2015 10:00:00 GMT"

    def feed(request: Request) -> Response:
        if request.headers["If-Modified-Since"] == stamp:
            return Response(304)  # no validators repeated: the stored ones carry over
        return Response(body=FEED, headers={"Last-Modified": stamp})

    http_server.route("/feed", feed)
    url = http_server.url_for("/feed")
    first = await fetcher.fetch("blog", url, Validators())
    assert first.last_modified == stamp
    assert first.etag is None

    second = await fetcher.fetch("blog", url, first.validators)
    assert second.status == 304
    assert second.validators == first.validators
    assert http_server.requests[1].headers["If-Modified-Since"] == stamp


async def test_same_body_without_validators_is_not_modified_by_hash(
    http_server: HttpServer, fetcher: Fetcher
):
    http_server.route("/feed", Response(body=FEED))
    url = http_server.url_for("/feed")
    first = await fetcher.fetch("blog", url, Validators())
    second = await fetcher.fetch("blog", url, first.validators)
    assert second.status == 200
    assert second.body is None
    assert second.not_modified
    assert second.content_hash == first.content_hash

    http_server.route("/feed", Response(body=FEED + b"\n"))
    third = await fetcher.fetch("blog", url, second.validators)
    assert third.body == FEED + b"\n"
    assert third.content_hash != first.content_hash


async def test_no_conditional_request_without_a_stored_body(
    http_server: HttpServer, fetcher: Fetcher
):
    # Validators without content_hash (a parse failed): a 304 would leave nothing to parse.
    http_server.route("/feed", Response(body=FEED, headers={"ETag": '"v1"'}))
    result = await fetcher.fetch("blog", http_server.url_for("/feed"), Validators(etag='"v1"'))
    assert result.body == FEED
    assert "If-None-Match" not in http_server.requests[0].headers


async def test_304_to_an_unconditional_request_is_an_error(
    http_server: HttpServer, fetcher: Fetcher
):
    http_server.route("/feed", Response(304))
    error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert "304" in str(error)


# Redirects


async def test_permanent_redirect_chain_sets_permanent_url(
    http_server: HttpServer, fetcher: Fetcher
):
    http_server.route("/old", Response.redirect("/older", 301))
    http_server.route("/older", Response.redirect(http_server.url_for("/feed"), 308))
    http_server.route("/feed", Response(body=FEED))
    result = await fetcher.fetch("blog", http_server.url_for("/old"), Validators())
    assert result.body == FEED
    assert result.url == http_server.url_for("/feed")
    assert result.permanent_url == http_server.url_for("/feed")


async def test_a_temporary_hop_means_no_permanent_url(http_server: HttpServer, fetcher: Fetcher):
    http_server.route("/old", Response.redirect("/moving", 301))
    http_server.route("/moving", Response.redirect("/feed", 302))
    http_server.route("/feed", Response(body=FEED))
    result = await fetcher.fetch("blog", http_server.url_for("/old"), Validators())
    assert result.url == http_server.url_for("/feed")
    assert result.permanent_url is None


async def test_conditional_headers_follow_redirects(http_server: HttpServer, fetcher: Fetcher):
    http_server.route("/old", Response.redirect("/feed", 301))
    http_server.route("/feed", Response(304))
    validators = Validators(etag='"v1"', content_hash="0" * 64)
    result = await fetcher.fetch("blog", http_server.url_for("/old"), validators)
    assert result.status == 304
    assert result.permanent_url == http_server.url_for("/feed")
    assert http_server.requests_to("/feed")[0].headers["If-None-Match"] == '"v1"'


async def test_redirect_loop_is_an_error(http_server: HttpServer, fetcher: Fetcher):
    http_server.route("/loop", Response.redirect("/loop", 302))
    error = await fetch_error(fetcher, http_server.url_for("/loop"))
    assert "too many redirects (more than 5)" in str(error)
    assert len(http_server.requests) == 6


async def test_max_redirects_is_the_limit(http_server: HttpServer):
    for hop in range(3):
        http_server.route(f"/{hop}", Response.redirect(f"/{hop + 1}", 301))
    http_server.route("/3", Response(body=FEED))
    async with Fetcher(user_agent=USER_AGENT, max_redirects=3) as three:
        assert (await three.fetch("blog", http_server.url_for("/0"), Validators())).body == FEED
    async with Fetcher(user_agent=USER_AGENT, max_redirects=2) as two:
        error = await fetch_error(two, http_server.url_for("/0"))
    assert "too many redirects (more than 2)" in str(error)


async def test_redirect_to_a_file_is_refused(http_server: HttpServer, fetcher: Fetcher):
    http_server.route("/feed", Response.redirect("file:///etc/passwd", 301))
    error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert "redirect to unsupported file:///etc/passwd" in str(error)


# Status codes


async def test_410_is_gone(http_server: HttpServer, fetcher: Fetcher):
    http_server.route("/feed", Response(410))
    error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert error.gone
    assert error.status == 410
    assert str(error) == "blog: HTTP 410 Gone (the feed was removed)"


async def test_429_with_retry_after_seconds(http_server: HttpServer, fetcher: Fetcher):
    http_server.route("/feed", Response(429, headers={"Retry-After": "120"}))
    error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert error.status == 429
    assert error.retry_after == timedelta(seconds=120)
    assert not error.gone
    assert str(error) == "blog: HTTP 429 Too Many Requests (retry after 120 s)"


async def test_429_with_retry_after_date(http_server: HttpServer, fetcher: Fetcher):
    # Measured against the server's Date, so the test does not depend on our clock.
    sent = datetime(2015, 12, 16, 10, 0, tzinfo=UTC)
    headers = {
        "Date": format_datetime(sent, usegmt=True),
        "Retry-After": format_datetime(sent + timedelta(hours=1), usegmt=True),
    }
    http_server.route("/feed", Response(429, headers=headers))
    error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert error.retry_after == timedelta(hours=1)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (None, None),
        ("soon", None),
        ("-5", None),
        ("99999999999999999999", timedelta(days=7)),
        ("Wed, 16 Dec 2015 10:00:00 GMT", timedelta(0)),  # in the past: now
    ],
)
async def test_503_retry_after_edge_cases(
    http_server: HttpServer, fetcher: Fetcher, retry_after: str | None, expected: timedelta | None
):
    headers = {"Retry-After": retry_after} if retry_after else {}
    http_server.route("/feed", Response(503, headers=headers))
    error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert error.status == 503
    assert error.retry_after == expected


async def test_404_message(http_server: HttpServer, fetcher: Fetcher):
    error = await fetch_error(fetcher, http_server.url_for("/nothing-here"))
    assert str(error) == "blog: HTTP 404 Not Found"
    assert error.status == 404
    assert error.retry_after is None
    assert not error.gone


async def test_error_after_redirect_names_the_final_url(http_server: HttpServer, fetcher: Fetcher):
    http_server.route("/feed", Response.redirect("/gone-wrong", 302))
    http_server.route("/gone-wrong", Response(500, b"oops"))
    error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert str(error) == (
        f"blog: HTTP 500 Internal Server Error at {http_server.url_for('/gone-wrong')}"
    )


# Limits


def stalled(head: bytes, body: bytes = b"") -> Raw:
    """A response that sends `head` and `body`, then nothing more until the server stops:
    a client that waits for more gets its read timeout, not the answer a test expects."""

    def write(connection: Connection) -> None:
        if connection.send(head + body):
            connection.wait(60)

    return Raw(write)


async def test_content_length_over_max_size_is_refused_before_reading(http_server: HttpServer):
    # 100 MB announced and not one byte of it sent: only the header check can fail this.
    head = b"HTTP/1.1 200 OK\r\n"
    head += b"Content-Type: application/xml\r\nContent-Length: 100000000\r\n\r\n"
    http_server.route("/feed", stalled(head))
    async with Fetcher(user_agent=USER_AGENT, max_size=1000) as small:
        error = await fetch_error(small, http_server.url_for("/feed"))
    assert str(error).startswith("blog: larger than 1.0 kB")
    assert error.status == 200


async def test_streamed_body_over_max_size_fails_as_the_cap_is_crossed(http_server: HttpServer):
    # Chunked without a length: 60 kB of a body that never ends. Only a client that counts
    # the bytes as they come can fail this; one that waits for the end gets a timeout.
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
    head += b"Transfer-Encoding: chunked\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (10_000, b"x" * 10_000) for _ in range(6))
    http_server.route("/feed", stalled(head, body))
    async with Fetcher(user_agent=USER_AGENT, max_size=50_000) as small:
        error = await fetch_error(small, http_server.url_for("/feed"))
    assert "larger than 50.0 kB" in str(error)


async def test_default_max_size_message(http_server: HttpServer, fetcher: Fetcher):
    http_server.route("/feed", Response(headers={"Content-Length": "10000001"}))
    error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert str(error) == (
        "blog: larger than 10.0 MB; raise [ingest] max_size if the feed really is this big"
    )


async def test_gzip_bomb_is_capped(http_server: HttpServer):
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    http_server.route("/feed", Response(body=bomb, headers={"Content-Encoding": "gzip"}))
    async with Fetcher(user_agent=USER_AGENT, max_size=100_000) as small:
        error = await fetch_error(small, http_server.url_for("/feed"))
    assert "larger than 100.0 kB" in str(error)


async def test_brotli_bomb_is_capped_without_decoding_it_whole(http_server: HttpServer):
    # 50 MB of zeros in under 100 bytes: one network read. Decoding it in one go (as
    # httpx's aiter_bytes would) allocates all 50 MB before any size check can run.
    bomb = brotli.compress(b"\0" * 50_000_000, quality=5)
    assert len(bomb) < 1000
    http_server.route("/feed", Response(body=bomb, headers={"Content-Encoding": "br"}))
    async with Fetcher(user_agent=USER_AGENT, max_size=100_000) as small:
        tracemalloc.start()
        try:
            error = await fetch_error(small, http_server.url_for("/feed"))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert "larger than 100.0 kB" in str(error)
    assert peak < 5_000_000


async def test_never_ending_body_hits_the_total_timeout(http_server: HttpServer, fetcher: Fetcher):
    # A chunk every 0.2 s never trips the 1 s read timeout: only the total one ends it.
    http_server.route("/feed", never_ending(interval=0.2))
    error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert str(error) == f"blog: took longer than 1.5 s (fetching {http_server.url_for('/feed')})"
    assert error.status is None


async def test_silent_server_hits_the_read_timeout(http_server: HttpServer):
    http_server.route("/feed", Response(body=FEED, delay=2))
    async with Fetcher(user_agent=USER_AGENT, read_timeout=0.3) as impatient:
        error = await fetch_error(impatient, http_server.url_for("/feed"))
    host = http_server.url.removeprefix("http://")
    assert str(error) == f"blog: {host} sent nothing for 0.3 s (read timeout)"


# Network


async def test_connection_refused(fetcher: Fetcher):
    url = unused_url("/feed")
    error = await fetch_error(fetcher, url)
    assert error.status is None
    host = url.removeprefix("http://").removesuffix("/feed")
    assert str(error) == f"blog: connection refused by {host}"


async def test_server_closing_without_answering_is_a_protocol_error(
    http_server: HttpServer, fetcher: Fetcher
):
    http_server.route("/feed", Raw(lambda connection: None))
    error = await fetch_error(fetcher, http_server.url_for("/feed"))
    assert "protocol error" in str(error)
    assert error.status is None


async def test_unsupported_scheme(fetcher: Fetcher):
    error = await fetch_error(fetcher, "ftp://example.org/feed.xml")
    assert "unsupported URL scheme 'ftp'" in str(error)


# Request headers and content encodings


async def test_request_headers(http_server: HttpServer, fetcher: Fetcher):
    http_server.route("/feed", Response(body=FEED))
    await fetcher.fetch("blog", http_server.url_for("/feed"), Validators())
    headers = http_server.requests[0].headers
    assert headers["User-Agent"] == USER_AGENT
    assert headers["Accept-Encoding"] == "gzip, deflate, br"
    assert headers["Accept"].startswith("application/rss+xml, application/atom+xml")


async def test_connections_are_kept_alive(http_server: HttpServer, fetcher: Fetcher):
    http_server.route("/old", Response.redirect("/feed", 301))
    http_server.route("/feed", Response(body=FEED))
    await fetcher.fetch("blog", http_server.url_for("/old"), Validators())
    await fetcher.fetch("blog", http_server.url_for("/feed"), Validators())
    assert len({request.client for request in http_server.requests}) == 1


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
async def test_compressed_bodies_are_decoded(
    http_server: HttpServer, fetcher: Fetcher, encoding: str
):
    http_server.route("/feed", Response.compressed(FEED * 100, encoding))
    result = await fetcher.fetch("blog", http_server.url_for("/feed"), Validators())
    assert result.body == FEED * 100


async def test_raw_deflate_and_stacked_encodings_are_decoded(
    http_server: HttpServer, fetcher: Fetcher
):
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    http_server.route(
        "/raw",
        Response(body=raw.compress(FEED) + raw.flush(), headers={"Content-Encoding": "deflate"}),
    )
    http_server.route(
        "/stacked",
        Response(
            body=brotli.compress(gzip.compress(FEED)), headers={"Content-Encoding": "gzip, br"}
        ),
    )
    for path in ("/raw", "/stacked"):
        assert (await fetcher.fetch("blog", http_server.url_for(path), Validators())).body == FEED


async def test_bad_encodings_are_errors(http_server: HttpServer, fetcher: Fetcher):
    http_server.route(
        "/zstd", Response(body=b"\x28\xb5\x2f\xfd", headers={"Content-Encoding": "zstd"})
    )
    http_server.route(
        "/broken", Response(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    )
    unsupported = await fetch_error(fetcher, http_server.url_for("/zstd"))
    assert str(unsupported) == "blog: unsupported Content-Encoding 'zstd'"
    broken = await fetch_error(fetcher, http_server.url_for("/broken"))
    assert "cannot decompress the body (Content-Encoding gzip)" in str(broken)


async def test_fetches_are_logged_at_debug_with_the_source(
    http_server: HttpServer, fetcher: Fetcher, caplog: pytest.LogCaptureFixture
):
    http_server.route("/feed", Response(body=FEED))
    with caplog.at_level(logging.DEBUG, logger="syndicate.ingest.fetch"):
        await fetcher.fetch("blog", http_server.url_for("/feed"), Validators())
        with pytest.raises(FetchError):
            await fetcher.fetch("blog", http_server.url_for("/missing"), Validators())
    records = [r for r in caplog.records if r.name == "syndicate.ingest.fetch"]
    assert [r.levelno for r in records] == [logging.DEBUG, logging.DEBUG]
    assert all(r.source == "blog" for r in records)
    assert "200" in records[0].getMessage()
    assert "HTTP 404" in records[1].getMessage()


# Local files


def write(path: Path, data: bytes, mtime: float) -> None:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


async def test_local_file_read_then_not_modified_by_mtime(tmp_path: Path, fetcher: Fetcher):
    feed = tmp_path / "feed.xml"
    an_hour_ago = time.time() - 3600
    write(feed, FEED, an_hour_ago)

    first = await fetcher.fetch("local", str(feed), Validators())
    assert (first.status, first.body) == (200, FEED)
    assert first.url == feed.as_uri()
    assert first.content_type == "application/xml"
    assert first.last_modified is not None
    assert first.last_modified.endswith(" GMT")

    # Same mtime: not even read (a changed body under the same mtime shows it).
    write(feed, b"changed, same mtime", an_hour_ago)
    second = await fetcher.fetch("local", feed.as_uri(), first.validators)
    assert (second.status, second.body) == (304, None)
    assert second.validators == first.validators

    write(feed, FEED + b"<!-- edited -->", an_hour_ago + 60)
    third = await fetcher.fetch("local", str(feed), second.validators)
    assert (third.status, third.body) == (200, FEED + b"<!-- edited -->")
    assert third.last_modified != first.last_modified


async def test_local_file_touched_but_same_content_is_not_modified_by_hash(
    tmp_path: Path, fetcher: Fetcher
):
    feed = tmp_path / "feed.xml"
    write(feed, FEED, time.time() - 3600)
    first = await fetcher.fetch("local", str(feed), Validators())
    write(feed, FEED, time.time() - 60)
    second = await fetcher.fetch("local", str(feed), first.validators)
    assert (second.status, second.body) == (200, None)
    assert second.content_hash == first.content_hash
    assert second.last_modified != first.last_modified


async def test_local_file_written_this_second_has_no_mtime_validator(
    tmp_path: Path, fetcher: Fetcher
):
    # A second write within the same second would keep the same HTTP-date.
    feed = tmp_path / "feed.json"
    feed.write_bytes(b"{}")
    result = await fetcher.fetch("local", str(feed), Validators())
    assert result.body == b"{}"
    assert result.last_modified is None
    assert result.content_type == "application/json"


async def test_local_file_errors(tmp_path: Path, fetcher: Fetcher):
    missing = await fetch_error(fetcher, str(tmp_path / "missing.xml"))
    assert str(missing) == f"blog: no such file: {tmp_path / 'missing.xml'}"
    assert missing.status is None
    directory = await fetch_error(fetcher, tmp_path.as_uri())
    assert "not a regular file" in str(directory)
    relative = await fetch_error(fetcher, "feeds/blog.xml")
    assert "relative path 'feeds/blog.xml'" in str(relative)


async def test_local_file_over_max_size(tmp_path: Path):
    feed = tmp_path / "big.xml"
    feed.write_bytes(b"x" * 2000)
    async with Fetcher(user_agent=USER_AGENT, max_size=1000) as small:
        error = await fetch_error(small, str(feed))
    assert "larger than 1.0 kB" in str(error)


def test_fetch_result_validators():
    result = FetchResult("http://x/", 200, b"", None, '"e"', "date", "hash")
    assert result.validators == Validators('"e"', "date", "hash")
