"""Benchmark: the CPU the SMTP client alone spends a message, FastSMTP against aiosmtplib.SMTP.

    python bench/smtpclient.py [--count 3200] [--client fast|aiosmtplib] [--size 59000]

`--count` messages of `--size` bytes (CRLF lines, as MessageFactory builds them) go over 16
connections to postfix's `smtp-sink` on 127.0.0.1 (see bench/send.py), one sendmail each with
BODY=8BITMIME, as SmtpTransport sends. Printed: process CPU time a message and the wall time.
CPU time is the figure to compare: on a shared machine the wall time moves with the load far
more than the CPU our process spends does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import aiosmtplib
from send import SINK, Sink

from syndicate.mail.fastdata import FastSMTP
from syndicate.mail.message import CrlfMessage

CONNECTIONS = 16
LINE = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"


async def send(client: type[aiosmtplib.SMTP], port: int, message: bytes, count: int) -> None:
    async def connection(share: int) -> None:
        smtp = client(hostname="127.0.0.1", port=port, local_hostname="bench.test", start_tls=False)
        await smtp.connect()
        for n in range(share):
            await smtp.sendmail(
                "news@example.org",
                [f"reader{n}@example.net"],
                message,
                mail_options=["BODY=8BITMIME"],
            )
        await smtp.quit()

    await asyncio.gather(*(connection(count // CONNECTIONS) for _ in range(CONNECTIONS)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3200)
    parser.add_argument("--client", choices=["fast", "aiosmtplib"], default="fast")
    parser.add_argument("--size", type=int, default=59_000)
    args = parser.parse_args()
    if not os.access(SINK, os.X_OK):
        raise SystemExit(f"missing {SINK}: see bench/send.py")
    client = FastSMTP if args.client == "fast" else aiosmtplib.SMTP
    header = b"From: news@example.org\r\nSubject: bench\r\n\r\n"
    message = CrlfMessage(header + LINE * (args.size // len(LINE)))
    count = args.count - args.count % CONNECTIONS
    with tempfile.TemporaryDirectory() as workdir:
        sink = Sink(Path(workdir))
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            asyncio.run(send(client, sink.port, message, count))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert sink.settle(count) >= count, "smtp-sink did not count every message"
        finally:
            sink.close()
    print(f"{args.client}: {count} messages of {len(message):,} bytes")
    print(f"  CPU {cpu * 1e6 / count:.0f} us a message, wall {wall:.2f} s")


if __name__ == "__main__":
    main()
