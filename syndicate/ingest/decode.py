"""Bounded decompression of HTTP bodies (gzip, deflate, brotli).

httpx decodes each network chunk in one call, and a few kilobytes of brotli can expand to
gigabytes inside that call, before any size check could see them. These decoders hand out
at most 64 KiB at a time, so the fetcher's size cap holds for compressed bodies too.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import Protocol

try:
    import brotli
except ImportError:  # pragma: no cover - httpx[brotli] installs it
    brotli = None

# Brotli can only be decoded within bounds from brotli 1.2 on (output_buffer_limit); with an
# older one we do not ask for it, and refuse it if a server sends it anyway.
BOUNDED_BROTLI = brotli is not None and hasattr(brotli.Decompressor, "can_accept_more_data")
ACCEPT_ENCODING = "gzip, deflate, br" if BOUNDED_BROTLI else "gzip, deflate"
DECODE_ERRORS: tuple[type[Exception], ...] = (zlib.error,) + (
    (brotli.error,) if brotli is not None else ()
)

_PIECE = 64 * 1024  # the most a decoder produces per step


class _Decoder(Protocol):
    def decode(self, data: bytes) -> Iterator[bytes]: ...

    def flush(self) -> Iterator[bytes]: ...


class _Inflate:
    """gzip or deflate (zlib-wrapped or raw, as servers differ), at most _PIECE per step."""

    def __init__(self) -> None:
        self._inflater: zlib._Decompress | None = None
        self._head = b""

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._inflater is None:
            # The first two bytes tell a gzip or zlib header from raw deflate.
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            self._inflater = zlib.decompressobj(_inflate_wbits(data))
        yield from self._drain(self._inflater, data)

    def flush(self) -> Iterator[bytes]:
        if self._inflater is None and self._head:
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            yield from self._drain(self._inflater, self._head)

    @staticmethod
    def _drain(inflater: zlib._Decompress, data: bytes) -> Iterator[bytes]:
        while not inflater.eof:  # anything after the end of the stream is ignored
            piece = inflater.decompress(data, _PIECE)
            if piece:
                yield piece
            data = inflater.unconsumed_tail
            if not data and len(piece) < _PIECE:
                return


def _inflate_wbits(head: bytes) -> int:
    gzip = head[:2] == b"\x1f\x8b"
    zlib_header = head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
    return zlib.MAX_WBITS | 32 if gzip or zlib_header else -zlib.MAX_WBITS


class _Brotli:
    """brotli, at most about _PIECE per step (brotli >= 1.2's output_buffer_limit)."""

    def __init__(self) -> None:
        assert brotli is not None
        self._decompressor = brotli.Decompressor()

    def decode(self, data: bytes) -> Iterator[bytes]:
        piece = self._decompressor.process(data, output_buffer_limit=_PIECE)
        if piece:
            yield piece
        while not self._decompressor.can_accept_more_data():
            piece = self._decompressor.process(b"", output_buffer_limit=_PIECE)
            if not piece:
                return
            yield piece

    def flush(self) -> Iterator[bytes]:
        # Output can still be pending once all input is in.
        while not self._decompressor.is_finished():
            piece = self._decompressor.process(b"", output_buffer_limit=_PIECE)
            if not piece:
                return
            yield piece


class ContentDecoder:
    """The decoders a Content-Encoding names, outermost first (none for identity)."""

    def __init__(self, decoders: list[_Decoder]) -> None:
        self._decoders = decoders

    @classmethod
    def for_encoding(cls, content_encoding: str | None) -> ContentDecoder:
        decoders: list[_Decoder] = []
        # "gzip, br" was gzipped first, so br is undone first.
        for name in reversed((content_encoding or "").split(",")):
            coding = name.strip().lower()
            if coding in ("", "identity"):
                continue
            if coding in ("gzip", "x-gzip", "deflate"):
                decoders.append(_Inflate())
            elif coding == "br" and BOUNDED_BROTLI:
                decoders.append(_Brotli())
            else:
                raise ValueError(f"unsupported Content-Encoding {coding!r}")
        return cls(decoders)

    def decode(self, data: bytes) -> Iterator[bytes]:
        return self._through(0, (data,))

    def flush(self) -> Iterator[bytes]:
        for index, decoder in enumerate(self._decoders):
            yield from self._through(index + 1, decoder.flush())

    def _through(self, index: int, pieces: Iterable[bytes]) -> Iterator[bytes]:
        if index == len(self._decoders):
            yield from pieces
            return
        for piece in pieces:
            yield from self._through(index + 1, self._decoders[index].decode(piece))
