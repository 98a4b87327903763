"""Bounce intake at the size of a real list: `syndicate bounces process` on an mbox of the
bounces a month's digest to a large list brings back, against the parser alone.

    python bench/bounces.py                       # 10,000 bounces, SQLite and PostgreSQL
    python bench/bounces.py --mails 1000 --database sqlite

A list of a million addresses loses about 1% a month to hard bounces, so the full size is
10,000 subscribers, each with one Postfix DSN (tests/fixtures/bounces) sent back to their
copy's signed return path. Every command is a new process, as an admin or a mail server's
pipe runs it, timed from outside with start-up included:

    reference   read_report() on every mail, in this process: what parsing alone costs
    process     `bounces process bounces.mbox`: parse, match, store, mark bounced
    again       the same mbox again: every mail read before, nothing done twice

It prints mails/s for each and the ratio of `process` to the reference.
"""

from __future__ import annotations

import argparse
import mailbox
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scalekit import REPO, Row, Space, print_table
from sqlalchemy import create_engine, text

from syndicate.bounces.reports import read_report
from syndicate.mail.verp import VerpAddresses

FIXTURE = REPO / "tests" / "fixtures" / "bounces" / "postfix-550-user-unknown.eml"
RETURN_PATH = "bounces@example.org"
SECRET = "bench-secret-not-for-production-0123456789"  # scalekit.Space.env's


@dataclass(frozen=True)
class Owner:
    id: int
    email: str


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=10_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    rows: list[Row] = []
    for database in databases:
        with tempfile.TemporaryDirectory(prefix="bench-bounces-") as folder:
            space = Space.create(Path(folder), database, 1.0)
            try:
                rows.extend(run(space, args.mails))
            finally:
                space.close()
    print_table(rows)


def run(space: Space, mails: int) -> list[Row]:
    config = space.config
    config.write_text(
        config.read_text().replace("[mail]\n", f'[mail]\nreturn_path = "{RETURN_PATH}"\n', 1)
    )
    listing = space.root / "list.csv"
    listing.write_text(
        "email,name\n" + "".join(f"reader{n}@example.net,Reader {n}\n" for n in range(mails))
    )
    space.syndicate("subscribers", "import", str(listing), "--confirmed")
    engine = create_engine(space.database_url)
    with engine.connect() as conn:
        owners = [Owner(*row) for row in conn.execute(text("SELECT id, email FROM subscribers"))]
    engine.dispose()

    template = FIXTURE.read_bytes()
    verp = VerpAddresses(SECRET)
    raws = []
    for owner in owners:
        raw = re.sub(
            rb"bounces\+7-\d+-[a-z]{16}@example\.org",
            verp.return_path(RETURN_PATH, 1, owner).encode(),
            template,
        )
        raws.append(re.sub(rb"(?i)jane\.doe@example\.net", owner.email.encode(), raw))
    box_path = space.root / "bounces.mbox"
    box = mailbox.mbox(box_path)
    for raw in raws:
        box.add(raw)
    box.close()

    started = time.perf_counter()
    kinds = {read_report(raw).kind for raw in raws}
    reference = time.perf_counter() - started
    assert kinds == {"hard"}, kinds

    first = space.syndicate("bounces", "process", str(box_path))
    summary = first.stdout.rstrip().rsplit("\n", 1)[-1]
    assert summary == f"{len(raws)} mails: applied {len(raws)}", summary
    again = space.syndicate("bounces", "process", str(box_path))
    assert again.stdout.rstrip().endswith(f"read before {len(raws)}"), again.stdout[-500:]
    ratio = (len(raws) / first.seconds) / (len(raws) / reference)
    return [
        Row("parse only", space.database, len(raws), "mails", reference, None, "reference", None),
        Row(
            "bounces process",
            space.database,
            len(raws),
            "mails",
            first.seconds,
            first.peak_rss_mib,
            "-",
            None,
            f"{ratio:.0%} of parsing alone; every subscriber bounced",
        ),
        Row(
            "again",
            space.database,
            len(raws),
            "mails",
            again.seconds,
            again.peak_rss_mib,
            "-",
            None,
            "every mail read before",
        ),
    ]


if __name__ == "__main__":
    main()
