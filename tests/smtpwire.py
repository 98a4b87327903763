"""A minimal SMTP server on 127.0.0.1 that records every byte a client sends, per session.

    async with WireServer(replies={b"RCPT": b"550 5.1.1 no such user"}) as server:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port, local_hostname="c.test")
        ...
    server.transcripts   # [bytes of session 1, ...]: commands and DATA exactly as sent

aiosmtpd (tests/smtpserver.py) undoes dot-stuffing and parses commands; this one keeps the
raw bytes, so two clients can be compared byte for byte (tests/test_mail_fastdata.py). It
offers SIZE, 8BITMIME and SMTPUTF8 and answers every command at once; ``replies`` overrides
the reply to a verb (b"MAIL", b"RCPT", b"DATA" for the 354, b"END" for the end of the
message, b"RSET").
"""

from __future__ import annotations

import asyncio
from typing import Self

EHLO = b"250-wire.test\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
DEFAULT_REPLIES = {
    b"MAIL": b"250 2.1.0 ok",
    b"RCPT": b"250 2.1.5 ok",
    b"DATA": b"354 go ahead",
    b"END": b"250 2.0.0 queued as 1",
    b"RSET": b"250 2.0.0 reset",
    b"NOOP": b"250 2.0.0 ok",
    b"QUIT": b"221 2.0.0 bye",
}


class WireServer:
    def __init__(self, replies: dict[bytes, bytes] | None = None) -> None:
        self.replies = {**DEFAULT_REPLIES, **(replies or {})}
        self._transcripts: list[bytearray] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def transcripts(self) -> list[bytes]:
        return [bytes(transcript) for transcript in self._transcripts]

    async def __aenter__(self) -> Self:
        # A line may be a whole message when a client sends lone CRs: allow big ones.
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0, limit=1 << 22)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transcript = bytearray()
        self._transcripts.append(transcript)
        writer.write(b"220 wire.test ESMTP\r\n")
        try:
            while line := await reader.readline():
                transcript += line
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(EHLO)
                    continue
                reply = self.replies.get(verb, b"502 5.5.1 not implemented")
                writer.write(reply + b"\r\n")
                if verb == b"DATA" and reply.startswith(b"354"):
                    while (line := await reader.readline()) and line != b".\r\n":
                        transcript += line
                    transcript += line
                    writer.write(self.replies[b"END"] + b"\r\n")
                elif verb == b"QUIT":
                    break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up: what it sent is recorded
        finally:
            writer.close()
