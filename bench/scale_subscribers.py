"""Stage `subscribers` of bench/scale.py: a 1,000,000-row list imported, imported again,
exported (issue 18, item 2).

    python bench/scale.py --stage subscribers --scale 0.01 --database sqlite

The CSV is generated (deterministic): names, categories from the config's [site]
categories, a few hundred invalid lines (bad addresses, wrong field counts, control
characters in names, categories the site does not offer) and some repeats of earlier
addresses, spelled in another case, far enough apart to fall in other batches. Commands,
each a new process as the user runs it:

    import (10 rows)        the baseline: peak RSS of the same command on a tiny file
    export (10 rows)        the baseline for export's RSS
    import --confirmed      1M new rows        >= 20,000 rows/s, RSS <= baseline + 30 MiB
    import --confirmed      the same file      >= 50,000 rows/s, RSS <= baseline + 30 MiB
    export > file           every subscriber   >= 100,000 rows/s, RSS <= baseline + 30 MiB

The imported subscribers stay (active): the send stage mails them.
"""

from __future__ import annotations

import random
import re
import tomllib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from scalekit import Measured, Row, Space

FULL = 1_000_000
RSS_SLACK_MIB = 30.0
IMPORT_RATE = 20_000
REIMPORT_RATE = 50_000
EXPORT_RATE = 100_000

FIRST = ["Ann", "Bob", "Carla", "Dev", "Eun-ji", "Fátima", "Gus", "Hana", "Ivo", "Jo", "Kwame"]
LAST = ["Lee", "Okafor", "Novák", "Silva", "Tanaka", "O'Brien", "Smith", "Müller", "Diaz"]
DOMAINS = [f"{name}.example" for name in ("mail", "post", "inbox", "river", "lists")] + [
    "example.org",
    "example.net",
    "Example.COM",
]
SUMMARY = re.compile(r"imported (\d+), updated (\d+), unchanged (\d+), rejected (\d+)")


@dataclass(frozen=True)
class ListFile:
    path: Path
    lines: int  # data lines (the header not counted)
    unique: int  # distinct valid addresses: what is imported
    rejected: int  # invalid lines and repeats


def run(space: Space) -> list[Row]:
    size = space.sized(FULL)
    categories = _site_categories(space.config)
    baseline_file = _write_baseline(space.root / "baseline.csv")
    big = _write_list(space.root / "subscribers.csv", size, categories)

    base_import = space.syndicate("subscribers", "import", "--confirmed", str(baseline_file))
    with (space.root / "baseline-export.csv").open("wb") as out:
        base_export = space.syndicate("subscribers", "export", stdout=out)
    new = space.syndicate("subscribers", "import", "--confirmed", str(big.path), check=False)
    again = space.syndicate("subscribers", "import", "--confirmed", str(big.path), check=False)
    exported_file = space.root / "export.csv"
    with exported_file.open("wb") as out:
        exported = space.syndicate("subscribers", "export", stdout=out)
    exported_rows = _count_lines(exported_file) - 1  # the header

    judged = space.scale >= 1
    rows = [
        _row(space, "subscribers import (10 rows, baseline)", 10, base_import, "-", None, ""),
        _row(space, "subscribers export (10 rows, baseline)", 10, base_export, "-", None, ""),
    ]
    rows.append(
        _import_row(
            space,
            "subscribers import (new)",
            big,
            new,
            base_import,
            IMPORT_RATE,
            expect=(big.unique, 0, 0),
            judged=judged,
        )
    )
    rows.append(
        _import_row(
            space,
            "subscribers re-import (unchanged)",
            big,
            again,
            base_import,
            REIMPORT_RATE,
            expect=(0, 0, big.unique),
            judged=judged,
        )
    )
    rss_ok = exported.peak_rss_mib <= base_export.peak_rss_mib + RSS_SLACK_MIB
    rate_ok = exported_rows / exported.seconds >= EXPORT_RATE
    note = (
        f"RSS +{exported.peak_rss_mib - base_export.peak_rss_mib:.0f} MiB over the baseline; "
        f"{exported_file.stat().st_size / 2**20:,.0f} MiB written"
    )
    rows.append(
        _row(
            space,
            "subscribers export",
            exported_rows,
            exported,
            f">= {EXPORT_RATE:,} rows/s, RSS <= baseline + {RSS_SLACK_MIB:.0f} MiB",
            (rss_ok and rate_ok) if judged else None,
            note,
        )
    )
    return rows


