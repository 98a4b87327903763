"""OPML import keeps config.toml's comments; export lists every source."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from syndicate.cli import cli
from syndicate.config import load_settings
from syndicate.opml import parse_opml

OPML = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Partners</title></head>
  <body>
    <outline text="Partners">
      <outline type="rss" text="Canal &amp; River Friends" xmlUrl="https://canal.example/feed/"/>
      <outline type="rss" text="Riverside Commons News" xmlUrl="https://dup.example/feed"/>
    </outline>
    <outline type="rss" text="Bird Notes" title="Bird Notes" xmlUrl="https://birds.example/atom"/>
    <outline type="rss" text="Not a feed" xmlUrl="javascript:alert(1)"/>
  </body>
</opml>"""


def test_parse_opml_keeps_categories() -> None:
    feeds = parse_opml(OPML)
    assert [(f.title, f.url, f.category) for f in feeds] == [
        ("Canal & River Friends", "https://canal.example/feed/", "Partners"),
        ("Riverside Commons News", "https://dup.example/feed", "Partners"),
        ("Bird Notes", "https://birds.example/atom", None),
    ]


def test_import_adds_sources_and_keeps_comments(project: Path) -> None:
    config = project / "config.toml"
    before = config.read_text()
    opml = project / "partners.opml"
    opml.write_bytes(OPML)
    result = CliRunner().invoke(cli, ["--config", str(config), "sources", "import-opml", str(opml)])
    assert result.exit_code == 0, result.output
    assert "added 3 sources" in result.stdout
    after = config.read_text()
    assert after.startswith(before.rstrip("\n")[:2000])  # the admin's text is untouched
    assert "# One [[sources]] block per feed" in after
    names = [s.name for s in load_settings(config).sources]
    assert names[3:] == ["canal-river-friends", "riverside-commons-news", "bird-notes"]
    # Importing again adds nothing.
    again = CliRunner().invoke(cli, ["--config", str(config), "sources", "import-opml", str(opml)])
    assert "added 0 sources" in again.stdout and "skipped 3" in again.stdout
    assert config.read_text() == after


def test_import_rejects_a_broken_file(project: Path) -> None:
    bad = project / "bad.opml"
    bad.write_bytes(b"<html>nope")
    result = CliRunner().invoke(
        cli, ["--config", str(project / "config.toml"), "sources", "import-opml", str(bad)]
    )
    assert result.exit_code == 2
    assert "not valid OPML" in result.stderr


def test_export_is_opml_2(project: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--config", str(project / "config.toml"), "sources", "export-opml"]
    )
    assert result.exit_code == 0
    root = ET.fromstring(result.stdout)
    assert root.get("version") == "2.0"
    urls = [o.get("xmlUrl") for o in root.iter("outline") if o.get("xmlUrl")]
    assert urls == [
        "examples/riverside-news.rss",
        "examples/partner-wetlands.atom",
        "examples/field-notes.json",
    ]
    assert [o.get("text") for o in root.find("body")][:1] == ["Riverside Commons News"]
