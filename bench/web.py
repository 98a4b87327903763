"""Benchmark: feed requests per second through `syndicate serve`, next to nginx.

    python bench/web.py [--duration 5] [--threads 2] [--connections 32] [--path /feeds/index.atom]

Both servers serve the same published file from the same folder, in the same run: ours is
syndicate.web.server.serve() (what `syndicate serve` runs) without the access log, once per
HTTP parser (h11, and httptools when installed); nginx is started here with a temporary
config on 127.0.0.1 (`etag on`, access_log off, one worker per core) and stopped after. The
load comes from `wrk` (-t threads, -c connections, -d seconds): a plain GET (200 path, no
gzip) and a GET with If-None-Match set to that server's ETag by a small Lua script (304 path).
Target: >= 50% of nginx's rate on the 304 path.

Needs `wrk` and `nginx` (Debian: apt-get install wrk nginx). Preparing the site (ingesting
the bundled examples and publishing them) is not timed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
NGINX_CONF = """\
user nobody nogroup;
worker_processes auto;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ application/atom+xml atom; application/rss+xml rss; application/feed+json json;
             text/html html; }}
    charset utf-8;
    charset_types application/atom+xml application/rss+xml application/feed+json;
    server {{
        listen 127.0.0.1:{port};
        location /feeds/ {{ alias {feeds}/; etag on; }}
    }}
}}
"""
LUA_304 = 'wrk.headers["If-None-Match"] = {etag}\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--path", default="/feeds/index.atom")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (Debian: apt-get install wrk nginx)")
    with tempfile.TemporaryDirectory(prefix="syndicate-bench-web-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # nginx's workers run as nobody
        config = prepare_site(work / "site")
        feeds = work / "site" / "feeds"
        rows: list[tuple[str, str, float]] = []
        with nginx(work, feeds) as url:
            rows += measure("nginx", url + args.path, args, work)
        parsers = ["h11"] + (["httptools"] if importlib.util.find_spec("httptools") else [])
        for http in parsers:
            with syndicate(config, http) as url:
                rows += measure(f"syndicate ({http})", url + args.path, args, work)
    report(rows, args)


def prepare_site(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(REPO / "config.toml", folder / "config.toml")
    for name in ("examples", "templates"):
        shutil.copytree(REPO / name, folder / name)
    config = folder / "config.toml"
    for command in ("ingest", "publish"):
        subprocess.run(
            [sys.executable, "-m", "syndicate", "--config", str(config), command],
            check=True,
            capture_output=True,
        )
    for path in [folder, *folder.rglob("*")]:  # readable by nginx's workers
        path.chmod(0o755 if path.is_dir() else 0o644)
    return config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=1)
            return
        time.sleep(0.1)
    sys.exit(f"server at {url} did not start")


@contextlib.contextmanager
def nginx(work: Path, feeds: Path) -> Iterator[str]:
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=work, port=port, feeds=feeds))
    process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)])
    try:
        wait_for(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful stop
        process.wait(timeout=20)


@contextlib.contextmanager
def syndicate(config: Path, http: str) -> Iterator[str]:
    port = free_port()
    code = (
        "import asyncio, contextlib\n"
        "from syndicate.config import load_settings\n"
        "from syndicate.web.server import serve\n"
        "with contextlib.suppress(KeyboardInterrupt):\n"
        f"    asyncio.run(serve(load_settings({str(config)!r}), port={port}, "
        f"access_log=False, http={http!r}))\n"
    )
    env = {**os.environ, "SYNDICATE_SECRET": "bench"}
    process = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def measure(
    name: str, url: str, args: argparse.Namespace, work: Path
) -> list[tuple[str, str, float]]:
    first = httpx.get(url, headers={"accept-encoding": "identity"})
    first.raise_for_status()
    etag = first.headers["etag"]
    check = httpx.get(url, headers={"if-none-match": etag, "accept-encoding": "identity"})
    assert check.status_code == 304, (name, check.status_code)
    script = work / "304.lua"
    script.write_text(LUA_304.format(etag=lua_string(etag)))
    return [
        (name, "200", wrk(url, args)),
        (name, "304", wrk(url, args, script)),
    ]


def lua_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def wrk(url: str, args: argparse.Namespace, script: Path | None = None) -> float:
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s"]
    command += ["-H", "Accept-Encoding: identity"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx" in output or "Socket errors" in output:
        print(output, file=sys.stderr)
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        sys.exit(f"cannot read wrk's output:\n{output}")
    return float(match.group(1))


def report(rows: list[tuple[str, str, float]], args: argparse.Namespace) -> None:
    nginx_rate = {path: rate for name, path, rate in rows if name == "nginx"}
    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s {args.path}, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    print(f"{'server':<24} {'path':>4} {'req/s':>10} {'vs nginx':>9}")
    for name, path, rate in rows:
        print(f"{name:<24} {path:>4} {rate:>10,.0f} {rate / nginx_rate[path]:>8.0%}")
    best = max(rate for name, path, rate in rows if name != "nginx" and path == "304")
    verdict = "meets" if best >= 0.5 * nginx_rate["304"] else "MISSES"
    print(f"304 path: best {best / nginx_rate['304']:.0%} of nginx ({verdict} the 50% target)")


if __name__ == "__main__":
    main()
