"""An unchanged publish knows its files by their stamp (device, inode, size, mtime) and
reads none back (issue 18: 100,000 posts); a file that is not the one recorded is read
and compared as before, and rebuilt when its bytes differ."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_publish import NOW, ingested

from syndicate.clock import FrozenClock
from syndicate.publish import build
from syndicate.publish.build import publish


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    reads: list[Path] = []
    holds = build.holds

    def counted(path: Path, digest: str) -> bool:
        reads.append(path)
        return holds(path, digest)

    monkeypatch.setattr(build, "holds", counted)
    return reads


async def test_an_unchanged_publish_reads_no_file_back(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, store = await ingested(project)
    async with store:
        first = await publish(settings, store, FrozenClock(NOW))
        reads = count_reads(monkeypatch)
        second = await publish(settings, store, FrozenClock(NOW))
        assert (second.written, second.unchanged, reads) == ([], len(first.written), [])

        # Another file in its place (a new inode), with other bytes: read, and rebuilt.
        index = project / "feeds" / "index.rss"
        good = index.read_bytes()
        index.unlink()
        index.write_bytes(good.replace(b"<title>", b"<title>OLD ", 1))
        third = await publish(settings, store, FrozenClock(NOW))
        assert third.written == ["index.rss"] and reads == [index]
        assert index.read_bytes() == good

        # The same bytes in a new file: read once, found current, and stamped again.
        index.unlink()
        index.write_bytes(good)
        reads.clear()
        fourth = await publish(settings, store, FrozenClock(NOW))
        fifth = await publish(settings, store, FrozenClock(NOW))
    assert (fourth.written, reads) == ([], [index])
    assert fifth.written == [] and reads == [index]  # not read a second time


async def test_records_without_a_stamp_are_read_once_then_stamped(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, store = await ingested(project)
    async with store:
        first = await publish(settings, store, FrozenClock(NOW))
        # As recorded before stamps existed.
        records = await store.published_files()
        await store.record_published(
            [
                build.PublishedFile(r.path, r.fingerprint, r.sha256, r.written_at, r.ping_pending)
                for r in records.values()
            ]
        )
        reads = count_reads(monkeypatch)
        second = await publish(settings, store, FrozenClock(NOW))
        read_then = len(reads)
        third = await publish(settings, store, FrozenClock(NOW))
    assert second.written == third.written == []
    assert read_then == len(first.written) and len(reads) == read_then
