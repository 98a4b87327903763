"""serve() in a process whose file descriptors something else has taken, for
tests/test_web_connections.py:

    python tests/descriptor_hog.py CONFIG

Once the server listens (on a free port), it opens /dev/null until open() fails for want of
descriptors, as if the worker's fetches and database had taken them all, and prints
"holding N descriptors; serving on URL". SIGUSR1 closes them again; SIGINT stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from syndicate.config import load_settings
from syndicate.logs import configure
from syndicate.web.server import serve


async def main(config: Path) -> None:
    held: list[int] = []

    def take_every_descriptor(url: str) -> None:
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                break
        print(f"holding {len(held)} descriptors; serving on {url}", flush=True)

    def let_go() -> None:
        for descriptor in held:
            os.close(descriptor)
        held.clear()

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, let_go)
    await serve(load_settings(config), port=0, access_log=False, on_ready=take_every_descriptor)


if __name__ == "__main__":
    configure()
    # uvicorn stops gracefully on SIGINT, then raises it again (as `syndicate serve` sees).
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(Path(sys.argv[1])))
