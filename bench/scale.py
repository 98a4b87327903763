"""Benchmark: every command at the size of a real list and a real aggregator (issue 18).

    python bench/scale.py [--database sqlite --database postgresql] [--stage NAME ...]
                          [--scale 1.0] [--workdir DIR] [--json results.json]

Stages, in order, each on a fresh workspace per database (a config.toml, its own SQLite file
or PostgreSQL database, feeds folder and outbox); a stage reuses what the stages before it
left (the imported list is the one the digest goes to, the 5,000 ingested sources hold the
100,000 posts that are published) and sets up what it needs when run alone:

    startup      `syndicate --version`, `--help`, each command's `--help` vs `python3 -c pass`;
                 RSS of an idle `syndicate run` (once, not per database)
    subscribers  1,000,000-row CSV: import new, re-import unchanged, export
    send         `digest send` to 1,000,000 active subscribers into postfix's smtp-sink vs
                 smtp-source (small and large digest)
    sources      5,000 sources x 20 entries over local HTTP with ETags: cold ingest, warm
                 poll, forum linking, publish, status, sources, run --once
    posts        100,000 stored posts: full and unchanged publish, home and archive pages,
                 the home page under 100 concurrent clients, a 10,000-item feed's ingest

Every command runs as its user runs it: a new `syndicate` process, start-up included, timed
from outside with its peak RSS (wait4). `--scale 0.01` runs everything at 1% for a quick check;
the targets are only judged at full size. Figures go in docs/performance.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scalekit import Row, Space, print_table

STAGES = ("startup", "subscribers", "send", "sources", "posts")
ONCE = {"startup"}  # not about the database: run on the first one only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database",
        action="append",
        choices=("sqlite", "postgresql"),
        help="repeatable; default: both",
    )
    parser.add_argument("--stage", action="append", choices=STAGES, help="default: all")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full sizes")
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--keep", action="store_true", help="keep the workspaces")
    args = parser.parse_args()
    databases = args.database or ["sqlite", "postgresql"]
    stages = [stage for stage in STAGES if stage in (args.stage or STAGES)]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="syndicate-scale-"))

    rows: list[Row] = []
    started = time.perf_counter()
    for number, database in enumerate(databases):
        space = Space.create(workdir / database, database, args.scale)
        try:
            for stage in stages:
                if stage in ONCE and number > 0:
                    continue
                print(f"== {stage} on {database} (scale {args.scale:g})", flush=True)
                module = importlib.import_module(f"scale_{stage}")
                found = module.run(space)
                print_table(found)
                rows.extend(found)
        finally:
            if not args.keep:
                space.close()

    print(f"\n== all stages ({time.perf_counter() - started:,.0f} s), scale {args.scale:g}")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=1))
    if args.scale == 1 and any(row.met is False for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