def _import_row(
    space: Space,
    stage: str,
    listed: ListFile,
    measured: Measured,
    baseline: Measured,
    rate: int,
    *,
    expect: tuple[int, int, int],
    judged: bool,
) -> Row:
    found = SUMMARY.search(measured.stdout)
    counts = tuple(int(n) for n in found.groups()) if found else None
    wanted = (*expect, listed.rejected)
    growth = measured.peak_rss_mib - baseline.peak_rss_mib
    notes = [f"RSS +{growth:.0f} MiB over the baseline"]
    right = counts == wanted and measured.returncode == 1  # 1: there were rejects
    if not right:
        notes.append(
            f"WRONG: exit {measured.returncode}, {measured.stdout.strip()!r}, wanted "
            f"imported/updated/unchanged/rejected {wanted}: {measured.stderr[-500:]!r}"
        )
    met = right and listed.lines / measured.seconds >= rate and growth <= RSS_SLACK_MIB
    target = f">= {rate:,} rows/s, RSS <= baseline + {RSS_SLACK_MIB:.0f} MiB"
    return _row(
        space, stage, listed.lines, measured, target, met if judged else None, "; ".join(notes)
    )


def _row(
    space: Space,
    stage: str,
    size: int,
    measured: Measured,
    target: str,
    met: bool | None,
    note: str,
) -> Row:
    note = f"CPU {measured.cpu_seconds:,.1f} s; {note}".rstrip("; ")
    if not space.scale >= 1 and target != "-":
        note = f"{note}; targets judged at full size only".lstrip("; ")
    return Row(
        stage,
        space.database,
        size,
        "rows",
        measured.seconds,
        measured.peak_rss_mib,
        target,
        met,
        note,
    )


def _site_categories(config: Path) -> list[str]:
    settings = tomllib.loads(config.read_text(encoding="utf-8"))
    return list(settings.get("site", {}).get("categories") or ["News"])


def _write_baseline(path: Path) -> Path:
    lines = ["email,name,categories"]
    lines += [f"baseline{n}@example.net,Baseline {n}," for n in range(10)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _write_list(path: Path, size: int, categories: list[str]) -> ListFile:
    """`size` data lines: about 1 in 4,000 invalid (a few hundred at full size), about 1 in
    5,000 a repeat of an address some 7,000 lines earlier (another batch), the rest new."""
    pick = random.Random(18)
    invalid_every = 4000
    repeat_every = 5000
    unique = rejected = 0
    recent: deque[str] = deque(maxlen=7000)  # addresses to repeat, not the whole list
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,categories\n")
        for number in range(size):
            if number % invalid_every == invalid_every - 1:
                out.write(_invalid(number, categories) + "\n")
                rejected += 1
                continue
            if number % repeat_every == repeat_every - 1 and len(recent) > 0:
                out.write(f"{recent[0].upper()},Repeat,\n")  # same address, other case
                rejected += 1
                continue
            first, last = pick.choice(FIRST), pick.choice(LAST)
            domain = DOMAINS[number % len(DOMAINS)]
            address = f"{first.lower()[:3]}.{number}@{domain}".replace("á", "a")
            chosen = pick.sample(categories, pick.randint(0, min(3, len(categories))))
            name = f'"{first} {last}"' if "'" in last else f"{first} {last}"
            out.write(f"{address},{name},{';'.join(chosen)}\n")
            unique += 1
            recent.append(address)
    return ListFile(path, size, unique, rejected)


def _invalid(number: int, categories: list[str]) -> str:
    kind = (number // 4000) % 5
    if kind == 0:
        return f"not-an-address-{number},Nobody,"
    if kind == 1:
        return f"two@@ats{number}.example,Two Ats,"
    if kind == 2:
        return f"fields{number}@example.org,Too,Many,Fields"
    if kind == 3:
        return f"ctrl{number}@example.org,Bell\x07Name,"
    return f"cat{number}@example.org,Cat,{categories[0]};Not A Category {number}"


def _count_lines(path: Path) -> int:
    with path.open("rb") as file:
        return sum(block.count(b"\n") for block in iter(lambda: file.read(1 << 20), b""))
